"""`inv db.rollback --to V`: back the database up, then revert every migration newer than V in the release.

The migrate script speaks Ecto's `:down, to:`, which reverts the version it is given too; the user's
`--to V` means "leave V applied", so the oldest migration newer than V is what the script gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from bezgelor_tasks import migrations
from bezgelor_tasks.backup import backup as backup_mod
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.fly.records import Migration
from bezgelor_tasks.journal import Journal
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI


@dataclass(frozen=True)
class DbRollbackPlan:
    app: str
    keep: int                          # stays applied (0: revert everything)
    reverting: tuple[Migration, ...]   # oldest first

    @property
    def ecto_target(self) -> int:
        """What the migrate script gets so that `keep` stays applied (only asked when reverting is not empty)."""
        target = migrations.ecto_rollback_target([str(m.version) for m in self.reverting], str(self.keep))
        assert target is not None, "nothing to revert"
        return int(target)


def plan(fly: FlyClient, app: str, keep: int) -> DbRollbackPlan:
    """What reverting to `keep` would undo, read from the running release's `migrate status`."""
    state = fly.migration_status(app)
    if keep != 0 and keep not in {m.version for m in state.applied}:
        raise UserError(f"{keep} is not an applied migration on {app}.",
                        fix="pick a version listed as `up` by `inv db.status` (or 0 to revert all).")
    return DbRollbackPlan(app, keep, tuple(sorted((m for m in state.applied if m.version > keep),
                                                  key=lambda m: m.version)))


def run(settings: Settings, fly: FlyClient, executor: Executor, ui: UI, p: DbRollbackPlan, *,
        skip_backup: bool) -> str | None:
    """Back up (unless skip_backup), revert, journal. Returns the backup's name (None when none was taken)."""
    backup_name = None
    if skip_backup:
        ui.warn(f"--skip-backup: NOT backing up {settings.db_app}/{settings.db_name} first; data in the tables "
                "the reverted migrations drop is lost for good.")
    else:
        ui.info(f"backing up {settings.db_app}/{settings.db_name} before reverting migrations "
                "(--skip-backup skips this)")
        made = backup_mod.predeploy_backup(settings, executor, ui,
                                           release_version=backup_mod.current_release(settings, executor))
        backup_name = made.path.name if made is not None else None
    fly.db_rollback(p.app, p.ecto_target)
    if not executor.dry_run:
        Journal(settings.state_dir, executor).record("db-rollback", app=p.app, to=p.keep,
                                                     reverted=[m.version for m in p.reverting], backup=backup_name,
                                                     skipped_backup=skip_backup)
    return backup_name
