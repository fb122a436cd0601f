"""A monthly cost estimate for the configured deployment, from the price table in data/prices.json.

Prices change, so they live in one data file with the day they were checked (`as_of`); update it
there. Every line is rounded to cents first and the total is the sum of the rounded lines, so the
table a user sees adds up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import platform
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.sizing import vm_size_name

PRICES_FILE = Path(__file__).parent / "data" / "prices.json"
CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Prices:
    as_of: str
    currency: str
    source: str
    cpu_per_month: dict[str, Decimal]
    memory_per_gb_month: Decimal
    volume_per_gb_month: Decimal
    dedicated_ipv4_per_month: Decimal
    managed_postgres_plan_per_month: Decimal
    published_examples: tuple[dict[str, Any], ...]
    path: Path

    def machine(self, kind: str, cpus: int, memory_mb: int) -> Decimal:
        """A running Machine's monthly price: its CPUs plus its RAM (unrounded)."""
        if kind not in self.cpu_per_month:
            raise UserError(f"The price table {self.path} has no CPU price for {kind!r} machines.",
                            fix=f"add \"{kind}\" under cpu_per_month in {self.path}.")
        return cpus * self.cpu_per_month[kind] + Decimal(memory_mb) / 1024 * self.memory_per_gb_month


def load_prices(path: Path | None = None) -> Prices:
    """The price table; a clear error naming the file when it is missing or incomplete."""
    path = path or PRICES_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
        return Prices(
            as_of=str(raw["as_of"]), currency=str(raw.get("currency", "USD")), source=str(raw.get("source", "")),
            cpu_per_month={k: Decimal(v) for k, v in raw["cpu_per_month"].items()},
            memory_per_gb_month=Decimal(raw["memory_per_gb_month"]),
            volume_per_gb_month=Decimal(raw["volume_per_gb_month"]),
            dedicated_ipv4_per_month=Decimal(raw["dedicated_ipv4_per_month"]),
            managed_postgres_plan_per_month=Decimal(raw.get("managed_postgres_plan_per_month", 0)),
            published_examples=tuple(raw.get("published_examples", ())), path=path)
    except FileNotFoundError:
        raise UserError(f"The price table {path} is missing.",
                        fix="restore bezgelor_tasks/data/prices.json from git.") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"The price table {path} cannot be read ({type(e).__name__}: {e}).",
                        fix=f"fix {path}: it needs as_of, cpu_per_month{{shared,performance}}, memory_per_gb_month, "
                            "volume_per_gb_month and dedicated_ipv4_per_month.") from None


def parse_vm_size(size: str) -> tuple[str, int]:
    """'shared-cpu-2x' -> ('shared', 2); 'performance-4x' -> ('performance', 4)."""
    parsed = platform.parse_vm_size(size)
    if parsed is None:
        raise UserError(f"{size!r} is not a Fly VM size.",
                        fix="use a Fly size such as shared-cpu-1x, shared-cpu-2x or performance-1x "
                            "(see `fly platform vm-sizes`).")
    return parsed


@dataclass(frozen=True)
class CostLine:
    item: str
    spec: str
    monthly: Decimal   # already rounded to cents

    def as_json(self) -> dict[str, Any]:
        return {"item": self.item, "spec": self.spec, "monthly": float(self.monthly)}


@dataclass(frozen=True)
class CostEstimate:
    lines: tuple[CostLine, ...]
    currency: str
    as_of: str
    source: str

    @property
    def total(self) -> Decimal:
        return sum((line.monthly for line in self.lines), Decimal("0"))

    def as_json(self) -> dict[str, Any]:
        return {"lines": [line.as_json() for line in self.lines], "total": float(self.total),
                "currency": self.currency, "prices_as_of": self.as_of, "source": self.source}


def _money(value: Decimal) -> str:
    return f"${cents(value)}"


def estimate_costs(settings: Settings, prices: Prices | None = None, *, vm_memory_mb: int | None = None,
                   vm_cpus: int | None = None) -> CostEstimate:
    """Monthly cost of the game machine, Postgres and the dedicated IPv4 (override the VM to price a proposal)."""
    p = prices or load_prices()
    mem = settings.vm_memory_mb if vm_memory_mb is None else vm_memory_mb
    cpus = settings.vm_cpus if vm_cpus is None else vm_cpus
    kind = settings.vm_cpu_kind
    size = vm_size_name(kind, cpus)
    lines = [CostLine("App VM", f"{size}, {mem} MB ({settings.app})", cents(p.machine(kind, cpus, mem)))]
    if settings.pg_flavor == "mpg":
        lines.append(CostLine("Managed Postgres", f"smallest plan ({settings.db_app}); check the plan you pick",
                              cents(p.managed_postgres_plan_per_month)))
    else:
        n = settings.pg_cluster_size
        pg_kind, pg_cpus = parse_vm_size(settings.pg_vm_size)
        each = p.machine(pg_kind, pg_cpus, settings.pg_vm_memory_mb)
        members = f" x {n}" if n != 1 else ""
        lines.append(CostLine("Postgres VM", f"{settings.pg_vm_size}, {settings.pg_vm_memory_mb} MB{members} "
                              f"({settings.db_app})", cents(each * n)))
        lines.append(CostLine("Postgres volume", f"{settings.pg_volume_gb} GB{members} at "
                              f"{_money(p.volume_per_gb_month)}/GB",
                              cents(settings.pg_volume_gb * n * p.volume_per_gb_month)))
    lines.append(CostLine("Dedicated IPv4", "raw TCP game ports need one", cents(p.dedicated_ipv4_per_month)))
    return CostEstimate(tuple(lines), p.currency, p.as_of, p.source)
