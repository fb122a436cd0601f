"""`inv db.backup`, `db.backups`, `db.verify-backup`, `db.restore`, `db.prune`: flags → library calls → output."""

from __future__ import annotations

from typing import Any

from invoke import Context, task

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={"root": ROOT_HELP, "jobs": "parallel dump jobs; more than 1 writes directory format (big databases)",
            "remote": "take a Fly-side backup (Flex or Managed Postgres, from settings) instead of a local dump",
            "verify": "verify the new backup: none, quick, standard (default) or full",
            "dry_run": "show what would run; change nothing", "json": "print the result as JSON on stdout"})
@user_task
def backup(c: Context, root: str | None = None, jobs: int = 1, remote: bool = False, verify: str = "standard",
           dry_run: bool = False, json: bool = False) -> None:
    """Back up the Fly database through `fly proxy` into a local, checksummed, manifest-described archive."""
    from bezgelor_tasks.backup import backup as backup_mod
    from bezgelor_tasks.backup import manifest
    from bezgelor_tasks.backup import prune as prune_mod
    from bezgelor_tasks.backup import remote as fly_side
    from bezgelor_tasks.backup import verify as verify_mod

    sess = session(root, dry_run=dry_run, json_mode=json)
    s, ui = sess.settings, sess.ui
    if dry_run:
        cmds = [] if remote else backup_mod.describe(s, jobs)
        for cmd in cmds:
            ui.command(cmd.shown(), dry_run=True)
        ui.info(f"the backup would go to {s.backups_path}/<time>_{s.db_app}_{s.db_name}/ and then be pruned:")
        outcome: dict[str, Any] = {"commands": [cmd.as_json() for cmd in cmds],
                                   "prune": prune_mod.prune(s, ui, dry_run=True)}
        if json:
            ui.emit_json(outcome)
        return
    if remote:
        result = fly_side.create_remote(s, sess.executor, ui)
        if json:
            ui.emit_json(result)
        return
    try:
        made = backup_mod.create_backup(s, sess.executor, ui, jobs=jobs,
                                        release_version=backup_mod.current_release(s, sess.executor))
        assert made is not None
        if verify != "none":
            b = manifest.load(made.path)
            made.verification = verify_mod.verify(sess.executor, ui, b, verify, timeout=s.command_timeout_s)
            verify_mod.require_ok(b, made.verification)
    except UserError as e:  # "backup failed" reaches the alert channels, when some are set
        from bezgelor_tasks.alerts import events, notify

        notify(s, sess.executor, events.backup_failed(s.app, f"the backup of {s.db_app}", e.paragraph()))
        raise
    made.extra["prune"] = prune_mod.prune(s, ui)
    if json:
        ui.emit_json(made.as_json())


@task(help={"root": ROOT_HELP, "json": "print the list as JSON on stdout",
            "fly": "also list the Fly-side backups (asks flyctl)"})
@user_task
def backups(c: Context, root: str | None = None, json: bool = False, fly: bool = True) -> None:
    """List local backups (time, size, release, verified) and the Fly-side ones."""
    from bezgelor_tasks.backup import manifest
    from bezgelor_tasks.backup import remote as fly_side

    sess = session(root, json_mode=json)
    rows = []
    for b in manifest.list_backups(sess.settings.backups_path):
        last = b.last_verification
        state = "never verified" if last is None else f"{'verified' if last['ok'] else 'FAILED'} ({last['tier']})"
        rows.append({"name": b.name, "created_at": b.created_at.isoformat(), "size": b.size,
                     "release": b.data.get("release_version"), "verified": b.verified, "state": state})
        sess.ui.line(f"  {b.name}  {b.size / 1e6:8.1f} MB  release {b.data.get('release_version') or '?':>6}  {state}")
    if not rows:
        sess.ui.line(f"  no local backups under {sess.settings.backups_path}")
    fly_rows = fly_side.list_remote(sess.settings, sess.executor) if fly else []
    for row in fly_rows:
        shown = row.get("line") or (f"not available: {row['error']}" if "error" in row else
                                    "  ".join(f"{k}={v}" for k, v in row.items()))
        sess.ui.line(f"  fly-side: {shown}")
    if json:
        sess.ui.emit_json({"local": rows, "fly": fly_rows})


@task(help={"root": ROOT_HELP, "backup": "backup name or unique prefix (default: the newest)",
            "tier": "quick (sha256 + contents), standard (+ full read), full (+ restore and row counts; default)",
            "json": "print the result as JSON on stdout"})
@user_task
def verify_backup(c: Context, backup: str | None = None, root: str | None = None, tier: str = "full",
                  json: bool = False) -> None:
    """Check a backup: checksums, a full read, or a restore into a scratch PostgreSQL; records the result."""
    from bezgelor_tasks.backup import verify as verify_mod

    sess = session(root, json_mode=json)
    b = verify_mod.find(sess.settings.backups_path, backup)
    result = verify_mod.verify(sess.executor, sess.ui, b, tier, timeout=sess.settings.command_timeout_s)
    if json:
        sess.ui.emit_json({"backup": b.name, **result})
    verify_mod.require_ok(b, result)


