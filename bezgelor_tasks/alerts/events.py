"""What is worth waking someone for: one `Event` per happening, and its documented JSON payload.

Every channel sends the same event: Discord as an embed, ntfy as a titled message, mail as a subject and
body, the generic webhook as `Event.payload()` (README: "The alert payload"). An event may open an
*incident* (`opens`: "world" for a world that is down) and another may close it (`closes`), which is how
the alerter sends one "down" and one "recovered" per outage, however many cycles see it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bezgelor_tasks.game.countdown import short

SCHEMA = 1
SEVERITIES = ("critical", "warning", "info", "ok")
WORLD = "world"            # the incident of a world that does not answer
CRASH_LOOP = "crash-loop"
LOCK = "lock"
BACKUP_AGE = "backup-age"


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


@dataclass(frozen=True)
class Event:
    kind: str                 # down, recovered, restart_done, restart_failed, crash_loop, deploy_done, ...
    severity: str             # critical | warning | info | ok
    app: str
    title: str                # one line
    text: str                 # a short paragraph
    details: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    opens: str = ""           # the incident this event opens (sent once while it stays open)
    closes: tuple[str, ...] = ()  # incidents it closes (sent only when one of them is open)

    def payload(self) -> dict[str, Any]:
        """The generic webhook's JSON body (documented in README; `schema` changes only with a new meaning)."""
        return {"source": "bezgelor-tasks", "schema": SCHEMA, "app": self.app, "event": self.kind,
                "severity": self.severity, "title": self.title, "text": self.text, "at": iso(self.at),
                "details": self.details}


# --- the events, one constructor each ------------------------------------------------------------------------

def _short(probe: str) -> str:
    """"world hello 203.0.113.7:24000" → "world"; "health endpoint" stays."""
    return probe.split(" hello ")[0]


def down(app: str, failing: dict[str, str], since: float, failures: int) -> Event:
    which = "; ".join(f"{name}: {why}" for name, why in failing.items())
    return Event("down", "critical", app, f"{app} is down: {', '.join(map(_short, failing)) or 'probes fail'}",
                 f"Since {iso(since)} ({failures} probe passes in a row): {which}",
                 {"since": iso(since), "failing": failing, "consecutive_failures": failures}, opens=WORLD)


def recovered(app: str, since: float, now: float, how: str) -> Event:
    took = max(0.0, now - since)
    return Event("recovered", "ok", app, f"{app} recovered after {short(took)}",
                 f"Every probe passes again ({how}); it was down for {short(took)}, since {iso(since)}.",
                 {"down_since": iso(since), "down_for_s": round(took, 1), "how": how}, at=now,
                 closes=(WORLD, CRASH_LOOP))


def restart_done(app: str, machine: str, why: str, summary: str) -> Event:
    return Event("restart_done", "info", app, f"{app} restarted: {summary}",
                 f"Machine {machine} was restarted because {why}; {summary}.",
                 {"machine": machine, "why": why, "health": summary})


def restart_failed(app: str, machine: str, why: str, error: str) -> Event:
    return Event("restart_failed", "critical", app, f"{app}: the restart did not bring it back",
                 f"Machine {machine} was restarted because {why}, but: {error}",
                 {"machine": machine, "why": why, "error": error})


def crash_loop(app: str, restarts: int, limit: int, failing: str) -> Event:
    return Event("crash_loop", "critical", app, f"{app} needs a human: {restarts} restarts in the last hour",
                 f"The watcher restarted it {restarts} times in the last hour (BEZGELOR_RESTART_LIMIT={limit}) and "
                 f"it still fails ({failing}). It will not restart it again: look at `inv logs --errors`, then "
                 "`inv restart` or a deploy.", {"restarts_last_hour": restarts, "limit": limit, "failing": failing},
                 opens=CRASH_LOOP)


def deploy_result(app: str, outcome: str, version: str, text: str, details: dict[str, Any]) -> Event:
    """outcome: done | failed | rolled_back."""
    severity = {"done": "ok", "failed": "critical", "rolled_back": "warning"}[outcome]
    title = {"done": f"{app}: deployed {version}", "failed": f"{app}: the deploy of {version} failed",
             "rolled_back": f"{app}: the deploy of {version} failed and was rolled back"}[outcome]
    return Event(f"deploy_{outcome}", severity, app, title, text, details)


def backup_failed(app: str, what: str, error: str) -> Event:
    return Event("backup_failed", "critical", app, f"{app}: {what} failed", error, {"what": what, "error": error})


def backup_old(app: str, where: str, age_s: float | None, limit_s: float) -> Event:
    seen = "there is no backup" if age_s is None else f"the newest backup is {short(age_s)} old"
    return Event("backup_old", "warning", app, f"{app}: no backup for {short(limit_s)}" if age_s is None else
                 f"{app}: the newest backup is {short(age_s)} old",
                 f"In {where}, {seen} (BEZGELOR_BACKUP_MAX_AGE={short(limit_s)}).",
                 {"where": where, "age_s": None if age_s is None else round(age_s), "limit_s": limit_s},
                 opens=BACKUP_AGE)


def lock_held(app: str, holder: str, age_s: float) -> Event:
    return Event("lock_held", "warning", app, f"{app}: the deploy lock has been held for {short(age_s)}",
                 f"{holder}. A deploy that died leaves it; `inv lock.release` frees it.",
                 {"holder": holder, "age_s": round(age_s)}, opens=LOCK)


def job_result(app: str, job: str, ok: bool, summary: str, details: dict[str, Any]) -> Event:
    return Event(f"job_{'done' if ok else 'failed'}", "info" if ok else "critical", app,
                 f"{app}: {job} {'done' if ok else 'FAILED'}", summary, {"job": job, **details})


def channel_failed(app: str, channel: str, error: str) -> Event:
    return Event("channel_failed", "warning", app, f"{app}: alerts to {channel} fail",
                 f"Sending an alert to {channel} failed: {error}. The other channels still work.",
                 {"channel": channel, "error": error}, opens=f"channel:{channel}")


def test(app: str) -> Event:
    return Event("test", "info", app, f"{app}: test alert from bezgelor-tasks",
                 "If you read this, alerts reach you here (`inv alert.test`).", {})
