"""`inv db.prune` (also after each backup): apply `retention.decide` to the backups on disk.

Also removes `.partial-*` directories left by a backup that was killed outright (older than an hour,
so a backup running right now in another shell keeps its own).
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

from bezgelor_tasks import files
from bezgelor_tasks.backup import manifest, retention
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI

STALE_PARTIAL_S = 3600


def plan(settings: Settings, today: date) -> list[retention.Decision]:
    backups = manifest.list_backups(settings.backups_path)
    # pinned ones (`inv db.pin`) are kept whatever the rules say (retention.with_pins)
    return retention.with_pins(
        [retention.Candidate(b.name, b.created_at, b.verified) for b in backups],
        {b.name for b in backups if b.data.get("pinned")}, today, daily_days=settings.backup_keep_daily_days,
        monthly_months=settings.backup_keep_monthly_months)


def prune(settings: Settings, ui: UI, executor: Executor, *, today: date | None = None) -> dict[str, Any]:
    """Delete what retention lets go, through the executor (under its dry run: say what would go)."""
    root = settings.backups_path
    dry_run = executor.dry_run
    decisions = plan(settings, today or date.today())
    gone = [d for d in decisions if not d.keep]
    stale = [p for p in manifest.partials(root) if time.time() - p.stat().st_mtime > STALE_PARTIAL_S]
    verb = "would delete" if dry_run else "deleted"
    quiet = Executor(ui=ui, dry_run=dry_run, echo=False)  # the lines below say it, once
    for d in decisions:
        if d.keep:
            ui.line(f"  keep   {d.name}  ({d.reason})")
    for d in gone:
        files.remove(quiet, root / d.name)
        ui.line(f"  {verb} {d.name}  ({d.reason})")
    for p in stale:
        files.remove(quiet, p)
        ui.line(f"  {verb} {p.name}  (unfinished backup)")
    return {"dry_run": dry_run, "kept": [d.__dict__ for d in decisions if d.keep],
            "deleted": [d.__dict__ for d in gone], "partials": [Path(p).name for p in stale]}
