"""`inv db.*` (migrations): run, inspect and roll back Ecto migrations inside the deployed release.

They call the release's overlay script through `fly ssh console -C "/app/bin/migrate ..."`.
Backup tasks live in tasks/db_backup.py.
"""

from __future__ import annotations

from typing import Any

from invoke import task

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task

# The backup tasks join this collection (`inv db.backup`, `inv db.restore`, ...).
from bezgelor_tasks.tasks.db_backup import backup, backups, create, prune, restore, verify_backup
from bezgelor_tasks.tasks.db_offsite import drill, pin, unpin

__all__ = ["backup", "backups", "create", "drill", "migrate", "pin", "prune", "restore", "rollback", "status",
           "unpin", "verify_backup"]

DRY_HELP = "Show the flyctl command without running it."


@task(help={"root": ROOT_HELP, "dry_run": DRY_HELP})
@user_task
def migrate(c: Any, root: str | None = None, dry_run: bool = False) -> None:
    """Run pending migrations in the deployed release (/app/bin/migrate)."""
    from bezgelor_tasks.fly.client import FlyClient

    s = session(root, dry_run=dry_run)
    FlyClient(s.settings, s.executor).migrate(s.settings.app)
    if not dry_run:
        s.ui.ok(f"migrations ran on {s.settings.app}")


@task(help={"root": ROOT_HELP, "json_": "Print one JSON document on stdout."})
@user_task
def status(c: Any, root: str | None = None, json_: bool = False) -> None:
    """Show which migrations are applied in the deployed database."""
    from bezgelor_tasks.fly.client import FlyClient

    s = session(root, json_mode=json_)
    state = FlyClient(s.settings, s.executor).migration_status(s.settings.app)
    if json_:
        s.ui.emit_json({**state.as_json(), "pending": [m.version for m in state.pending]})
        return
    for repo in state.repos:
        s.ui.heading(repo.repo)
        for m in repo.migrations:
            s.ui.line(f"  {m.status:<5} {m.version}  {m.name}")
    s.ui.info(f"{len(state.pending)} pending" if state.pending else "all migrations applied")


def _confirm(app: str, yes: bool, confirm_app: str | None) -> None:
    """Irreversible: the user types the app name (or passes --yes --confirm-app NAME in scripts)."""
    if yes:
        if confirm_app != app:
            raise UserError(f"--yes needs --confirm-app {app} to roll back {app}'s database "
                            f"(got {confirm_app!r}).", fix=f"add --confirm-app {app}.")
        return
    from bezgelor_tasks.ui import confirm

    if not confirm(f"Type the app name ({app}) to roll its database back:", expect=app, no_terminal=UserError(
            "Rolling back migrations needs a confirmation and there is no terminal to ask on; nothing was rolled "
            "back.", fix=f"pass --yes --confirm-app {app} (or --dry-run to see what it would revert).")):
        raise UserError("The name did not match; nothing was rolled back.", fix=f"type exactly {app}.")


@task(help={"to": "Migration version to end at: it stays applied, every later one is reverted (0: all).",
            "root": ROOT_HELP, "yes": "Do not ask (needs --confirm-app).",
            "confirm_app": "The app name, repeated, to confirm with --yes.", "dry_run": DRY_HELP,
            "skip_backup": "Do not back the database up first (the reverted tables' data is then lost for good)."})
@user_task
def rollback(c: Any, to: str, root: str | None = None, yes: bool = False, confirm_app: str | None = None,
             dry_run: bool = False, skip_backup: bool = False) -> None:
    """Back the database up, then revert the migrations after VERSION (data in dropped tables is lost)."""
    from bezgelor_tasks.deploy import db_rollback
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.game.portal import DisconnectCheck, Portal, confirm_disconnect

    if not to.strip().isdigit():
        raise UserError(f"--to {to!r} is not a migration version.",
                        fix="use a timestamp from `inv db.status`, e.g. --to 20240101000000.")
    s = session(root, dry_run=dry_run)
    fly = FlyClient(s.settings, s.executor)
    p = db_rollback.plan(fly, s.settings.app, int(to))
    if not p.reverting:
        s.ui.ok(f"{p.keep} is already the newest applied migration; nothing to roll back.")
        return
    listed = ", ".join(f"{m.version} {m.name}" for m in reversed(p.reverting))
    s.ui.warn(f"will revert {len(p.reverting)} migration(s) on {s.settings.app}: {listed}")
    players: DisconnectCheck | None = None
    if not dry_run:
        _confirm(s.settings.app, yes, confirm_app)
        # Players on the tables that are about to go away: the same question as before a restart.
        players = confirm_disconnect(Portal(s.settings, s.executor), s.ui, yes=yes, action="the database rollback",
                                     hint=" (warn them first: inv announce \"...\")")
    backup_name = db_rollback.run(s.settings, fly, s.executor, s.ui, p, skip_backup=skip_backup)
    if not dry_run:
        kept = f"; the data before it is in backup {backup_name}" if backup_name else \
            ("; NO backup was taken (--skip-backup)" if skip_backup else "")
        s.ui.ok(f"{s.settings.app}'s database is back at {p.keep}{kept}. The running code may expect the newer "
                "schema: roll the app back too (`inv rollback.app`, which checks the migrations).")
        if players is not None:
            s.ui.line(f"  players    {players.summary()}")
