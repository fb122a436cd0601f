"""`inv db.drill`, `db.pin`, `db.unpin`: restore drills of off-site backups; backups no retention removes."""

from __future__ import annotations

from invoke import Context, task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={"root": ROOT_HELP, "backup": "off-site backup name or unique prefix (default: the newest)",
            "dry_run": "show what would be recorded; the drill itself changes nothing",
            "json": "print the drill's record as JSON on stdout"})
@user_task
def drill(c: Context, backup: str | None = None, root: str | None = None, dry_run: bool = False,
          json: bool = False) -> None:
    """Restore the newest off-site backup into a scratch PostgreSQL; time it, compare rows and migrations; record it."""
    from bezgelor_tasks.backup import drill as drill_mod

    sess = session(root, dry_run=dry_run, json_mode=json)
    record = drill_mod.drill(sess.settings, sess.executor, sess.ui, name=backup)
    if json:
        sess.ui.emit_json(record)


@task(help={"root": ROOT_HELP, "dry_run": "show what would change; change nothing"})
@user_task
def pin(c: Context, backup: str, root: str | None = None, dry_run: bool = False) -> None:
    """Pin a backup (at every end that holds it): no retention removes it until `inv db.unpin`."""
    from bezgelor_tasks.backup import offsite

    sess = session(root, dry_run=dry_run)
    offsite.set_pin(sess.settings, sess.executor, sess.ui, backup, True)


@task(help={"root": ROOT_HELP, "dry_run": "show what would change; change nothing"})
@user_task
def unpin(c: Context, backup: str, root: str | None = None, dry_run: bool = False) -> None:
    """Unpin a backup: retention applies to it again."""
    from bezgelor_tasks.backup import offsite

    sess = session(root, dry_run=dry_run)
    offsite.set_pin(sess.settings, sess.executor, sess.ui, backup, False)
