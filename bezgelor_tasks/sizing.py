"""How much memory the game machine needs: the checkout's game data, times what ETS makes of it, plus the rest.

The numbers come from the deployment plan's "Memory Analysis" (the seed plan): 1 GB of JSON game data
becomes 2-3 GB in ETS, the BEAM itself takes ~200 MB, Phoenix/Cowboy ~100 MB, the World/Zone/Session
GenServers ~200 MB, and the Ecto pool ~50 MB (10 connections). They live in `PLAN` and nowhere else.
`inv plan.size` prints this estimate and `inv verify` uses the same one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.command import Command
from bezgelor_tasks.fly import commands as fly_commands
from bezgelor_tasks.fly import platform
from bezgelor_tasks.settings import Settings

MB = 1024 * 1024


@dataclass(frozen=True)
class MemoryModel:
    """The plan's memory analysis as numbers (MB unless named otherwise)."""

    ets_factor: float = 2.5          # "1GB JSON → ~2-3GB in ETS": the middle of the range
    ets_factor_low: float = 2.0
    ets_factor_high: float = 3.0
    beam_base_mb: int = 200          # "BEAM VM base: ~200MB"
    phoenix_mb: int = 100            # "Phoenix/Cowboy: ~100MB"
    genservers_mb: int = 200         # "GenServers (World, Zone, Sessions): ~200MB base"
    db_connection_mb: int = 5        # "Database connections (pool 10): ~50MB"
    db_pool_size: int = 10
    margin_fraction: float = 0.20    # "leaves ~500MB-1GB headroom": keep 20% of the total free ...
    margin_min_mb: int = 512         # ... and never less than 512 MB


PLAN = MemoryModel()

# Fly's memory sizes: 256, 512, 1024, 2048, then whole GB. Each CPU allows a range of memory
# (shared: 256..2048 MB per CPU, performance: 2048..8192 MB per CPU): data/machines.json via fly.platform.
FLY_SMALL_STEPS_MB = (256, 512, 1024, 2048)
_KINDS = platform.cpu_kinds()
MAX_MB_PER_CPU = {k.name: k.max_memory_mb_per_cpu for k in _KINDS.values()}
MIN_MB_PER_CPU = {k.name: k.min_memory_mb_per_cpu for k in _KINDS.values()}
CPU_COUNTS = {k.name: k.preset_cpus for k in _KINDS.values()}  # named sizes only: `fly scale vm` takes a name
vm_size_name = platform.vm_size_name


def fly_memory_step(mb: int) -> int:
    """The smallest memory size Fly offers that holds `mb`."""
    for step in FLY_SMALL_STEPS_MB:
        if mb <= step:
            return step
    return math.ceil(mb / 1024) * 1024


@dataclass(frozen=True)
class DataScan:
    directory: Path
    exists: bool
    files: int
    bytes: int


