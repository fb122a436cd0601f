"""Which migrations a release's code contains, and whether rolling the app back to it is safe.

Rolling the code back to a release whose newest migration is older than the database's leaves the
database with tables and columns the old code does not know (and, worse, may have removed ones it
needs). So `rollback.app` compares the target release's newest migration with the database's: when
the database is ahead it refuses and names the way out (roll the database back first, or --force);
when nothing was recorded for the target it says so instead of guessing.

Versions are Ecto's migration timestamps (digits, e.g. "20240101000000"), compared as integers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Command, Executor
from bezgelor_tasks.settings import Settings

_MIGRATION_FILE = re.compile(r"^(\d+)_\w*\.exs$")
STATUS_MARKER = "BEZGELOR_MIGRATIONS"


def migrations_dir(settings: Settings) -> str:
    """The db app's migrations folder, relative to the checkout root (POSIX, as git wants it)."""
    return f"apps/{settings.db_otp_app}/priv/repo/migrations"


def versions_from_names(names: Iterable[str]) -> list[str]:
    """Migration versions from file names (`20240101000000_create_accounts.exs`), sorted oldest first."""
    found = {m.group(1) for n in names if (m := _MIGRATION_FILE.match(PurePosixPath(n.strip()).name))}
    return sorted(found, key=int)


def newest(versions: Iterable[str]) -> str | None:
    vs = list(versions)
    return max(vs, key=int) if vs else None


def ls_tree_command(settings: Settings, git_ref: str) -> Command:
    """`git ls-tree` of the migrations folder at a commit/tag: what that code would migrate to."""
    return Command(("git", "ls-tree", "--name-only", git_ref, "--", migrations_dir(settings) + "/"),
                   purpose=f"list the migrations at {git_ref}", cwd=settings.root, mutates=False)


def code_migrations_at(settings: Settings, executor: Executor, git_ref: str) -> list[str]:
    """The migration versions the checkout's code contains at `git_ref`, oldest first ([] if there are none)."""
    result = executor.run(ls_tree_command(settings, git_ref), check=False)
    if not result.ok:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise UserError(f"Cannot list the migrations of {settings.root} at {git_ref!r}: "
                        f"{detail[-1] if detail else 'git exit ' + str(result.returncode)}.",
                        fix="run this from a git checkout that has that commit (`git fetch --tags`), "
                            "or pass a commit or tag that exists.")
    return versions_from_names(result.stdout.splitlines())


# -- the database side: the overlay's `/app/bin/migrate status` line ------------------------------------

@dataclass(frozen=True)
class DbMigrations:
    """What `/app/bin/migrate status` reported for the first repo."""

    repo: str
    applied: tuple[str, ...]       # versions with status "up", oldest first
    pending: tuple[str, ...]       # versions the running code has but the database has not run

    @property
    def current(self) -> str | None:
        return newest(self.applied)


def parse_migrate_status(output: str) -> DbMigrations:
    """Read the `BEZGELOR_MIGRATIONS {json}` line out of `fly ssh console ... migrate status` output."""
    for line in output.splitlines():
        _, marker, payload = line.partition(STATUS_MARKER)
        if not marker:
            continue
        try:
            data: Any = json.loads(payload.strip())
            repo = data["repos"][0]
            ups = [str(m["version"]) for m in repo["migrations"] if str(m.get("status", "")).lower() == "up"]
            downs = [str(m["version"]) for m in repo["migrations"] if str(m.get("status", "")).lower() != "up"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise UserError(f"`/app/bin/migrate status` printed a {STATUS_MARKER} line that cannot be read "
                            f"({type(e).__name__}).",
                            fix="redeploy so the release carries this version's rel/overlays/bin/migrate "
                                "(`inv init` then `inv deploy.full`).") from None
        return DbMigrations(str(repo.get("repo", "")), tuple(sorted(ups, key=int)), tuple(sorted(downs, key=int)))
    raise UserError(f"`/app/bin/migrate status` printed no {STATUS_MARKER} line, so the database's migrations "
                    "are unknown.",
                    fix="the deployed release predates the status command: redeploy it with `inv deploy.full`, "
                        "or pass --force to skip the migration check.")


# -- the decision ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Safety:
    safe: bool | None              # True: go; False: refuse; None: unknown, needs --force
    reason: str
    way_out: list[str] = field(default_factory=list)
    ahead: tuple[str, ...] = ()    # database migrations the target code does not have, oldest first

    @property
    def label(self) -> str:
        return {True: "safe", False: "unsafe", None: "unknown"}[self.safe]

    def as_json(self) -> dict[str, Any]:
        return {"safe": self.safe, "label": self.label, "reason": self.reason, "way_out": list(self.way_out),
                "ahead": list(self.ahead)}


def assess(target_newest: str | None, db_current: str | None, db_applied: Iterable[str] = (), *,
           target_version: int | str | None = None, target_recorded: bool | None = None) -> Safety:
    """Is rolling the app back to a release whose newest migration is `target_newest` safe right now?

    `target_recorded=False` (or `target_newest=None` when not told otherwise) means we have no record of
    that release's migrations: we do not guess, the user must pass --force. A recorded release with no
    migrations at all passes `target_recorded=True, target_newest=None`.
    """
    release = f"release v{target_version}" if target_version is not None else "the target release"
    rollback_cmd = f"inv rollback.app --version {target_version}" if target_version is not None \
        else "inv rollback.app --version <N>"
    recorded = target_newest is not None if target_recorded is None else target_recorded
    if not recorded:
        return Safety(None, f"No migration record exists for {release} (it was deployed before migrations were "
                            "recorded, or the record is lost), so whether its code matches the database is unknown.",
                      [f"check the migrations yourself, then `{rollback_cmd} --force`"])
    floor = int(target_newest) if target_newest is not None else -1
    applied = {str(v) for v in db_applied}
    if db_current is not None:
        applied.add(str(db_current))
    ahead = tuple(sorted((v for v in applied if int(v) > floor), key=int))
    if not ahead:
        if db_current is None:
            return Safety(True, "The database has no migrations applied, so no migration is newer than the code.")
        behind = "" if target_newest is None or int(db_current) == floor else \
            f" (the database is at {db_current}; the release's migrate step will bring it to {target_newest})"
        return Safety(True, f"The database's newest migration {db_current} is not newer than {release}'s "
                            f"newest {target_newest or '(none)'}{behind}.")
    to = target_newest if target_newest is not None else "0"
    listed = ", ".join(ahead)
    return Safety(False,
                  f"The database is ahead of {release}: {len(ahead)} migration(s) ({listed}) are applied that its "
                  f"code does not contain, so the old code would run against a schema it does not know.",
                  [f"inv db.rollback --to {to}   (backs the database up first, then reverts {listed})",
                   f"then {rollback_cmd}",
                   f"or `{rollback_cmd} --force` to roll back the code anyway: the old code then runs on the newer "
                   "schema (columns it does not know are ignored, ones it needs may be gone); you accept that risk"],
                  ahead)


def ecto_rollback_target(applied: Iterable[str], keep: str | None) -> str | None:
    """The version to pass to Ecto's `:down, to:` so that `keep` becomes the newest applied migration.

    Ecto reverts "down to and including" the given version, so `inv db.rollback --to V` (leave the
    database at V) must pass the oldest applied migration newer than V. None when nothing is newer.
    """
    floor = int(keep) if keep is not None else -1
    newer = sorted((v for v in applied if int(v) > floor), key=int)
    return newer[0] if newer else None
