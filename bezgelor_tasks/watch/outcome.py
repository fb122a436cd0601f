"""What a scheduled job reports: ok, one line, details. Its own module, so the jobs (watch/jobs.py) and the
functions they run (backup/scheduled.py) both use it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    ok: bool
    summary: str                                   # one line
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.summary, "details": self.details}
