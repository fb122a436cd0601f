"""The watcher's backup jobs: plain functions `(settings, executor, ui) -> Outcome`, wired into its job table.

- `scheduled_backup` (BEZGELOR_BACKUP_SCHEDULE): on the watcher app, next to the database: pg_dump over Fly's
  private network (MPG's DIRECT_DATABASE_URL, else DATABASE_URL — Flex's `<db>.flycast`), compressed by
  pg_dump, and streamed (streamed.py): checked (standard tier), sealed with age and uploaded while it is dumped.
  Only sealed, compressed bytes leave Fly's network; no home link is involved; nothing is written to disk.
- `scheduled_drill` (BEZGELOR_DRILL_SCHEDULE): `inv db.drill` on the watcher (needs the age identity there).
(How old the newest verified off-site copy may get, BEZGELOR_BACKUP_MAX_AGE, is the watcher's backup-age
check: watch/backups.py reads each end.)
`watcher_requirements` lists what the watcher app needs for them; `status_summary` feeds the status overview.
Failures come back as a failed Outcome with one line of summary, never as an exception.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI
from bezgelor_tasks.watch.outcome import Outcome

URL_VARIABLES = ("DIRECT_DATABASE_URL", "DATABASE_URL")   # MPG's direct URL first: pg_dump bypasses PgBouncer


def _guarded(what: str, fn: Callable[[], Outcome]) -> Outcome:
    try:
        return fn()
    except UserError as e:
        return Outcome(False, f"{what} failed: {e.message.splitlines()[0][:200]}", {"error": e.paragraph()})


def database_url(environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(variable, URL) of the database as the watcher's environment has it."""
    env = os.environ if environ is None else environ
    for name in URL_VARIABLES:
        if env.get(name, "").strip():
            return name, env[name].strip()
    raise UserError("The watcher has no database URL: neither DIRECT_DATABASE_URL nor DATABASE_URL is set.",
                    fix="set the database URL as a secret of the watcher app (`fly secrets import -a <watcher>`: "
                        "DATABASE_URL, or MPG's direct URL as DIRECT_DATABASE_URL).")


def scheduled_backup(settings: Settings, executor: Executor, ui: UI) -> Outcome:
    if not settings.offsite_url:
        return Outcome(True, "skipped: no off-site store (BEZGELOR_OFFSITE_URL is empty)")
    return _guarded("the scheduled off-site backup", lambda: _backup(settings, executor, ui))


def _backup(settings: Settings, executor: Executor, ui: UI) -> Outcome:
    from concurrent.futures import ThreadPoolExecutor

    from bezgelor_tasks.backup import backup, session, streamed
    from bezgelor_tasks.backup.store import Store
    from bezgelor_tasks.redact import register

    variable, url = database_url()
    register(url)
    parts = urlsplit(url)
    password = unquote(parts.password or "")
    register(password)
    here = dataclasses.replace(settings, db_name=parts.path.lstrip("/") or settings.db_name,
                               db_user=unquote(parts.username or "") or settings.db_user)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="release") as pool:
        release = pool.submit(backup.current_release, settings, executor)   # only the manifest needs it
        made = streamed.dump_offsite(here, executor, ui, Store(settings, executor), password=password,
                                     password_from="watcher",
                                     endpoint=session.direct_endpoint(parts.hostname or "", parts.port or 5432),
                                     release_version=release.result)
    if made is None:
        return Outcome(True, "dry run: nothing was dumped or uploaded")
    rows = sum(made.row_counts.values())
    return Outcome(True, f"off-site backup {made.name}: {made.size / 1e6:.1f} MB, {rows} rows, verified, uploaded",
                   {"backup": made.name, "object": made.key, "size": made.size, "rows": rows, "via": variable,
                    "seconds": round(made.seconds, 1)})


def scheduled_drill(settings: Settings, executor: Executor, ui: UI) -> Outcome:
    if not settings.offsite_url:
        return Outcome(True, "skipped: no off-site store (BEZGELOR_OFFSITE_URL is empty)")

    def go() -> Outcome:
        from bezgelor_tasks.backup import drill

        r = drill.drill(settings, executor, ui)
        return Outcome(True, f"restore drill of {r['backup']}: restored in {r['restore_seconds']:.1f}s, "
                             "row counts and migrations match", r)
    return _guarded("the restore drill", go)


@dataclass(frozen=True)
class Requirement:
    name: str
    secret: bool
    why: str


