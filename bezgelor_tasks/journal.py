"""What each deploy step did, as append-only JSON lines in `.bezgelor/journal.jsonl`.

Every record is redacted before it is written, and records hold names, argv (redacted) and
outcomes - never secret values. The journal is an audit log and a hint; resuming after a failure
asks the world (flyctl), not the journal, whether a step is done.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bezgelor_tasks import files
from bezgelor_tasks.redact import redact

if TYPE_CHECKING:
    from bezgelor_tasks.run import Executor

_write_lock = threading.Lock()


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))


def _user() -> str:
    """Who ran it, for `inv audit`: the CI actor when there is one, else the login name."""
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return f"{actor} (CI)"
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


class Journal:
    """The journal of one checkout. Records are written through `executor` (a dry run writes none)."""

    def __init__(self, state_dir: Path, executor: Executor, *, run_id: str | None = None) -> None:
        self.path = state_dir / "journal.jsonl"
        self.executor = executor
        self.run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run": self.run_id, "event": event,
                 "host": socket.gethostname(), "user": _user(), **fields}
        clean = _scrub(entry)
        line = json.dumps(clean, sort_keys=True, default=str)
        with _write_lock:
            files.append(self.executor, self.path, line)
        return clean

    def entries(self) -> Iterator[dict[str, Any]]:
        return read_entries(self.path)


def read_entries(path: Path) -> Iterator[dict[str, Any]]:
    """Records in order; a torn last line (a crash mid-write) is skipped, not fatal."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no journal yet (or `.bezgelor` is not a folder)
        return
    for raw in text.splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict):
            yield data


def deploys_by_version(path: Path) -> dict[str, dict[str, Any]]:
    """The last `deployed` record per Fly release version (as a string): which git version, image, when."""
    found: dict[str, dict[str, Any]] = {}
    for e in read_entries(path):
        if e.get("event") == "deployed" and e.get("release_version") is not None:
            found[str(e["release_version"])] = e
    return found


def last_deploy(path: Path) -> dict[str, Any] | None:
    last: dict[str, Any] | None = None
    for e in read_entries(path):
        if e.get("event") == "deployed":
            last = e
    return last