@task(help={"root": ROOT_HELP, "backup": "local backup name or unique prefix",
            "target": "local (a local database) or app (the Fly database, in one transaction, after a fresh backup)",
            "database": "local database name (default <db>_restored)", "jobs": "parallel restore jobs (local)",
            "yes": "do not ask (needs --confirm-app)", "confirm_app": "the Fly database app's name, for --yes",
            "point_in_time": "RFC 3339 time: Fly restores to it into a NEW cluster, which is attached and deployed",
            "backup_id": "Managed Postgres backup id (`inv db.backups`): restored by Fly into a new cluster",
            "dry_run": "show the plan of a Fly-side restore; change nothing",
            "json": "print the report as JSON on stdout"})
@user_task
def restore(c: Context, backup: str = "", target: str = "local", root: str | None = None,
            database: str | None = None, jobs: int = 2, yes: bool = False, confirm_app: str | None = None,
            point_in_time: str | None = None, backup_id: str | None = None, dry_run: bool = False,
            json: bool = False) -> None:
    """Restore a local backup (into a local or the Fly database), or a Fly-side backup/point in time."""
    from bezgelor_tasks.backup import restore as restore_mod
    from bezgelor_tasks.backup import verify as verify_mod

    if backup.startswith("-"):  # Invoke hands `--help` after a positional to the positional
        raise UserError(f"{backup!r} is not a backup name.", fix="see `inv --help db.restore` for the options.")
    if point_in_time or backup_id:
        _fly_side_restore(root, point_in_time, backup_id, dry_run=dry_run, yes=yes, confirm_app=confirm_app,
                          json=json)
        return
    if not backup:
        raise UserError("Name the backup to restore, or a Fly-side one.",
                        fix="`inv db.restore NAME` (see `inv db.backups`), or --point-in-time / --backup-id.")
    sess = session(root, json_mode=json)
    b = verify_mod.find(sess.settings.backups_path, backup)
    report = restore_mod.restore(sess.settings, sess.executor, sess.ui, b, target=target, database=database,
                                 yes=yes, confirm_app=confirm_app, jobs=jobs)
    if json:
        sess.ui.emit_json(report)
    if report["problems"]:
        raise UserError("The restore finished but row counts differ: " + "; ".join(report["problems"]),
                        fix="check the target database; restore again into a fresh database to compare.")


@task(help={"root": ROOT_HELP, "dry_run": "show what would be deleted; delete nothing",
            "json": "print the decisions as JSON on stdout"})
@user_task
def prune(c: Context, root: str | None = None, dry_run: bool = False, json: bool = False) -> None:
    """Delete old backups: dailies after 7 days, firsts-of-month after 3 months; never the newest verified."""
    from bezgelor_tasks.backup import prune as prune_mod

    sess = session(root, json_mode=json)
    result = prune_mod.prune(sess.settings, sess.ui, dry_run=dry_run)
    if json:
        sess.ui.emit_json(result)


def _fly_side_restore(root: str | None, point_in_time: str | None, backup_id: str | None, *, dry_run: bool,
                      yes: bool, confirm_app: str | None, json: bool) -> None:
    from bezgelor_tasks.backup import fly_restore
    from bezgelor_tasks.backup import restore as restore_mod

    sess = session(root, dry_run=dry_run, json_mode=json)
    s = sess.settings
    if s.pg_flavor == "mpg":
        plan = fly_restore.mpg_restore_plan(s, sess.executor, backup_id=backup_id, pitr_time=point_in_time)
    elif backup_id:
        raise UserError("--backup-id names a Managed Postgres backup; Flex restores a point in time.",
                        fix="use --point-in-time 2026-06-01T12:00:00Z (or BEZGELOR_PG_FLAVOR=mpg).")
    else:
        assert point_in_time is not None
        plan = fly_restore.flex_pitr_plan(s, sess.executor, point_in_time)
    if not dry_run:
        restore_mod.confirm_target(s, yes=yes, confirm_app=confirm_app)
    outcome = fly_restore.execute(s, sess.executor, sess.ui, plan, dry_run=dry_run)
    if json:
        sess.ui.emit_json(outcome)


@task(help={"root": ROOT_HELP, "dry_run": "show the plan; change nothing", "json": "print the outcome as JSON"})
@user_task
def create(c: Context, root: str | None = None, dry_run: bool = False, json: bool = False) -> None:
    """Create the Managed Postgres cluster and attach it (DATABASE_URL pooled, DIRECT_DATABASE_URL direct)."""
    from bezgelor_tasks.backup import fly_restore

    sess = session(root, dry_run=dry_run, json_mode=json)
    if sess.settings.pg_flavor != "mpg":
        raise UserError("`inv db.create` creates Managed Postgres; Flex is created by `inv deploy.full`.",
                        fix="set BEZGELOR_PG_FLAVOR=mpg, or run `inv deploy.full`.")
    outcome = fly_restore.execute(sess.settings, sess.executor, sess.ui,
                                  fly_restore.mpg_create_plan(sess.settings, sess.executor), dry_run=dry_run)
    if json:
        sess.ui.emit_json(outcome)
