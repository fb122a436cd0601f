"""`inv db.backup`, `db.backups`, `db.verify-backup`, `db.restore`, `db.prune`: flags → library calls → output."""

from __future__ import annotations

import contextlib
from typing import Any

from invoke import Context, task

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={"root": ROOT_HELP, "jobs": "parallel dump jobs; more than 1 writes directory format (big databases)",
            "remote": "take a Fly-side backup (Flex or Managed Postgres, from settings) instead of a local dump",
            "verify": "verify the new backup: none, quick, standard (default) or full",
            "offsite": "also upload it, age-encrypted, to BEZGELOR_OFFSITE_URL (always: BEZGELOR_OFFSITE_ALWAYS)",
            "dry_run": "show what would run; change nothing", "json": "print the result as JSON on stdout"})
@user_task
def backup(c: Context, root: str | None = None, jobs: int = 1, remote: bool = False, verify: str = "standard",
           offsite: bool = False, dry_run: bool = False, json: bool = False) -> None:
    """Back up the Fly database through `fly proxy` into a local, checksummed, manifest-described archive."""
    if dry_run or remote:
        from bezgelor_tasks.backup import backup as backup_mod
        from bezgelor_tasks.backup import offsite_ops
        from bezgelor_tasks.backup import remote as fly_side

        sess = session(root, dry_run=dry_run, json_mode=json)
        s, ui = sess.settings, sess.ui
        if remote:
            result = fly_side.create_remote(s, sess.executor, ui)
            if json:
                ui.emit_json(result)
            return
        backup_mod.show_plan(s, ui, jobs)
        if offsite or s.offsite_always:
            ui.command(f"upload <the new backup>, age-encrypted, to {s.offsite_url or '(BEZGELOR_OFFSITE_URL unset)'}",
                       dry_run=True)
        ui.info("and then pruned:")
        outcome: dict[str, Any] = {"commands": [cmd.as_json() for cmd in backup_mod.describe(s, jobs)],
                                   "prune": offsite_ops.prune_both(s, sess.executor, ui,
                                                                   offsite_end=offsite or s.offsite_always),
                                   "dry_run": True}
        if json:
            ui.emit_json(outcome)
        return
    from bezgelor_tasks.backup import early  # the rest is imported while the tunnel opens

    try:
        # The tunnel opens first; settings checks, credentials, the release and the store are read meanwhile.
        with early.tunnel_first(root, json_mode=json, offsite=offsite) as start:
            from bezgelor_tasks.backup import backup as backup_mod
            from bezgelor_tasks.backup import manifest, offsite_ops
            from bezgelor_tasks.backup import verify as verify_mod

            s, ui, ex = start.settings, start.ui, start.executor
            made = backup_mod.create_backup(s, ex, ui, jobs=jobs, endpoint=start.endpoint,
                                            release_version=start.release, before_dump=start.before_dump)
            assert made is not None
            if verify != "none":
                b = manifest.load(made.path)
                made.verification = verify_mod.verify(ex, ui, b, verify, timeout=s.command_timeout_s)
                verify_mod.require_ok(b, made.verification)
            if (store := start.store()) is not None:
                from bezgelor_tasks.backup import offsite as offsite_mod

                made.extra["offsite"] = offsite_mod.upload(s, ex, ui, manifest.load(made.path), store=store)
    except UserError as e:  # "backup failed" reaches the alert channels, when some are set
        _alert_backup_failed(root, e)
        raise
    made.extra["prune"] = offsite_ops.prune_both(s, ex, ui, offsite_end=start.store() is not None)
    if json:
        ui.emit_json(made.as_json())


def _alert_backup_failed(root: str | None, error: UserError) -> None:
    """Tell the alert channels (nothing is sent without one; a settings problem leaves nobody to tell)."""
    from bezgelor_tasks import settings_load
    from bezgelor_tasks.alerts import events, notify
    from bezgelor_tasks.run import Executor

    try:
        s = settings_load.load(root)
    except UserError:
        return
    notify(s, Executor(echo=False), events.backup_failed(s.app, f"the backup of {s.db_app}", error.paragraph()))


@task(help={"root": ROOT_HELP, "json": "print the list as JSON on stdout",
            "fly": "also list the Fly-side backups and Fly's recovery window (asks flyctl)"})
@user_task
def backups(c: Context, root: str | None = None, json: bool = False, fly: bool = True) -> None:
    """List backups at both ends (size, release, verified, where), the last drill and Fly's recovery window."""
    from bezgelor_tasks.backup import listing

    sess = session(root, json_mode=json)
    out = listing.show(sess.settings, sess.executor, sess.ui, fly=fly)
    if json:
        sess.ui.emit_json(out)


@task(help={"root": ROOT_HELP, "backup": "backup name or unique prefix (default: the newest)",
            "tier": "quick (sha256 + contents), standard (+ full read), full (+ restore and row counts; default)",
            "from_": "local (default) or offsite: download, check, decrypt, then the tier",
            "json": "print the result as JSON on stdout",
            "dry_run": "verify, but do not record the result in the backup's manifest"})
