"""Fly's own recovery window, beside ours: how far back `db.restore --to-time` can go.

Flex (barman-cloud, `fly postgres backup list`): base backups plus continuous WAL, so any time from the
oldest completed base backup until now. Managed Postgres (`fly mpg backup list --json`): the same, from its
oldest completed backup. Read from the rows `remote.list_remote` returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bezgelor_tasks.errors import UserError

_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?")
_DONE = ("done", "completed", "complete", "succeeded")


@dataclass(frozen=True)
class Window:
    start: datetime | None   # None: Fly has no completed backup (no point in time to restore to)
    backups: int
    note: str = ""

    def line(self) -> str:
        if self.start is None:
            return f"Fly's recovery window: none ({self.note or 'no completed Fly-side backup'})"
        return (f"Fly's recovery window: {self.start:%Y-%m-%d %H:%M} UTC → now ({self.backups} completed "
                "Fly-side backup(s) plus continuous WAL)")

    def check(self, when: datetime, now: datetime | None = None) -> None:
        """Refuse a time outside the window before any restore starts."""
        now = now or datetime.now(UTC)
        if self.start is None or when < self.start or when > now:
            span = f"{self.start:%Y-%m-%dT%H:%M:%SZ} to now" if self.start else "empty"
            raise UserError(f"{when:%Y-%m-%dT%H:%M:%SZ} is outside the recovery window Fly keeps ({span}): "
                            "nothing was restored or attached.",
                            fix="pick a time inside it (`inv db.backups` shows it), or restore one of our own "
                                "backups (`inv db.restore -b NAME`, or with `--from offsite`).")


def parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def window(rows: list[dict[str, Any]]) -> Window:
    """From `remote.list_remote`'s rows: Flex table lines, or MPG's JSON objects."""
    errors = [str(r["error"]) for r in rows if "error" in r]
    starts = []
    for row in rows:
        if "line" in row:   # ID NAME START STOP STATUS
            text = str(row["line"])
            times = _TIME.findall(text)
            done = text.split()[-1].lower() in _DONE if text.split() else False
        else:
            times = [str(row.get("start") or row.get("stop") or "")]
            done = str(row.get("status", "")).lower() in _DONE
        if done and times and times[0]:
            starts.append(parse_time(times[0]))
    if not starts:
        return Window(None, 0, errors[0] if errors else "")
    return Window(min(starts), len(starts))
