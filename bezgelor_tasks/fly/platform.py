"""What Fly's platform offers, as data: regions (data/regions.json) and machine limits (data/machines.json).

Both files say where and when they were read from flyctl, fly-go and Fly's docs; update them there.
Settings validation, sizing and costs all read these, so a limit changes in one place.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"
REGIONS_FILE = DATA / "regions.json"
MACHINES_FILE = DATA / "machines.json"

_PRESET = re.compile(r"^(?:(?P<shared>shared)-cpu|(?P<perf>performance))-(?P<cpus>\d+)x$")


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def regions() -> dict[str, str]:
    """Region code → location, as listed in regions.json."""
    return dict(_read(REGIONS_FILE)["regions"])


def deprecated_regions() -> dict[str, str]:
    """Retired region code → the region Fly consolidated it into (flyctl maps them the same way)."""
    return dict(_read(REGIONS_FILE)["deprecated"])


def regions_as_of() -> str:
    return str(_read(REGIONS_FILE)["as_of"])


@dataclass(frozen=True)
class CpuKind:
    name: str
    cpus: tuple[int, ...]          # counts flyctl accepts for a machine of this kind
    preset_cpus: tuple[int, ...]   # counts with a named size (shared-cpu-Nx, performance-Nx)
    min_memory_mb_per_cpu: int
    max_memory_mb_per_cpu: int
    memory_step_mb: int

    def memory_range(self, cpus: int) -> tuple[int, int]:
        return cpus * self.min_memory_mb_per_cpu, cpus * self.max_memory_mb_per_cpu


def cpu_kinds() -> dict[str, CpuKind]:
    return {name: CpuKind(name, tuple(k["cpus"]), tuple(k["preset_cpus"]), int(k["min_memory_mb_per_cpu"]),
                          int(k["max_memory_mb_per_cpu"]), int(k["memory_step_mb"]))
            for name, k in _read(MACHINES_FILE)["kinds"].items()}


def vm_size_name(kind: str, cpus: int) -> str:
    """Fly's name for a CPU kind and count: shared-cpu-2x, performance-4x."""
    return f"shared-cpu-{cpus}x" if kind == "shared" else f"performance-{cpus}x"


def parse_vm_size(size: str) -> tuple[str, int] | None:
    """'shared-cpu-2x' → ('shared', 2); None when the text is not shaped like a Fly size."""
    m = _PRESET.match(size.strip())
    if not m:
        return None
    return ("shared" if m["shared"] else "performance"), int(m["cpus"])
