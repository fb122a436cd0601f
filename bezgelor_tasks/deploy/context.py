"""What the deploy steps share: settings, the flyctl client, and what earlier steps learned."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bezgelor_tasks import git
from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.journal import Journal
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI

# Placeholders shown by --dry-run for values an earlier step will produce.
IPV4_LATER = "<IPv4 from step ipv4>"
IMAGE_LATER = "<image from step build>"


@dataclass
class DeployContext:
    settings: Settings
    fly: FlyClient
    ui: UI
    executor: Executor
    journal: Journal
    version: str = ""             # APP_VERSION: `git describe --tags --always --dirty`
    label: str = ""               # the image label derived from it
    image_ref: str = ""
    ipv4: str = ""
    release_version: int | None = None
    db_password_path: Path | None = None
    health: Any = None            # health.HealthReport of the last gate
    skip_backup: bool = False     # --skip-backup: no backup before migrating (stated in the summary)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return self.executor.dry_run


def git_describe(settings: Settings) -> Command:
    return git.describe(settings.root)


def read_version(settings: Settings, executor: Executor) -> str:
    result = executor.run(git_describe(settings), check=False)
    version = result.stdout.strip()
    if not result.ok or not version:
        raise UserError(
            "The checkout has no git version to deploy: it is not a git repository with a commit.",
            detail=f"{settings.root}: `git describe --tags --always --dirty` failed: "
                   f"{(result.stderr.strip() or 'no output')[:200]}",
            fix="deploy from a git checkout with at least one commit (`git init && git add -A && git commit`).")
    return version


_LABEL_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def image_label(version: str, now: float | None = None) -> str:
    """A Docker tag from the git version; a dirty tree gets a timestamp (its content has no name)."""
    label = _LABEL_BAD.sub("-", version).lstrip(".-") or "build"
    if version.endswith("-dirty"):
        label += time.strftime("-%Y%m%d%H%M%S", time.gmtime(now))
    return label[:128]
