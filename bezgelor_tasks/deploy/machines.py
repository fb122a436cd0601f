"""One machine, one world: what the app's machines run, and the way back to one machine.

Two machines behind one dedicated IPv4 are two separate game worlds (each has its own world server
and players are split between them). flyctl creates a second machine on the first deploy of a
process group unless `--ha=false` (we always pass it), and `fly scale count 2` makes one by hand.
Which release the app runs is what its machines run (`fly status --json`: each machine's image and
`config.metadata.fly_release_version`), never "the newest complete release": a rolling deploy that
failed its checks leaves the machines on the failed image while its release says `failed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bezgelor_tasks.command import Command
from bezgelor_tasks.fly import commands
from bezgelor_tasks.fly.records import AppStatus, Machine
from bezgelor_tasks.settings import Settings


def _score(m: Machine, newest_release: int) -> tuple[bool, bool, bool, bool]:
    return (not m.standby_for, m.state == "started", m.checks_passing, (m.release_version or 0) == newest_release)


@dataclass(frozen=True)
class MachineCount:
    """The app's machines, the one to keep, and the extra ones (each a separate game world)."""

    machines: tuple[Machine, ...]
    keep: Machine | None
    extra: tuple[Machine, ...]

    @property
    def ok(self) -> bool:
        return len(self.machines) <= 1

    def why_keep(self) -> str:
        k = self.keep
        if k is None:
            return ""
        checks = "checks passing" if k.checks_passing else "checks failing"
        return (f"{k.id} ({k.state}, {checks}, release v{k.release_version if k.release_version is not None else '?'}"
                f"{', created ' + k.created_at if k.created_at else ''})")

    def commands(self, settings: Settings) -> list[Command]:
        """The exact commands back to one machine: destroy each extra one (`--force`: it is running)."""
        return [commands.machine_destroy(settings, m.id) for m in self.extra]

    def problem(self, settings: Settings) -> str:
        """One paragraph: how many worlds, which machine to keep and why, the commands."""
        if self.ok:
            return ""
        cmds = "; ".join(f"`{c.shown()}`" for c in self.commands(settings))
        return (f"{settings.app} has {len(self.machines)} machines ({', '.join(m.id for m in self.machines)}): "
                f"behind one IPv4 they are {len(self.machines)} separate game worlds, players split between them. "
                f"Keep {self.why_keep()} and destroy the other(s): {cmds} (or `fly scale count 1 -a {settings.app} "
                "--yes`, which lets flyctl choose which to keep)")

    def as_json(self, settings: Settings) -> dict[str, Any]:
        return {"count": len(self.machines), "ok": self.ok, "keep": self.keep.id if self.keep else None,
                "extra": [m.id for m in self.extra],
                "commands": [c.as_json()["argv"] for c in self.commands(settings)]}


def assess(status: AppStatus) -> MachineCount:
    """Keep the machine that is not a standby, started, passing its checks, on the newest release
    the machines run, and the oldest of those (the one players have been on longest)."""
    machines = tuple(status.machines)
    if not machines:
        return MachineCount((), None, ())
    newest = max((m.release_version or 0 for m in machines), default=0)
    order = {m.id: i for i, m in enumerate(sorted(machines, key=lambda m: (m.created_at, machines.index(m))))}
    keep = max(machines, key=lambda m: (_score(m, newest), -order[m.id]))
    return MachineCount(machines, keep, tuple(m for m in machines if m.id != keep.id))


def serving(status: AppStatus) -> Machine | None:
    """The machine whose image is what the app runs (the one to keep when there are several)."""
    keep = assess(status).keep
    return keep if keep is not None and keep.image_ref else None


def runs_label(status: AppStatus, label: str) -> Machine | None:
    """The serving machine when it runs the image tagged `label` and passes its checks, else None."""
    m = serving(status)
    if m is not None and label and m.image_ref.endswith(f":{label}") and m.checks_passing:
        return m
    return None