@user_task
def verify_backup(c: Context, backup: str | None = None, root: str | None = None, tier: str = "full",
                  from_: str = "local", json: bool = False, dry_run: bool = False) -> None:
    """Check a backup (local or off-site): checksums, a full read, or a restore into a scratch PostgreSQL."""
    from bezgelor_tasks.backup import offsite_ops
    from bezgelor_tasks.backup import verify as verify_mod

    sess = session(root, dry_run=dry_run, json_mode=json)
    if _end(from_) == "offsite":
        result = offsite_ops.verify_offsite(sess.settings, sess.executor, sess.ui, backup, tier)
        if json:
            sess.ui.emit_json(result)
        offsite_ops.require_ok(result)
        return
    b = verify_mod.find(sess.settings.backups_path, backup)
    result = verify_mod.verify(sess.executor, sess.ui, b, tier, timeout=sess.settings.command_timeout_s)
    if json:
        sess.ui.emit_json({"backup": b.name, **result})
    verify_mod.require_ok(b, result)


def _end(value: str) -> str:
    if value.replace("-", "") not in ("local", "offsite"):
        raise UserError(f"--from {value!r} is not an end.", fix="use --from local or --from offsite.")
    return value.replace("-", "")


@task(help={"root": ROOT_HELP, "backup": "local backup name or unique prefix",
            "target": "local (a local database) or app (the Fly database, in one transaction, after a fresh backup)",
            "database": "local database name (default <db>_restored)", "jobs": "parallel restore jobs (local)",
            "yes": "do not ask (needs --confirm-app)", "confirm_app": "the Fly database app's name, for --yes",
            "to_time": "RFC 3339 time inside Fly's recovery window (`inv db.backups`): Fly restores to it into a "
                       "NEW cluster, which is attached and deployed",
            "point_in_time": "the former name of --to-time",
            "from_": "local (default) or offsite: fetch the off-site copy back (checked, decrypted) and restore it",
            "backup_id": "Managed Postgres backup id (`inv db.backups`): restored by Fly into a new cluster",
            "dry_run": "show what the restore would run (reading what it needs); restore nothing",
            "json": "print the report as JSON on stdout"})
@user_task
def restore(c: Context, backup: str = "", target: str = "local", root: str | None = None,
            database: str | None = None, jobs: int = 2, yes: bool = False, confirm_app: str | None = None,
            to_time: str | None = None, point_in_time: str | None = None, backup_id: str | None = None,
            from_: str = "local", dry_run: bool = False, json: bool = False) -> None:
    """Restore a local backup (into a local or the Fly database), or a Fly-side backup/point in time."""
    from bezgelor_tasks.backup import restore as restore_mod
    from bezgelor_tasks.backup import verify as verify_mod

    if backup.startswith("-"):  # Invoke hands `--help` after a positional to the positional
        raise UserError(f"{backup!r} is not a backup name.", fix="see `inv --help db.restore` for the options.")
    to_time = to_time or point_in_time
    if to_time or backup_id:
        _fly_side_restore(root, to_time, backup_id, dry_run=dry_run, yes=yes, confirm_app=confirm_app,
                          json=json)
        return
    if not backup:
        raise UserError("Name the backup to restore, or a Fly-side one.",
                        fix="`inv db.restore -b NAME` (see `inv db.backups`), or --to-time / --backup-id.")
    sess = session(root, dry_run=dry_run, json_mode=json)
    with contextlib.ExitStack() as stack:
        if _end(from_) == "offsite":
            from bezgelor_tasks.backup import offsite

            # A dry run checks the off-site copy in a private temporary folder (reading it changes nothing)
            # and shows the restore from there; a real run brings it back among the local backups first.
            fetch = offsite.looked_at if dry_run else offsite.bring_back
            b = stack.enter_context(fetch(sess.settings, sess.executor, sess.ui, backup))
        else:
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
    """Apply retention at both ends (local, off-site); never the newest verified copy of either, never a pinned one."""
    from bezgelor_tasks.backup import offsite_ops

    sess = session(root, dry_run=dry_run, json_mode=json)
    result = offsite_ops.prune_both(sess.settings, sess.executor, sess.ui)
    if json:
        sess.ui.emit_json(result)


def _fly_side_restore(root: str | None, point_in_time: str | None, backup_id: str | None, *, dry_run: bool,
                      yes: bool, confirm_app: str | None, json: bool) -> None:
    from bezgelor_tasks.backup import fly_restore
    from bezgelor_tasks.backup import restore as restore_mod

    sess = session(root, dry_run=dry_run, json_mode=json)
    s = sess.settings
    if s.pg_flavor == "mpg":
        if point_in_time:
            _inside_window(s, sess.executor, point_in_time)
        plan = fly_restore.mpg_restore_plan(s, sess.executor, backup_id=backup_id, pitr_time=point_in_time)
    elif backup_id:
        raise UserError("--backup-id names a Managed Postgres backup; Flex restores a point in time.",
                        fix="use --point-in-time 2026-06-01T12:00:00Z (or BEZGELOR_PG_FLAVOR=mpg).")
    else:
        assert point_in_time is not None
        _inside_window(s, sess.executor, point_in_time)
        plan = fly_restore.flex_pitr_plan(s, sess.executor, point_in_time)
    if not dry_run:
        restore_mod.confirm_target(s, yes=yes, confirm_app=confirm_app)
    elif yes:
        restore_mod.confirm_target(s, yes=yes, confirm_app=confirm_app)  # a wrong name is refused all the same
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


def _inside_window(settings: Any, executor: Any, when: str) -> None:
    """--to-time must fall inside Fly's recovery window (the same one `inv db.backups` shows)."""
    from bezgelor_tasks.backup import fly_window, remote

    try:
        at = fly_window.parse_time(when)
    except ValueError:
        raise UserError(f"{when!r} is not an RFC 3339 time.", fix="use e.g. 2026-06-01T12:00:00Z.") from None
    fly_window.window(remote.list_remote(settings, executor)).check(at)
