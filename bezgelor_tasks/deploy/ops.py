"""`inv logs` and `inv audit`: recent log lines filtered here, and a timeline of what happened to the app.

`fly logs` has no `--since` (flyctl's grammar: `--no-tail`, `--machine`, `--region`, `--json`), so the
age filter reads each line's leading timestamp (`2026-12-01T23:00:00Z app[<machine>] <region> [info] ...`);
a line without one is kept. The service filter keeps lines that name the service or its port: the
game servers share one machine and one log, so that is all a log line can tell.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable
from typing import Any

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.journal import read_entries
from bezgelor_tasks.settings import Settings

_TIMESTAMP = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?Z?")
_SINCE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SERVICES = ("portal", "auth", "realm", "world")
# The seed's "crash logs": Logger's error levels, Elixir's exceptions and process crashes, the BEAM and the
# machine going down (Fly's own lines), and OOM kills.
_ERROR_LINE = re.compile(r"\[(?:error|critical|alert|emergency)\]|\*\* \(\w|\bterminating\b|crash_report|"
                         r"\bCRASH REPORT\b|Kernel pid terminated|\bexited with (?:code|status) [1-9]|"
                         r"\bout of memory\b|\bOOM\b|oom_kill|\berlang:.*error|\bEXIT\b", re.I)


def read_logs(fly: FlyClient, app: str, machine: str | None = None) -> list[str]:
    result = fly.run(commands.logs(fly.settings, app, machine), app=app)
    return [line for line in result.stdout.splitlines() if line.strip()]


def since_cutoff(since: str | None, now: float | None = None) -> float | None:
    if not since:
        return None
    m = _SINCE.match(since)
    if not m:
        raise UserError(f"--since {since!r} is not a duration.", fix="pass a number and a unit: 30s, 10m, 2h or 1d.")
    return (now or time.time()) - int(m.group(1)) * _UNIT_S[m.group(2)]


def timestamp(line: str) -> float | None:
    m = _TIMESTAMP.match(line)
    if not m:
        return None
    try:
        return float(calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def is_error(line: str) -> bool:
    """`inv logs --errors`: a line that reports an error, a crash or the machine dying."""
    return bool(_ERROR_LINE.search(line))


def newer_than(line: str, cutoff: float | None) -> bool:
    if cutoff is None:
        return True
    at = timestamp(line)
    return at is None or at >= cutoff


def service_filter(settings: Settings, service: str | None) -> Callable[[str], bool]:
    if not service:
        return lambda line: True
    name = service.strip().lower()
    if name not in SERVICES:
        raise UserError(f"--service {service!r} is not one of Bezgelor's services.",
                        fix=f"pass one of: {', '.join(SERVICES)}.")
    port = settings.ports.portal if name == "portal" else settings.ports.game()[name]
    words = re.compile(rf"\b{name}\b|[:\s]{port}\b" + (r"|\bphoenix\b|\bendpoint\b" if name == "portal" else ""),
                       re.I)
    return lambda line: bool(words.search(line))


# --- audit ------------------------------------------------------------------------------------------------

_JOURNAL_EVENTS = {
    "deploy-end": "deploy", "rollback": "rollback", "rollback-refused": "rollback refused",
    "rollback-forced": "rollback forced", "predeploy-backup": "backup", "db-rollback": "db rollback",
    "backup": "backup",
}


def _journal_row(e: dict[str, Any]) -> dict[str, Any] | None:
    what = _JOURNAL_EVENTS.get(str(e.get("event")))
    if what is None:
        return None
    if e.get("event") == "deploy-end":
        what = "deploy ok" if e.get("ok") else ("deploy interrupted" if e.get("interrupted") else "deploy failed")
        detail = f"{e.get('version') or '?'}" + (f" -> release v{e['release_version']}" if e.get("release_version")
                                                 else "")
        if not e.get("ok") and e.get("step"):
            detail += f" (step {e['step']})"
    elif str(e.get("event", "")).startswith("rollback"):
        detail = f"to release v{e.get('to_release')} {e.get('image_ref') or ''}".rstrip()
        if e.get("healthy") is not None:
            detail += " healthy" if e.get("healthy") else " NOT healthy"
    else:
        detail = str(e.get("backup") or e.get("path") or e.get("to") or "")
    return {"at": _iso(str(e.get("at") or "")), "source": "journal", "what": what,
            "by": "@".join(str(x) for x in (e.get("user"), e.get("host")) if x) or "?", "detail": detail}


def _iso(text: str) -> str:
    """Journal times (`%Y-%m-%dT%H:%M:%S%z`) as UTC `...Z`, comparable with Fly's."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(calendar.timegm(
            time.strptime(text, "%Y-%m-%dT%H:%M:%S%z")) - _offset(text)))
    except ValueError:
        return text


def _offset(text: str) -> int:
    m = re.search(r"([+-])(\d{2}):?(\d{2})$", text)
    if not m:
        return 0
    sign = 1 if m.group(1) == "+" else -1
    return sign * (int(m.group(2)) * 3600 + int(m.group(3)) * 60)


def audit_events(settings: Settings, fly: FlyClient) -> list[dict[str, Any]]:
    """Fly's releases (who, when, status, image) and this checkout's journal, oldest first. The journal
    is a cache (a fresh CI runner has none): Fly's releases are always there."""
    rows: list[dict[str, Any]] = []
    for r in fly.releases(settings.app):
        rows.append({"at": r.created_at, "source": "fly", "what": f"release v{r.version} {r.status}",
                     "by": r.user or "?", "detail": f"{r.image_ref} {r.description}".strip()})
    for e in read_entries(settings.state_dir / "journal.jsonl"):
        if e.get("app") not in (None, settings.app, settings.db_app):
            continue
        row = _journal_row(e)
        if row is not None:
            rows.append(row)
    return sorted(rows, key=lambda row: row["at"])