def scan_json(directory: Path) -> DataScan:
    """Total size of every *.json below `directory` (recursive; symlinked folders are not followed)."""
    if not directory.is_dir():
        return DataScan(directory, False, 0, 0)
    files = total = 0
    stack = [str(directory)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.endswith(".json") and entry.is_file():
                    files += 1
                    total += entry.stat().st_size
    return DataScan(directory, True, files, total)


@dataclass(frozen=True)
class MemoryEstimate:
    data_dir: str
    data_found: bool
    data_bytes: int
    data_files: int
    ets_factor: float
    ets_factor_low: float
    ets_factor_high: float
    parts: dict[str, int]            # MB per part; they add up to total_mb exactly
    total_mb: int
    total_low_mb: int
    total_high_mb: int
    vm_memory_mb: int
    vm_cpus: int
    vm_cpu_kind: str
    headroom_mb: int                 # vm_memory_mb - total_mb (negative: it does not fit)
    margin_mb: int                   # what we want left free
    required_mb: int                 # total_mb + margin_mb
    recommended_mb: int              # required_mb rounded up to a Fly memory size
    recommended_cpus: int            # CPUs that allow recommended_mb (more than vm_cpus when needed)
    ok: bool                         # the configured VM holds total + margin
    notes: tuple[str, ...] = field(default=())

    @property
    def data_mb(self) -> float:
        return self.data_bytes / MB

    def as_json(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir, "data_found": self.data_found, "data_bytes": self.data_bytes,
            "data_files": self.data_files, "data_mb": round(self.data_mb, 1),
            "ets_factor": self.ets_factor, "ets_factor_range": [self.ets_factor_low, self.ets_factor_high],
            "parts_mb": dict(self.parts), "total_mb": self.total_mb,
            "total_range_mb": [self.total_low_mb, self.total_high_mb],
            "vm": {"memory_mb": self.vm_memory_mb, "cpus": self.vm_cpus, "cpu_kind": self.vm_cpu_kind},
            "headroom_mb": self.headroom_mb, "margin_mb": self.margin_mb, "required_mb": self.required_mb,
            "recommended_mb": self.recommended_mb, "recommended_cpus": self.recommended_cpus, "ok": self.ok,
            "notes": list(self.notes),
        }


def _parts(data_bytes: int, factor: float, model: MemoryModel) -> dict[str, int]:
    return {
        "game data in ETS": math.ceil(data_bytes / MB * factor),
        "BEAM base": model.beam_base_mb,
        "Phoenix/Cowboy": model.phoenix_mb,
        "GenServers": model.genservers_mb,
        "DB pool": model.db_connection_mb * model.db_pool_size,
    }


def cpus_for(kind: str, memory_mb: int, at_least: int) -> int:
    """The smallest CPU count (>= at_least) whose size allows `memory_mb`; the largest size if none does."""
    counts = CPU_COUNTS.get(kind, CPU_COUNTS["shared"])
    limit = MAX_MB_PER_CPU.get(kind, MAX_MB_PER_CPU["shared"])
    for n in counts:
        if n >= at_least and memory_mb <= n * limit:
            return n
    return counts[-1]


def estimate_from_bytes(settings: Settings, data: DataScan, model: MemoryModel = PLAN,
                        data_dir: str = "") -> MemoryEstimate:
    parts = _parts(data.bytes, model.ets_factor, model)
    total = sum(parts.values())
    low = sum(_parts(data.bytes, model.ets_factor_low, model).values())
    high = sum(_parts(data.bytes, model.ets_factor_high, model).values())
    margin = max(model.margin_min_mb, math.ceil(total * model.margin_fraction))
    required = total + margin
    kind, cpus = settings.vm_cpu_kind, settings.vm_cpus
    recommended = max(fly_memory_step(required), MIN_MB_PER_CPU.get(kind, 256) * cpus)
    notes: list[str] = []
    if not data.exists:
        notes.append(f"{data_dir or data.directory} does not exist: the estimate counts no game data.")
    elif data.files == 0:
        notes.append(f"{data_dir or data.directory} holds no *.json files: the estimate counts no game data.")
    ok = settings.vm_memory_mb >= required
    allowed = MAX_MB_PER_CPU.get(kind, MAX_MB_PER_CPU["shared"]) * cpus
    if settings.vm_memory_mb > allowed:
        notes.append(f"{vm_size_name(kind, cpus)} allows at most {allowed} MB, so Fly will refuse "
                     f"{settings.vm_memory_mb} MB: set BEZGELOR_VM_CPUS={cpus_for(kind, settings.vm_memory_mb, cpus)}.")
    if ok and settings.vm_memory_mb < high + model.margin_min_mb:
        notes.append(f"If the data takes {model.ets_factor_high:g}x its size in ETS (the plan's upper bound) the "
                     f"estimate is {high} MB, leaving {settings.vm_memory_mb - high} MB of the "
                     f"{settings.vm_memory_mb} MB configured: watch memory after the first deploy "
                     "(fly dashboard, Metrics) and scale up if it runs close.")
    return MemoryEstimate(
        data_dir=data_dir or str(data.directory), data_found=data.exists, data_bytes=data.bytes,
        data_files=data.files, ets_factor=model.ets_factor, ets_factor_low=model.ets_factor_low,
        ets_factor_high=model.ets_factor_high, parts=parts, total_mb=total, total_low_mb=low,
        total_high_mb=high, vm_memory_mb=settings.vm_memory_mb, vm_cpus=cpus, vm_cpu_kind=kind,
        headroom_mb=settings.vm_memory_mb - total, margin_mb=margin, required_mb=required,
        recommended_mb=recommended, recommended_cpus=cpus_for(kind, recommended, cpus), ok=ok,
        notes=tuple(notes))


def data_dir(co: Checkout) -> Path:
    return co.app_dir(co.settings.data_app) / "priv"


def estimate_memory(co: Checkout, model: MemoryModel = PLAN) -> MemoryEstimate:
    """The memory estimate for the checkout's game data (JSON under apps/<data_app>/priv) and its settings."""
    directory = data_dir(co)
    return estimate_from_bytes(co.settings, scan_json(directory), model, data_dir=co.rel(directory))


# -- what to run when it does not fit -------------------------------------------------------------------

def scale_commands(settings: Settings, est: MemoryEstimate) -> list[Command]:
    """The flyctl commands that give the running machine the recommended memory (and CPUs if needed).

    `fly scale memory` cannot go past the CPU count's limit (2 GB per shared CPU), so a bigger size
    is `fly scale vm <size> --vm-memory N` instead.
    """
    if est.recommended_cpus == settings.vm_cpus:
        return [fly_commands.scale_memory(settings, est.recommended_mb)]
    size = vm_size_name(settings.vm_cpu_kind, est.recommended_cpus)
    return [fly_commands.scale_vm(settings, size, est.recommended_mb)]


def recommendation(settings: Settings, est: MemoryEstimate) -> list[str]:
    """Lines telling the user what to change; empty when the configured VM is big enough."""
    if est.ok:
        return []
    lines = [
        f"The game machine needs about {est.required_mb} MB ({est.total_mb} MB estimated + {est.margin_mb} MB "
        f"margin) but is configured with {est.vm_memory_mb} MB: use {est.recommended_mb} MB.",
    ]
    env = f"BEZGELOR_VM_MEMORY_MB={est.recommended_mb}"
    if est.recommended_cpus != settings.vm_cpus:
        env += f" BEZGELOR_VM_CPUS={est.recommended_cpus}"
        lines.append(f"{vm_size_name(settings.vm_cpu_kind, settings.vm_cpus)} allows at most "
                     f"{MAX_MB_PER_CPU.get(settings.vm_cpu_kind, 2048) * settings.vm_cpus} MB, so it also needs "
                     f"{vm_size_name(settings.vm_cpu_kind, est.recommended_cpus)}.")
    lines.append(f"Set {env} in .env and run `inv init` so fly.toml's [[vm]] says the same (a deploy applies it).")
    lines.append("For machines already running: " + "; ".join(f"`{c.shown()}`" for c in scale_commands(settings, est)))
    return lines
