"""Which backups to keep: pure, given the backups, their dates, verified flags and today.

Rules (numbers from settings): every backup younger than `daily_days` days stays; the first backup of
each month (the first verified one when the month has one) stays for `monthly_months` months; the newest
verified backup always stays, however old; a pinned backup (`inv db.pin`) stays until unpinned.
Everything else goes. The same rules apply at each end (local and off-site), each with its own numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class Candidate:
    name: str
    created_at: datetime
    verified: bool


@dataclass(frozen=True)
class Decision:
    name: str
    keep: bool
    reason: str


def months_back(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(y, m, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def decide(backups: list[Candidate], today: date, *, daily_days: int = 7, monthly_months: int = 3) -> list[Decision]:
    """One decision per backup, in the order given."""
    newest_verified = max((b for b in backups if b.verified), key=lambda b: b.created_at, default=None)
    firsts: dict[tuple[int, int], Candidate] = {}
    for b in sorted(backups, key=lambda b: (not b.verified, b.created_at)):
        firsts.setdefault((b.created_at.year, b.created_at.month), b)
    daily_from = today - timedelta(days=daily_days)
    monthly_from = months_back(today, monthly_months)
    out = []
    for b in backups:
        day = b.created_at.date()
        if newest_verified is not None and b is newest_verified:
            out.append(Decision(b.name, True, "newest verified backup (always kept)"))
        elif day > daily_from:
            out.append(Decision(b.name, True, f"daily, younger than {daily_days} days"))
        elif firsts.get((day.year, day.month)) is b and day >= monthly_from:
            out.append(Decision(b.name, True, f"first of {day:%Y-%m}, kept {monthly_months} months"))
        elif firsts.get((day.year, day.month)) is b:
            out.append(Decision(b.name, False, f"first of {day:%Y-%m}, older than {monthly_months} months"))
        else:
            out.append(Decision(b.name, False, f"daily, older than {daily_days} days"))
    return out


def with_pins(backups: list[Candidate], pinned: set[str], today: date, *, daily_days: int = 7,
              monthly_months: int = 3) -> list[Decision]:
    """`decide` for the unpinned backups; every pinned one is kept. One decision per backup, in order."""
    rest = {d.name: d for d in decide([b for b in backups if b.name not in pinned], today, daily_days=daily_days,
                                      monthly_months=monthly_months)}
    return [Decision(b.name, True, "pinned (kept until `inv db.unpin`)") if b.name in pinned else rest[b.name]
            for b in backups]
