"""`inv db.backups`: every backup at both ends in one table, the newest verified at each end, the last drill,
and Fly's own recovery window beside ours."""

from __future__ import annotations

from typing import Any

from bezgelor_tasks.backup import manifest
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI


def _state(last: dict[str, Any] | None) -> str:
    return "never verified" if last is None else f"{'verified' if last['ok'] else 'FAILED'} ({last['tier']})"


def show(settings: Settings, executor: Executor, ui: UI, *, fly: bool = True) -> dict[str, Any]:
    from bezgelor_tasks.backup import fly_window, offsite, remote, scheduled
    from bezgelor_tasks.backup.store import Store

    rows: dict[str, dict[str, Any]] = {}
    for b in manifest.list_backups(settings.backups_path):
        rows[b.name] = {"name": b.name, "created_at": b.created_at.isoformat(), "size": b.size,
                        "release": b.data.get("release_version"), "local": _state(b.last_verification),
                        "verified": b.verified, "pinned": bool(b.data.get("pinned")), "where": ["local"]}
    error = None
    if settings.offsite_url:
        try:
            for ob in offsite.list_offsite(Store(settings, executor)):
                row = rows.setdefault(ob.name, {"name": ob.name, "created_at": ob.created_at.isoformat(),
                                                "size": ob.size, "release": ob.data.get("release_version"),
                                                "verified": False, "pinned": False, "where": []})
                row.update(offsite=_state(ob.last_check), offsite_verified=ob.verified, offsite_size=ob.size,
                           encrypted=(ob.object.get("encryption") or {}).get("method") == "age")
                row["pinned"] = row["pinned"] or ob.pinned
                row["where"].append("off-site")
        except UserError as e:
            error = e.message
    ordered = sorted(rows.values(), key=lambda r: r["created_at"])
    for r in ordered:
        ends = "  ".join(f"{label}: {r[key]}" for key, label in (("local", "local"), ("offsite", "off-site"))
                         if key in r)
        ui.line(f"  {r['name']}  {r['size'] / 1e6:8.1f} MB  release {r.get('release') or '?':>6}  {ends}"
                + ("  PINNED" if r["pinned"] else ""))
    if not ordered:
        ui.line(f"  no backups under {settings.backups_path}" + (" nor off-site" if settings.offsite_url else ""))
    if error:
        ui.warn(f"off-site copies not listed: {error}")
    summary = scheduled.status_summary(settings, executor)
    for line in summary["lines"]:
        ui.line("  " + line)
    out: dict[str, Any] = {"backups": ordered, "summary": {k: v for k, v in summary.items() if k != "lines"},
                           "local": [r for r in ordered if "local" in r["where"]],
                           "offsite": [r for r in ordered if "off-site" in r["where"]]}
    if fly:
        fly_rows = remote.list_remote(settings, executor)
        win = fly_window.window(fly_rows)
        ui.line("  " + win.line())
        for row in fly_rows:
            shown = row.get("line") or (f"not available: {row['error']}" if "error" in row else
                                        "  ".join(f"{k}={v}" for k, v in row.items()))
            ui.line(f"  fly-side: {shown}")
        out["fly"] = fly_rows
        out["fly_window"] = {"start": win.start.isoformat() if win.start else None, "backups": win.backups}
    return out
