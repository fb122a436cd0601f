"""Which migrations a release's code contains, and whether rolling the app back to it is safe.

Rolling the code back to a release whose newest migration is older than the database's leaves the
database with tables and columns the old code does not know (and, worse, may have removed ones it
needs). So `rollback.app` compares the target release's newest migration with the database's: when
the database is ahead it refuses and names the way out (roll the database back first, or --force);
when nothing was recorded for the target it says so instead of guessing.

Versions are Ecto's migration timestamps (digits, e.g. "20240101000000"), compared as integers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bezgelor_tasks import git
from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings

_MIGRATION_FILE = re.compile(r"^(\d+)_\w*\.exs$")


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
    return git.ls_tree(settings.root, git_ref, migrations_dir(settings))


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


# -- what each release's code contains: recorded at build/deploy time ------------------------------------

# Image labels (`fly deploy --label KEY=VALUE` at build time): a second, read-only copy of the record on
# the image itself (`fly image show --json` shows the running machines' labels). The journal is primary:
# flyctl cannot show the labels of an image no machine runs, which is exactly a rollback target.
LABEL_NEWEST = "org.bezgelor.migrations.newest"
LABEL_COUNT = "org.bezgelor.migrations.count"
LABEL_GIT = "org.bezgelor.git"
NO_MIGRATIONS = "none"
RECORD_EVENTS = ("built", "deployed", "rollback")


def working_tree_migrations(settings: Settings) -> list[str]:
    """The migration versions in the checkout's migrations folder as it is on disk, oldest first.

    `fly deploy` uploads the working tree, untracked files included, so this is what a build bakes in.
    """
    folder = settings.root / migrations_dir(settings)
    try:
        names = [p.name for p in folder.iterdir() if p.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return versions_from_names(names)


def git_head(settings: Settings, executor: Executor) -> str:
    """The commit being built (full sha), or "" outside git."""
    result = executor.run(git.rev_parse_head(settings.root), check=False)
    return result.stdout.strip() if result.ok else ""


@dataclass(frozen=True)
class CodeMigrations:
    """The migrations one build's code contains, and where that was read from."""

    versions: tuple[str, ...]
    source: str                     # "git HEAD <sha>" or "working tree"
    git_sha: str = ""

    @property
    def newest(self) -> str | None:
        return newest(self.versions)

    def journal_fields(self) -> dict[str, Any]:
        """What a `built` / `deployed` / `rollback` journal record carries about migrations."""
        return {"migrations": list(self.versions), "newest_migration": self.newest,
                "migrations_source": self.source, "git_sha": self.git_sha}

    def image_labels(self, git_version: str) -> dict[str, str]:
        return {LABEL_NEWEST: self.newest or NO_MIGRATIONS, LABEL_COUNT: str(len(self.versions)),
                LABEL_GIT: git_version}


def code_migrations_for_build(settings: Settings, executor: Executor) -> CodeMigrations:
    """The migrations of the code `fly deploy` is about to upload.

    A clean tree is read from git (`git ls-tree HEAD`); a dirty one, or one whose folder holds
    migrations git does not track yet, from the working tree, since that is what the build uploads.
    """
    sha = git_head(settings, executor)
    on_disk = working_tree_migrations(settings)
    if sha:
        try:
            at_head = code_migrations_at(settings, executor, "HEAD")
        except UserError:
            at_head = None
        if at_head is not None and at_head == on_disk:
            return CodeMigrations(tuple(at_head), f"git HEAD {sha[:12]}", sha)
    return CodeMigrations(tuple(on_disk), "working tree", sha)


@dataclass(frozen=True)
class ReleaseMigrations:
    """The journal's record of which migrations a release's (or image's) code contains."""

    versions: tuple[str, ...]
    image_ref: str
    release_version: int | None
    git_version: str
    at: str

    @property
    def newest(self) -> str | None:
        return newest(self.versions)


@dataclass
class MigrationRecords:
    by_release: dict[int, ReleaseMigrations] = field(default_factory=dict)
    by_image: dict[str, ReleaseMigrations] = field(default_factory=dict)
    # When the journal (a cache: a fresh CI runner has none) has no record: derive one from git.
    from_git: Callable[[int | None, str], ReleaseMigrations | None] | None = None

    def find(self, release_version: int | None, image_ref: str) -> ReleaseMigrations | None:
        """The record of a release: by its Fly version, else by its image (same image, same code), else
        from the git version its image is tagged with (see `record_from_git`)."""
        if release_version is not None and release_version in self.by_release:
            return self.by_release[release_version]
        found = self.by_image.get(image_ref) if image_ref else None
        if found is None and self.from_git is not None and image_ref:
            found = self.from_git(release_version, image_ref)
            if found is not None:
                self.by_image[image_ref] = found
        return found


def image_git_version(image_ref: str) -> str | None:
    """The git version an image was built from: deploy.full tags images with `git describe` (context.image_label);
    a dirty tree's tag carries a timestamp and names no commit, and a digest-only ref has no tag."""
    name = image_ref.split("@", 1)[0]
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    if not tag or re.search(r"-dirty(-\d{14})?$", tag):
        return None
    return tag


def record_from_git(settings: Settings, executor: Executor, release_version: int | None,
                    image_ref: str) -> ReleaseMigrations | None:
    """A release's migrations from the migrations folder at its image's git version in the checkout's history
    (None when the tag names no commit this checkout has)."""
    version = image_git_version(image_ref)
    if version is None:
        return None
    try:
        versions = code_migrations_at(settings, executor, version)
    except UserError:
        return None
    return ReleaseMigrations(tuple(versions), image_ref, release_version, version, "git")


def _release_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip().lstrip("vV")
    return int(text) if text.isdigit() else None


def read_records(entries: Iterable[dict[str, Any]], app: str) -> MigrationRecords:
    """Every migration record of `app` in journal entries (later records win)."""
    found = MigrationRecords()
    for e in entries:
        if e.get("event") not in RECORD_EVENTS or e.get("app") != app or not isinstance(e.get("migrations"), list):
            continue
        versions = tuple(sorted({str(v) for v in e["migrations"] if str(v).isdigit()}, key=int))
        record = ReleaseMigrations(versions, str(e.get("image_ref") or ""), _release_number(e.get("release_version")),
                                   str(e.get("version") or e.get("git_version") or ""), str(e.get("at") or ""))
        if record.release_version is not None:
            found.by_release[record.release_version] = record
        if record.image_ref:
            found.by_image[record.image_ref] = record
    return found


def applied_versions(status: Any) -> list[str]:
    """Applied versions (strings) from a `fly.records.MigrationStatus`."""
    return sorted({str(m.version) for m in status.applied}, key=int)
