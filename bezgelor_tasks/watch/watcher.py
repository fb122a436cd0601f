"""The watcher: one probe pass every BEZGELOR_WATCH_INTERVAL; after BEZGELOR_WATCH_FAILURES failed passes in a
row, restart the game machine (SIGTERM, the kill timeout), health-gated after.

- Never while a deploy holds the lock on Fly, nor while maintenance mode is on (marked by `inv stop` or
  `inv maintenance.on`, or reported by the world itself when its portal still answers): then it only says so.
- At most BEZGELOR_RESTART_LIMIT automatic restarts an hour; past that one "needs a human" alert, no more.
- Alerts: "down" (which probes, since when) once per outage, "restart done/failed", "recovered after N",
  the crash loop, the deploy lock held too long, the newest backup too old (alerts/).
- Each cycle pings BEZGELOR_HEARTBEAT_URL (who watches the watcher: stop pinging and that service alerts).
- Scheduled jobs (jobs.py) run on a thread of their own; the probes go on, but failures are not counted
  while one runs (a scheduled restart takes the world down on purpose).
- Stateless enough to be killed at any time: restarts, the outage's start and the crash-loop mark live on
  Fly (state.py); `.bezgelor/watch.json` is only a cache for `inv watch.status` and `inv status`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from bezgelor_tasks.alerts import Alerter, events
from bezgelor_tasks.alerts.channels import ChannelFailed, get
from bezgelor_tasks.alerts.events import Event, iso
from bezgelor_tasks.deploy.context import DeployContext
from bezgelor_tasks.deploy.fly_lock import FlyLock
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.game.countdown import parse_duration
from bezgelor_tasks.journal import Journal
from bezgelor_tasks.probe import HEALTH_PROBE, ProbePass, probe_pass, read_players
from bezgelor_tasks.processes import interruptible_sleep
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI
from bezgelor_tasks.watch import backups, world
from bezgelor_tasks.watch.jobs import Job, Schedule, registry
from bezgelor_tasks.watch.outcome import Outcome
from bezgelor_tasks.watch.state import StateOnFly, WatchState

CACHE_NAME = "watch.json"
IPV4_REFRESH_S = 600.0
SLOW_EVERY_S = 600.0     # the deploy lock's age and the newest backup's: every ten minutes is plenty


@dataclass
class Cycle:
    at: float
    probes: ProbePass
    failures: int
    heartbeat: str      # ok | off | dry run | failed (...)
    action: str = ""

    def line(self, limit: int) -> str:
        what = "ok (" + ", ".join(f"{r.name} {r.latency_s * 1000:.0f} ms" for r in self.probes.results) + ")" \
            if self.probes.ok else f"FAIL {self.failures}/{limit} {self.probes.summary()}"
        return f"watch {iso(self.at)} {what} | heartbeat {self.heartbeat}" + (f" | {self.action}" if self.action
                                                                              else "")

    def as_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "ok": self.probes.ok, "probes": self.probes.as_json(), "failures": self.failures,
                "heartbeat": self.heartbeat, "action": self.action or None}


class Watcher:
    def __init__(self, settings: Settings, executor: Executor, ui: UI, *, jobs: list[Job] | None = None) -> None:
        self.s, self.ex, self.ui = settings, executor, ui
        self.fly = FlyClient(settings, executor)
        self.store = StateOnFly(self.fly, settings.app)
        self.alerter = Alerter(settings, executor, on_sent=self._sent)
        self.schedule = Schedule(settings, registry() if jobs is None else jobs, time.time())
        self.state = WatchState()
        self.failures = 0
        self.seen = 0             # the failures of this cycle's pass, as printed (a restart resets `failures`)
        self.first_failure_at = 0.0
        self.ipv4: str | None = None
        self.ipv4_at = -IPV4_REFRESH_S
        self.last_slow = -SLOW_EVERY_S
        self.dirty = False
        self.heartbeat_at = 0.0
        self.job: tuple[Job, threading.Thread] | None = None
        self.job_outcome: Outcome | None = None

    # --- the loop ------------------------------------------------------------------------------------------

    def begin(self) -> None:
        """What the last watcher left on Fly: an outage under way, restarts this hour, a crash-loop mark."""
        try:
            self.state = self.store.read()
        except UserError as e:
            self.ui.warn(f"watch: cannot read the watcher's state on Fly ({e.message}); starting afresh")
        if self.state.down_since:
            self.alerter.open_incidents.add(events.WORLD)
        if self.state.human_since:
            self.alerter.open_incidents.add(events.CRASH_LOOP)
        if self.schedule.jobs:
            self.ui.info("watch: scheduled jobs " + json.dumps(self.schedule.as_json()))

    def run(self, *, once: bool = False) -> Cycle:
        self.begin()
        try:
            while True:
                cycle = self.cycle()
                if once:
                    return cycle
                wait = self.s.watch_interval_s
                next_job = self.schedule.next_at()
                if next_job is not None:
                    wait = min(wait, max(0.05, next_job - time.time()))
                if interruptible_sleep(wait):
                    raise KeyboardInterrupt("interrupted")
        finally:
            if self.job is not None:
                self.job[1].join(timeout=1.0)   # a job's own cleanup (maintenance off) gets its second

    def cycle(self) -> Cycle:
        now = time.time()
        probes = probe_pass(self.s, self._ipv4(now))
        heartbeat = self._heartbeat()
        said = self._jobs()
        if self.job is not None:
            self.seen = 0
            action = said or f"job {self.job[0].name} running: failures not counted"
        else:
            action = "; ".join(a for a in (said, self._on_ok(probes) if probes.ok else self._on_fail(probes)) if a)
        self._slow_checks(now)
        if self.dirty:
            self._write(self.state)
        cycle = Cycle(now, probes, self.seen, heartbeat, action)
        self.ui.line(cycle.line(self.s.watch_failures))
        self._cache(cycle)
        return cycle

    # --- probes pass or fail ---------------------------------------------------------------------------------

    def _on_ok(self, probes: ProbePass) -> str:
        self.failures = self.seen = 0
        return self._recovered(probes.at, "every probe passes again")

    def _on_fail(self, probes: ProbePass) -> str:
        self.failures += 1
        self.seen = self.failures
        if self.failures == 1:
            self.first_failure_at = probes.at
        if self.failures < self.s.watch_failures:
            return ""
        self.state = self.store.read()
        lock = FlyLock(self.fly, self.s.app)
        holders = lock.live_others(lock.read())
        if holders:
            return f"no restart: a deploy holds the lock ({holders[0].describe()})"
        if self.state.maintenance_since:
            return f"no restart: maintenance mode, marked by {self.state.maintenance_by or 'someone'}"
        if self._in_game_maintenance(probes):
            return "no restart: maintenance mode is on in game"
        failing = {r.name: r.detail for r in probes.failing}
        if not self.state.down_since:
            self.state = replace(self.state, down_since=self.first_failure_at, down_what=", ".join(failing)[:24])
            self.dirty = True
        self.alerter.send(events.down(self.s.app, failing, self.state.down_since, self.failures))
        recent = self.state.restarts_within(probes.at)
        if len(recent) >= self.s.restart_limit:
            if not self.state.human_since:
                self.state = replace(self.state, human_since=probes.at)
                self.dirty = True
            self.alerter.send(events.crash_loop(self.s.app, len(recent), self.s.restart_limit, probes.summary()))
            return (f"no restart: {len(recent)} restarts in the last hour (BEZGELOR_RESTART_LIMIT="
                    f"{self.s.restart_limit}): needs a human")
        return self._restart(probes)

    def _in_game_maintenance(self, probes: ProbePass) -> bool:
        """The world's own maintenance flag, asked only while its portal answers (a hung world cannot say)."""
        if not any(r.name == HEALTH_PROBE and r.ok for r in probes.results):
            return False
        read_players(self.s, self.ex, probes)
        return probes.maintenance is True

    def _restart(self, probes: ProbePass) -> str:
        why = f"{self.failures} probe passes failed in a row ({', '.join(r.name for r in probes.failing)})"
        self.failures = 0
        ctx = DeployContext(self.s, self.fly, self.ui, self.ex, Journal(self.s.state_dir, self.ex))
        machine = "?"
        try:
            target = world.the_machine(self.fly, self.s)
            machine = target.id
            with world.lock_held(self.fly, self.s, "restart", "the watcher restarts a world that does not answer"):
                self.state = self._write(self.state.with_restart(time.time(), self.s.restart_limit))
                change = world.change_machine(ctx, "restart", target)
        except UserError as e:
            self.alerter.send(events.restart_failed(self.s.app, machine, why, e.message))
            return f"restart failed: {e.message}"
        report = change.health
        if not change.ok:
            summary = report.summary() if report else change.summary
            self.alerter.send(events.restart_failed(self.s.app, machine, why, summary))
            return f"restarted {machine}, still failing: {summary}"
        summary = f"every probe passes {report.waited:.0f}s after the restart" if report else change.summary
        self.alerter.send(events.restart_done(self.s.app, machine, why, summary))
        self._recovered(time.time(), "restarted by the watcher")
        return f"restarted {machine}: {summary}"

    def _recovered(self, now: float, how: str) -> str:
        since = self.state.down_since or self.state.human_since
        if not since:
            return ""
        self.alerter.send(events.recovered(self.s.app, since, now, how))
        self.state = replace(self.state, down_since=0.0, down_what="", human_since=0.0)
        self.dirty = True
        return f"recovered: {how}"

    # --- state, alerts, heartbeat, jobs, slow checks ---------------------------------------------------------

    def _sent(self, event: Event) -> None:
        self.state = replace(self.state, last_alert=event.kind, last_alert_at=event.at)
        self.dirty = True

    def _write(self, state: WatchState) -> WatchState:
        self.dirty = False
        try:
            self.state = self.store.write(state)
        except UserError as e:  # Fly unreachable: remembered here, written with the next change
            self.ui.warn(f"watch: could not keep the state on Fly ({e.message})")
            self.state, self.dirty = state, True
        return self.state

    def _ipv4(self, now: float) -> str | None:
        if now - self.ipv4_at >= IPV4_REFRESH_S:
            self.ipv4_at = now   # asked again in ten minutes, answered or not
            try:
                self.fly.forget()
                self.ipv4 = world.public_ipv4(self.fly, self.s) or None
            except UserError as e:
                self.ui.warn(f"watch: cannot read {self.s.app}'s IPv4 ({e.message}); probing the game ports at "
                             f"{self.s.hostname} instead")
        return self.ipv4 or self.s.hostname   # <app>.fly.dev resolves to the dedicated IPv4 once there is one

    def _heartbeat(self) -> str:
        url = self.s.heartbeat_url
        if not url:
            return "off"
        try:
            sent = self.ex.change(f"ping the heartbeat {url}", lambda: get(url))
        except ChannelFailed as e:
            return f"failed ({e})"
        if not sent:
            return "dry run"
        self.heartbeat_at = time.time()
        return "ok"

    def _jobs(self) -> str:
        said = ""
        if self.job is not None and not self.job[1].is_alive():
            job, _ = self.job
            outcome = self.job_outcome or Outcome(False, "ended without an outcome")
            self.job, self.job_outcome = None, None
            self.schedule.done(job, time.time())
            self.failures = 0
            if not outcome.ok or job.alert_ok:
                self.alerter.send(events.job_result(self.s.app, job.name, outcome.ok, outcome.summary,
                                                    outcome.details))
            said = f"job {job.name} {'done' if outcome.ok else 'FAILED'}: {outcome.summary}"
        if self.job is None:
            due = self.schedule.due(time.time())
            if due:
                job = due[0]
                thread = threading.Thread(target=self._run_job, args=(job,), daemon=True, name=f"job {job.name}")
                self.job = (job, thread)
                thread.start()
                said = said or f"job {job.name} started"
        return said

    def _run_job(self, job: Job) -> None:
        try:
            self.job_outcome = job.run(self.s, self.ex, self.ui)
        except (UserError, Exception) as e:  # a job never takes the watcher down
            self.job_outcome = Outcome(False, getattr(e, "message", None) or f"{type(e).__name__}: {e}")

    def _slow_checks(self, now: float) -> None:
        if now - self.last_slow < SLOW_EVERY_S:
            return
        self.last_slow = now
        lock_limit = parse_duration(self.s.alert_lock_age) if self.s.alert_lock_age.strip() else 0.0
        if lock_limit:
            try:
                self.fly.forget()
                old = [h for h in FlyLock(self.fly, self.s.app).read() if h.age() > lock_limit]
            except UserError:
                old = []
            if old:
                self.alerter.send(events.lock_held(self.s.app, old[0].describe(), old[0].age()))
            else:
                self.alerter.resolve(events.LOCK)
        backup_limit = parse_duration(self.s.backup_max_age) if self.s.backup_max_age.strip() else 0.0
        if backup_limit:
            stale = [a for a in backups.ages(self.s) if a.age_s is None or a.age_s > backup_limit]
            if stale:
                self.alerter.send(events.backup_old(self.s.app, stale[0].where, stale[0].age_s, backup_limit))
            else:
                self.alerter.resolve(events.BACKUP_AGE)

    def _cache(self, cycle: Cycle) -> None:
        """`.bezgelor/watch.json` for `inv watch.status` and `inv status` (a cache: Fly keeps what matters)."""
        from bezgelor_tasks import files
        from bezgelor_tasks.deploy.state import ensure_state_dir

        path = self.s.state_dir / CACHE_NAME
        data = {**cycle.as_json(), "heartbeat_at": iso(self.heartbeat_at) if self.heartbeat_at else None,
                "state": self.state.as_json(), "jobs": self.schedule.as_json()}
        if not self.s.root.is_dir():
            return

        try:
            ensure_state_dir(self.s, self.ex)
            files.write(self.ex, path, json.dumps(data, indent=2, default=str) + "\n")
        except (OSError, UserError):
            pass


def read_cache(settings: Settings) -> dict[str, Any] | None:
    try:
        data = json.loads((settings.state_dir / CACHE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