def watcher_requirements(settings: Settings) -> list[Requirement]:
    """The secrets and settings the watcher app needs for these jobs (values are never part of this list)."""
    out = [Requirement("DATABASE_URL", True, "pg_dump next to the database (Flex: <db>.flycast; MPG: pooled)"),
           Requirement("AWS_ACCESS_KEY_ID", True, "the bucket's access key"),
           Requirement("AWS_SECRET_ACCESS_KEY", True, "the bucket's secret key"),
           Requirement("BEZGELOR_OFFSITE_URL", False, "s3://bucket/prefix of the off-site copies"),
           Requirement("BEZGELOR_BACKUP_AGE_RECIPIENTS", False, "public keys the copies are encrypted to"),
           Requirement("BEZGELOR_BACKUP_SCHEDULE", False, "when the off-site backup runs (cron, UTC)"),
           Requirement("BEZGELOR_BACKUP_MAX_AGE", False, "how old the newest verified copy may get")]
    if settings.pg_flavor == "mpg":
        out.insert(1, Requirement("DIRECT_DATABASE_URL", True, "MPG's direct URL: pg_dump bypasses PgBouncer"))
    if settings.offsite_endpoint:
        out.append(Requirement("BEZGELOR_OFFSITE_ENDPOINT", False, "the S3 service's endpoint"))
    if os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        out.append(Requirement("AWS_REGION", False, "the bucket's region"))
    if settings.offsite_plaintext:
        out.append(Requirement("BEZGELOR_OFFSITE_PLAINTEXT", False, "uploads unencrypted on purpose"))
    if settings.drill_schedule.strip():
        out += [Requirement("BEZGELOR_DRILL_SCHEDULE", False, "when the restore drill runs (cron, UTC)"),
                Requirement("BEZGELOR_BACKUP_AGE_IDENTITY", True, "the drill decrypts: the age secret key (the "
                            "watcher can then read the copies; leave drills to CI or a laptop to avoid that)")]
    return out


def watcher_secret_values(settings: Settings, executor: Executor) -> dict[str, str]:
    """The values of the secrets `watcher_requirements` lists, for `inv watch.deploy` to import on stdin: the
    bucket's credentials from this environment, the database URL(s) as the game app's machine sees them (so
    the watcher dumps next to the database with the app's own login), the age identity when drills run there.
    Every value is registered as secret before anything can show it."""
    from bezgelor_tasks.backup.crypto import IDENTITY_VARIABLE, identities
    from bezgelor_tasks.fly import secret_commands
    from bezgelor_tasks.redact import register

    values: dict[str, str] = {}
    missing: list[str] = []
    for need in (r for r in watcher_requirements(settings) if r.secret):
        value = os.environ.get(need.name, "").strip()
        if not value and need.name in URL_VARIABLES:
            r = executor.run(secret_commands.ssh_printenv(settings, need.name), check=False)
            value = r.stdout.strip().splitlines()[-1].strip() if r.ok and r.stdout.strip() else ""
        if not value and need.name == IDENTITY_VARIABLE:
            value = "\n".join(str(i) for i in identities(settings))
        if value:
            register(value)
            values[need.name] = value
        elif not executor.dry_run:
            missing.append(f"{need.name} ({need.why})")
    if missing:
        raise UserError("The watcher's off-site jobs need secrets this machine does not have: "
                        + "; ".join(missing) + ".",
                        fix="set them in this shell's environment (the bucket's AWS_* keys; the database URL is read "
                            f"from {settings.app}'s machine, so {settings.app} must run), or unset "
                            "BEZGELOR_OFFSITE_URL to deploy the watcher without off-site jobs.")
    return values


def status_summary(settings: Settings, executor: Executor, *, now: datetime | None = None) -> dict[str, Any]:
    """For the status overview and `db.backups`: the newest verified backup at each end (with its age) and the last
    drill (when, result, restore time); `lines` says it for people."""
    from bezgelor_tasks.backup import drill, manifest, offsite
    from bezgelor_tasks.backup.store import Store
    from bezgelor_tasks.lock import human_age

    now = now or datetime.now(UTC)
    local = [b for b in manifest.list_backups(settings.backups_path) if b.verified]
    out: dict[str, Any] = {"local": None, "offsite": None, "last_drill": None, "lines": []}
    if local:
        out["local"] = {"name": local[-1].name, "age_s": round((now - local[-1].created_at).total_seconds())}
    if settings.offsite_url:
        try:
            store = Store(settings, executor)
            far = [b for b in offsite.list_offsite(store) if b.verified]
            if far:
                out["offsite"] = {"name": far[-1].name, "age_s": round((now - far[-1].created_at).total_seconds())}
            out["last_drill"] = drill.last_drill(store)
        except UserError as e:
            out["offsite_error"] = e.message
    for end in ("local", "offsite"):
        got = out[end]
        label = "off-site" if end == "offsite" else "local"
        out["lines"].append(f"newest verified {label:8} " + (f"{got['name']} ({human_age(got['age_s'])} ago)" if got
                            else out.get(f"{end}_error", "none") if end == "offsite" and settings.offsite_url
                            else "none" if end == "local" or settings.offsite_url else "not set up"))
    d = out["last_drill"]
    out["lines"].append("last drill               " + (
        f"{'ok' if d['ok'] else 'FAILED'} {d['at'][:16].replace('T', ' ')} UTC, {d['backup']}, restore took "
        f"{d.get('restore_seconds') or 0:.1f}s" if d else "never"))
    return out
