"""The manifest: what a backup is, written last, so a directory without one is not a backup.

Layout under settings.backups_path:
    20261128T143946Z_bezgelor-db_bezgelor/     (names sort by time under `ls`)
        manifest.json
        dump.pgc          (custom format)   or   dump.dir/ (directory format, `--jobs N`)
    .partial-...                               (a backup in progress, or one that was killed)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bezgelor_tasks import files

if TYPE_CHECKING:
    from bezgelor_tasks.run import Executor

MANIFEST = "manifest.json"
PARTIAL_PREFIX = ".partial-"
FORMAT_VERSION = 1
STAMP = "%Y%m%dT%H%M%SZ"


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime(STAMP)


def parse_stamp(name: str) -> datetime | None:
    try:
        return datetime.strptime(name.split("_", 1)[0], STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digests(archive: Path, base: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of the archive file, or of every file of a directory archive (paths relative to base)."""
    paths = sorted(p for p in archive.rglob("*") if p.is_file()) if archive.is_dir() else [archive]
    return {str(p.relative_to(base)): {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in paths}


@dataclass
class Backup:
    """A backup on disk: its directory and its manifest."""

    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def created_at(self) -> datetime:
        raw = self.data.get("created_at")
        if raw:
            return datetime.fromisoformat(raw)
        return parse_stamp(self.name) or datetime.fromtimestamp(self.path.stat().st_mtime, UTC)

    @property
    def archive(self) -> Path:
        return self.path / self.data["archive"]

    @property
    def size(self) -> int:
        return int(sum(f["size"] for f in self.data.get("files", {}).values()))

    @property
    def row_counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.data.get("row_counts", {}).items()}

    @property
    def last_verification(self) -> dict[str, Any] | None:
        history = self.data.get("verifications", [])
        return history[-1] if history else None

    @property
    def verified(self) -> bool:
        """Passed its latest verification (a later failure withdraws an earlier pass)."""
        last = self.last_verification
        return bool(last and last.get("ok"))

    def record_verification(self, executor: Executor, result: dict[str, Any]) -> bool:
        """Append a verification to the manifest, on disk first (False: a dry run, nothing recorded)."""
        data = {**self.data, "verifications": [*self.data.get("verifications", []), result]}
        if not write(executor, self.path, data):
            return False
        self.data = data
        return True


def text(data: dict[str, Any]) -> str:
    """manifest.json's text."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write(executor: Executor, directory: Path, data: dict[str, Any]) -> bool:
    """Write manifest.json atomically (temp file, fsync, rename) through the executor."""
    return files.write(executor, directory / MANIFEST, text(data), mode=0o600)


def load(directory: Path) -> Backup:
    return Backup(directory, json.loads((directory / MANIFEST).read_text()))


def list_backups(root: Path) -> list[Backup]:
    """Complete backups (directories with a readable manifest), oldest first."""
    if not root.is_dir():
        return []
    found = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and (d / MANIFEST).is_file():
            try:
                found.append(load(d))
            except (OSError, ValueError):
                continue
    return sorted(found, key=lambda b: b.created_at)


def partials(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.name.startswith(PARTIAL_PREFIX)) if root.is_dir() else []
