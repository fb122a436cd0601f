"""Durations and memory sizes: the one parser and the formatters of each.

Durations are read the way Go's `time.ParseDuration` reads them (what flyctl and Fly read fly.toml's
`"10s"`, `"1m30s"`, `"500ms"` with); our own settings (`BEZGELOR_DRAIN=10m`) also take a bare number
as seconds. Memory sizes are read the way flyctl reads `[[vm]] memory` (helpers.ParseSize with
go-units' RAMInBytes): a bare integer (or digit string) is MB; otherwise a number with an optional
k/m/g/t/p unit, an optional "i" and an optional "b", any case, binary multiples ("4gb" == "4GiB" ==
"4g" == 4096 MB).
"""

from __future__ import annotations

import math
import re
from typing import Any

from bezgelor_tasks.errors import UserError

# -- durations ---------------------------------------------------------------------------------------------

_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)?")
_SECONDS_PER = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_FORMS = "10m, 30s, 1m30s, 500ms or 1h"


def duration_seconds(value: object, *, bare_seconds: bool = False) -> float | None:
    """Seconds of a duration string ("10s", "1m30s", "0"), or None when it is not one.

    `bare_seconds`: a number without a unit ("90") counts as seconds (our settings); Go (fly.toml) takes
    a unit on everything but "0"."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        return None
    unitless = [n for n, unit in parts if not unit]
    if unitless and (len(parts) > 1 or not (bare_seconds or float(unitless[0]) == 0)):
        return None
    return sum(float(n) * _SECONDS_PER.get(unit, 1.0) for n, unit in parts)


def parse_duration(text: object, what: str = "duration") -> float:
    """Seconds of a duration we were given ("10m", "30s", "1m30s", "1h", "90" = seconds, "0"); a UserError
    naming `what` and the forms it takes otherwise."""
    seconds = duration_seconds(str(text).lower().replace(" ", ""), bare_seconds=True)
    if seconds is None:
        raise UserError(f"{what} {text!r} is not a duration.",
                        fix=f"write it like {DURATION_FORMS}, or a number of seconds (0 means no wait).")
    return seconds


def fly_duration(seconds: float) -> str:
    """The duration string Fly reads ("60s"): a bare number would mean milliseconds (or nanoseconds)."""
    return f"{int(seconds)}s"


def short(seconds: float) -> str:
    """A compact form for the terminal: 10m, 1m30s, 4.2s, 2h05m."""
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds != int(seconds) else f"{int(seconds)}s"
    if seconds >= 3600:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}h{rest // 60:02d}m"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs}s" if secs else f"{minutes}m"


def human(seconds: float) -> str:
    """600 → "10 minutes", 90 → "1 minute 30 seconds", 1 → "1 second" (whole seconds, rounded up)."""
    total = max(0, math.ceil(seconds - 1e-9))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}{'s' if n != 1 else ''}"
             for n, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second")) if n]
    return " ".join(parts) or "0 seconds"


# -- memory ------------------------------------------------------------------------------------------------

_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s?([kmgtp])?i?b?\s*", re.I)
_MB_PER_UNIT: dict[str, float | None] = {"": None, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 ** 2, "p": 1024 ** 3}
MEMORY_FORMS = 'a number of MB (4096) or a size with its unit ("4096mb", "4gb", "4GiB")'


def parse_memory_mb(value: Any) -> int | None:
    """MB of a memory size as Fly reads it: 4096, "4096", "4096mb", "4gb", "4GiB", "4 GB"; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    if value.strip().isdigit():
        return int(value.strip())
    m = _MEMORY.fullmatch(value)
    if not m:
        return None
    number, unit = float(m.group(1)), (m.group(2) or "").lower()
    per = _MB_PER_UNIT[unit]
    # go-units: a number without a unit is bytes (only the all-digits form above means MB)
    return int(number / (1024 * 1024)) if per is None else int(number * per)


def fly_memory(mb: int) -> str | int:
    """What we write for Fly: "4gb" for whole GB, else the MB as an integer (both forms Fly reads)."""
    return f"{mb // 1024}gb" if mb % 1024 == 0 else mb


def human_memory(mb: int) -> str:
    """For people: "4 GB", "512 MB"."""
    return f"{mb // 1024} GB" if mb % 1024 == 0 else f"{mb} MB"
