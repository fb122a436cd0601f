"""`inv rollback.*` tasks (thin: flags → library calls → output)."""

from __future__ import annotations

import sys

from invoke import Context, task

from bezgelor_tasks import journal
from bezgelor_tasks.deploy import rollback as rb
from bezgelor_tasks.deploy.state import ensure_state_dir
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.fly.records import Release
from bezgelor_tasks.lock import DeployLock
from bezgelor_tasks.tasks._common import session, user_task


@task(help={"root": "the Bezgelor checkout", "json": "print the releases as JSON"})
@user_task
def list(c: Context, root: str | None = None, json: bool = False) -> None:  # noqa: A001 (the task's name)
    """The app's releases, newest first: version, image, status, date, newest migration, safe to roll back to now."""
    sess = session(root, json_mode=json)
    s = sess.settings
    fly = FlyClient(s, sess.executor)
    releases = fly.releases(s.app)
    running = rb.current(releases)
    deployed = journal.deploys_by_version(s.state_dir / "journal.jsonl")
    records = rb.migration_records(s)
    database = rb.read_database(fly, s.app) if releases else rb.DatabaseState(())
    rows = []
    for r in releases:
        is_current = running is not None and r.version == running.version
        check = rb.check_migrations(s, r, records, database)
        rows.append({"version": r.version, "status": r.status, "image_ref": r.image_ref, "created_at": r.created_at,
                     "git_version": deployed.get(str(r.version), {}).get("version")
                     or (check.record.git_version if check.record else None) or None,
                     "current": is_current, "newest_migration": check.target_newest,
                     "migrations_recorded": check.record is not None,
                     "safe_now": _safe_now(r, is_current, check), "migration_check": check.as_json()})
    if json:
        sess.ui.emit_json(rows)  # each row's migration_check names the database's current migration
        return
    if not rows:
        sess.ui.info(f"{s.app} has no releases yet.")
        return
    sess.ui.info(f"database: newest applied migration {database.current or 'none'}" if database.applied is not None
                 else f"database: migrations unreadable ({database.error})")
    sess.ui.line(f"  {'release':<8} {'status':<11} {'date':<22} {'newest migration':<17} {'safe now':<30} image  (git version)")
    for row in rows:
        mark = "*" if row["current"] else " "
        newest = row["newest_migration"] or ("none" if row["migrations_recorded"] else "?")
        sess.ui.line(f"{mark} v{row['version']!s:<7} {row['status']:<11} {row['created_at']:<22} {newest:<17} "
                     f"{row['safe_now']:<30} {row['image_ref']}  {row['git_version'] or ''}".rstrip())


def _safe_now(release: Release, is_current: bool, check: rb.MigrationCheck) -> str:
    """One short verdict per release: yes / no: <why> / unknown: <why>."""
    if is_current:
        return "running now"
    if release.status.lower() != "complete" or not release.image_ref:
        return f"no: {release.status or 'unknown'} release"
    if check.safety.safe is True:
        return "yes"
    if check.safety.safe is False:
        return f"no: db ahead ({', '.join(check.safety.ahead)})"
    return "unknown: no record" if check.record is None else "unknown: db unreadable"


@task(help={"root": "the Bezgelor checkout", "version": "the release to go back to (default: the previous good one)",
            "yes": "do not ask", "json": "print the result as JSON",
            "force": "roll back even when the database is ahead of the release's code or its migrations are "
                     "unknown (you accept that the old code runs on a schema it may not know)"})
@user_task
def app(c: Context, root: str | None = None, version: str | None = None, yes: bool = False,
        json: bool = False, force: bool = False) -> None:
    """Deploy an earlier good release's image again and health-gate it; refused when the database is ahead
    of that release's migrations (`inv db.rollback --to V` first, or --force)."""
    wanted = _release_number(version)
    sess = session(root, json_mode=json)
    s, ui = sess.settings, sess.ui
    fly = FlyClient(s, sess.executor)
    ensure_state_dir(s)
    log = journal.Journal(s.state_dir)
    with DeployLock(s.state_dir, s.app).held("rollback"):
        releases = fly.releases(s.app)
        target = rb.choose_target(releases, version=wanted, app=s.app)
        running = rb.current(releases)
        if running is not None and wanted is not None and target.image_ref == running.image_ref:
            raise UserError(f"Release v{wanted} runs the image {target.image_ref}, which is already live.",
                            fix="pick another release from `inv rollback.list`.")
        check = rb.check_migrations(s, target, rb.migration_records(s, log), rb.read_database(fly, s.app))
        forced = check.safety.safe is not True
        if forced and not force:
            log.record("rollback-refused", app=s.app, to_release=target.version, image_ref=target.image_ref,
                       migration_check=check.as_json())
            raise check.refusal(s.app)
        if forced:
            ui.warn(f"--force: {check.safety.reason} Rolling back anyway, at your risk.")
        else:
            ui.info(f"migrations: {check.safety.reason}")
        ui.info(f"will deploy {target.image_ref} (release v{target.version}) to {s.app}; database migrations "
                "are not undone (`inv db.rollback` does that)")
        if not yes:
            if not sys.stdin.isatty():
                raise UserError("rollback.app needs confirmation but there is no terminal to ask on.",
                                fix="pass --yes.")
            if input("Roll back? [y/N] ").strip().lower() not in ("y", "yes"):
                raise UserError("Stopped before changing anything.", fix="run again and answer y, or pass --yes.")
        reason = "inv rollback.app --force" if forced else "inv rollback.app"
        result = rb.roll_back(s, fly, ui, log, target, reason=reason, check=check, forced=forced)
    if json:
        ui.emit_json(result.as_json())
    ui.heading("Summary")
    ui.line(f"  release    v{target.version} ({target.image_ref}), now release v{result.release_version}")
    ui.line(f"  migrations target newest {check.target_newest or ('none' if check.record else 'unknown')}, "
            f"database {check.database.current or ('unknown' if check.database.applied is None else 'none')}")
    if forced:
        ui.warn(f"  FORCED past the migration check: {check.safety.reason} (recorded in the journal)")
    ui.ok(f"{s.app} runs release v{target.version}'s image again ({target.image_ref}); "
          f"{result.health.summary()}")


def _release_number(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    digits = str(text).strip().lstrip("vV")
    if not digits.isdigit():
        raise UserError(f"--version {text!r} is not a release number.",
                        fix="pass a number from `inv rollback.list`, e.g. --version 12.")
    return int(digits)
