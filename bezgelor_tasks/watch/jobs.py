"""Scheduled jobs the watcher runs: a small table of name + cron expression (a setting) + a callable.

A job is `Job(name, setting, run, alert_ok)`: `setting` names the Settings field that holds its cron
expression (cronsim's syntax, UTC; empty turns the job off) and `run(settings, executor, ui) -> Outcome`
does the work. The watcher runs a due job on a thread of its own, one at a time, keeps probing and
pinging the heartbeat meanwhile without counting failures or restarting (a restart job takes the world
down on purpose), and alerts a failed outcome — every outcome when `alert_ok`.

Adding a job is one line in `registry()` below; a job that needs something configured first says so with
`needs` (the off-site jobs need BEZGELOR_OFFSITE_URL: without it they are not scheduled at all). A job's
function never raises for a failure it can describe (an exception is turned into a failed outcome anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cronsim import CronSim

from bezgelor_tasks.watch.outcome import Outcome

if TYPE_CHECKING:
    from bezgelor_tasks.run import Executor
    from bezgelor_tasks.settings import Settings
    from bezgelor_tasks.ui import UI


JobFn = Callable[["Settings", "Executor", "UI"], Outcome]


@dataclass(frozen=True)
class Job:
    name: str
    setting: str          # the Settings field holding the cron expression ("" there: the job is off)
    run: JobFn
    alert_ok: bool = False
    needs: str = ""       # a Settings field that must be set for the job to be scheduled at all

    def expression(self, settings: Settings) -> str:
        if self.needs and not getattr(settings, self.needs):
            return ""
        return str(getattr(settings, self.setting) or "").strip()


def scheduled_restart(settings: Settings, executor: Executor, ui: UI) -> Outcome:
    """BEZGELOR_RESTART_SCHEDULE: the in-game countdown (BEZGELOR_DRAIN), restart when the world is empty or
    at the deadline, health-gated."""
    from bezgelor_tasks.deploy.context import DeployContext
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.journal import Journal
    from bezgelor_tasks.watch import world

    ctx = DeployContext(settings, FlyClient(settings, executor), ui, executor, Journal(settings.state_dir, executor))
    change = world.player_aware(ctx, "restart", drain=None, reason="a scheduled restart", yes=True)
    return Outcome(change.ok, change.summary, change.as_json())


def registry() -> list[Job]:
    from bezgelor_tasks.backup import scheduled

    return [
        Job("scheduled restart", "restart_schedule", scheduled_restart, alert_ok=True),
        Job("off-site backup", "backup_schedule", scheduled.scheduled_backup, needs="offsite_url"),
        Job("restore drill", "drill_schedule", scheduled.scheduled_drill, needs="offsite_url"),
    ]


class Schedule:
    """When each enabled job fires next (UTC), from `now` on; a job that fired is rescheduled after it ran."""

    def __init__(self, settings: Settings, jobs: list[Job], now: float) -> None:
        self.jobs = [j for j in jobs if j.expression(settings)]
        self.settings = settings
        self.next: dict[str, float] = {j.name: self._after(j, now) for j in self.jobs}

    def _after(self, job: Job, at: float) -> float:
        it = CronSim(job.expression(self.settings), datetime.fromtimestamp(at, UTC))
        return next(it).timestamp()

    def due(self, now: float) -> list[Job]:
        return [j for j in self.jobs if self.next[j.name] <= now]

    def done(self, job: Job, now: float) -> None:
        self.next[job.name] = self._after(job, now)

    def next_at(self) -> float | None:
        return min(self.next.values(), default=None)

    def as_json(self) -> dict[str, Any]:
        return {j.name: {"cron": j.expression(self.settings),
                         "next": datetime.fromtimestamp(self.next[j.name], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
                for j in self.jobs}
