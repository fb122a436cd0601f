"""How old the newest backup is, wherever backups are kept: for `inv status` and the watcher's age alert.

Each source answers for one place: `BackupAge(where, age_s)` (age_s None: the place has no backup yet),
or None when the place is not used here (no local backup folder on the watcher's machine, an off-site
store that is not configured). The newest *verified* backup counts: one that failed its check is no backup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bezgelor_tasks.settings import Settings


@dataclass(frozen=True)
class BackupAge:
    where: str
    age_s: float | None
    name: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"where": self.where, "age_s": None if self.age_s is None else round(self.age_s), "newest": self.name
                or None}


Source = Callable[[Settings], "BackupAge | None"]


def local(settings: Settings) -> BackupAge | None:
    """The newest verified backup in this machine's backup folder (none there: not used here)."""
    from bezgelor_tasks.backup.manifest import list_backups

    root = settings.backups_path
    if not root.is_dir():
        return None
    found = [b for b in list_backups(root) if b.verified]
    if not found:
        return BackupAge(f"local backups ({root})", None)
    newest = found[-1]
    return BackupAge(f"local backups ({root})", time.time() - newest.created_at.timestamp(), newest.name)


def offsite(settings: Settings) -> BackupAge | None:
    """The newest verified copy in the off-site bucket (BEZGELOR_OFFSITE_URL unset: not used here)."""
    if not settings.offsite_url:
        return None
    from bezgelor_tasks.backup.offsite import list_offsite
    from bezgelor_tasks.backup.store import Store
    from bezgelor_tasks.run import Executor
    from bezgelor_tasks.ui import UI

    where = f"off-site ({settings.offsite_url})"
    found = [b for b in list_offsite(Store(settings, Executor(ui=UI(), echo=False))) if b.verified]
    if not found:
        return BackupAge(where, None)
    newest = found[-1]
    return BackupAge(where, time.time() - newest.created_at.timestamp(), newest.name)


def sources() -> list[Source]:
    return [local, offsite]


def ages(settings: Settings) -> list[BackupAge]:
    out = []
    for source in sources():
        try:
            found = source(settings)
        except Exception as e:  # a broken source is reported as such, never stops the watcher
            found = BackupAge(f"{getattr(source, '__name__', 'a backup source')} (unreadable: {e})", None)
        if found is not None:
            out.append(found)
    return out
