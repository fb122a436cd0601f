"""What the watcher must remember across its own restarts, kept on Fly beside the deploy lock.

The watcher is stateless enough to be killed and started again at any time: its automatic restarts of
the last hour (the crash-loop guard), when the current outage began (one "down" alert, and "recovered
after N"), whether it gave up ("needs a human"), a maintenance mark set by `inv stop` / `inv maintenance.on`,
and the last alert it sent live in one staged secret *name* on the game app, as the deploy lock does
(deploy/fly_lock.py: a deploy token may set it, `--stage` restarts nothing, Fly shows names, never values):
`BEZGELOR_WATCH_STATE_<base32 of compact JSON>`. Writing adds the new name, then removes the old ones.
Unverified: how long a secret name Fly accepts; the JSON stays near 120 bytes (~200 characters).
"""

from __future__ import annotations

import secrets as pysecrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from bezgelor_tasks.deploy.fly_lock import WATCH_STATE_PREFIX
from bezgelor_tasks.fly import name_records
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.fly.records import Secret

HOUR_S = 3600.0


@dataclass(frozen=True)
class WatchState:
    down_since: float = 0.0          # when the first failing probe pass of the current outage ran (0: up)
    down_what: str = ""              # which probes failed then
    restarts: tuple[float, ...] = () # automatic restarts (epoch seconds), the last hour's only
    human_since: float = 0.0         # gave up restarting: "needs a human" was sent
    maintenance_since: float = 0.0   # a person took the world down on purpose (inv stop, maintenance.on)
    maintenance_by: str = ""
    last_alert: str = ""             # kind of the last alert the watcher sent
    last_alert_at: float = 0.0
    names: tuple[str, ...] = field(default=(), compare=False)  # the secret names it was read from

    def restarts_within(self, now: float, window: float = HOUR_S) -> tuple[float, ...]:
        return tuple(t for t in self.restarts if now - t < window)

    def with_restart(self, at: float, limit: int) -> WatchState:
        recent = (*self.restarts_within(at), at)
        return replace(self, restarts=recent[-max(limit, 1):])

    def as_json(self) -> dict[str, Any]:
        now = time.time()
        return {"down_since": self.down_since or None, "down_what": self.down_what or None,
                "restarts_last_hour": len(self.restarts_within(now)), "restarts": list(self.restarts),
                "needs_a_human_since": self.human_since or None, "maintenance_since": self.maintenance_since or None,
                "maintenance_by": self.maintenance_by or None, "last_alert": self.last_alert or None,
                "last_alert_at": self.last_alert_at or None}


def encode(state: WatchState) -> str:
    data = {"d": int(state.down_since), "w": state.down_what[:24], "r": [int(t) for t in state.restarts],
            "h": int(state.human_since), "m": int(state.maintenance_since), "b": state.maintenance_by[:16],
            "a": state.last_alert[:16], "t": int(state.last_alert_at)}
    return name_records.pack(WATCH_STATE_PREFIX, {k: v for k, v in data.items() if v})


def decode(name: str) -> WatchState | None:
    try:
        data = name_records.unpack(WATCH_STATE_PREFIX, name)
        if data is None:
            return None
        return WatchState(float(data.get("d", 0)), str(data.get("w", "")),
                          tuple(float(t) for t in data.get("r", [])), float(data.get("h", 0)),
                          float(data.get("m", 0)), str(data.get("b", "")), str(data.get("a", "")),
                          float(data.get("t", 0)), (name,))
    except (name_records.Unreadable, ValueError, TypeError, AttributeError):
        return WatchState(names=(name,))  # unreadable: start afresh, and replace it on the next write


def from_secrets(found: list[Secret]) -> WatchState:
    """The newest readable state among the names (two can exist for a moment while one is replaced)."""
    states = [s for s in (decode(x.name) for x in found) if s is not None]
    if not states:
        return WatchState()
    names = tuple(n for s in states for n in s.names)
    newest = max(states, key=lambda s: max((s.last_alert_at, s.down_since, s.human_since, s.maintenance_since,
                                            *s.restarts), default=0.0))
    return replace(newest, names=names)


class StateOnFly:
    """Read and write the watcher's state on the game app (through the one FlyClient, so a dry run
    shows the writes and makes none)."""

    def __init__(self, fly: FlyClient, app: str) -> None:
        self.fly = fly
        self.app = app

    def read(self, *, fresh: bool = True) -> WatchState:
        if fresh:
            self.fly.forget()
        return from_secrets(self.fly.secrets(self.app))

    def write(self, state: WatchState) -> WatchState:
        name = encode(state)
        old = [n for n in state.names if n != name]
        if name not in state.names:
            self.fly.import_secrets(self.app, {name: pysecrets.token_hex(8)}, stage=True)
        if old:
            self.fly.unset_secret(self.app, *old, stage=True)
        return replace(state, names=(name,))

    def update(self, **changes: Any) -> WatchState:
        """Read, change, write: for the tasks a person runs (`inv stop` marks maintenance)."""
        return self.write(replace(self.read(), **changes))
