"""The deploy lock every deployer sees (a laptop and a CI runner), kept on Fly as an app secret.

Where on Fly, from flyctl's grammar and source (v0.4.87):
- machine metadata (`fly machine update --metadata`) replaces the machine's config and restarts it:
  every lock and unlock would disconnect every player, and a first deploy has no machine to hold it;
- leases: flyctl takes short per-machine leases itself but offers only `machine leases view|clear`;
- a lock *app* (`fly apps create` fails when the name exists: a test-and-set) needs an org token,
  and CI deploys with an app-scoped deploy token (`fly tokens create deploy -a <app>`);
- an app secret: a deploy token may set it, `--stage` changes no machine, it exists before any
  machine, and every deployer reads `fly secrets list` anyway. Values are never shown (only names
  and digests), so the holder is written *in the name*: `BEZGELOR_DEPLOY_LOCK_<base32 of a small JSON
  {user, host, time, purpose, message, nonce}>` (base32 is A-Z2-7: a valid secret name). Unverified:
  how long a name Fly accepts; the JSON is kept under ~120 bytes (~210 characters of name).

Taking it is not a single test-and-set, so each deployer adds its *own* name, then lists again:
anyone who sees another live name backs off (removes its own) and is refused. Under a consistent
secrets store two deployers can never both win (at worst both back off and retry). A lock older
than `max_age` (a crashed CI runner) is taken over. The local lock file (lock.py) stays, as a fast
guard for one checkout and for the first deploy, when there is no app to hold a secret yet.
"""

from __future__ import annotations

import getpass
import os
import secrets as pysecrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import name_records
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.fly.records import Secret
from bezgelor_tasks.lock import DEFAULT_MAX_AGE_S, human_age

PREFIX = "BEZGELOR_DEPLOY_LOCK_"
# Secrets kept on the app as bookkeeping, staged on purpose and never "to deploy": this lock, and what the
# watcher keeps (watch/state.py: restarts, an outage's start, maintenance marked by `inv stop`).
WATCH_STATE_PREFIX = "BEZGELOR_WATCH_STATE_"
BOOKKEEPING_PREFIXES = (PREFIX, WATCH_STATE_PREFIX)


@dataclass(frozen=True)
class FlyHolder:
    user: str
    host: str
    started: float
    purpose: str
    message: str
    nonce: str
    name: str = ""  # the secret's name on Fly

    def who(self) -> str:
        return f"{self.user}@{self.host}"

    def age(self, now: float | None = None) -> float:
        return max(0.0, (now or time.time()) - self.started)

    def describe(self) -> str:
        at = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.started))
        return (f"{self.purpose} by {self.who()} since {at} ({human_age(self.age())} ago)"
                + (f": {self.message}" if self.message else ""))

    def as_json(self) -> dict[str, Any]:
        return {"user": self.user, "host": self.host, "started": self.started, "purpose": self.purpose,
                "message": self.message, "age_s": round(self.age(), 1), "secret_name": self.name}


def _me_user() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    actor = os.environ.get("GITHUB_ACTOR")
    return f"{actor}-ci" if actor else user


def encode(holder: FlyHolder) -> str:
    return name_records.pack(PREFIX, {"u": holder.user[:24], "h": holder.host[:32], "t": int(holder.started),
                                      "p": holder.purpose[:12], "m": holder.message[:40], "n": holder.nonce})


def decode(name: str) -> FlyHolder | None:
    try:
        data = name_records.unpack(PREFIX, name)
        if data is None:
            return None
        return FlyHolder(str(data["u"]), str(data["h"]), float(data["t"]), str(data.get("p", "deploy")),
                         str(data.get("m", "")), str(data.get("n", "")), name)
    except (name_records.Unreadable, ValueError, KeyError, TypeError):
        return FlyHolder("unknown", "unknown", 0.0, "deploy", "unreadable lock name", "", name)


def is_lock_name(name: str) -> bool:
    return name.startswith(PREFIX)


def is_bookkeeping_name(name: str) -> bool:
    """A secret we keep on the app for ourselves (the lock, the watcher's state): staged on purpose."""
    return name.startswith(BOOKKEEPING_PREFIXES)


def holders(secrets: list[Secret]) -> list[FlyHolder]:
    found = [h for h in (decode(s.name) for s in secrets) if h is not None]
    return sorted(found, key=lambda h: h.started)


class FlyLock:
    """The lock for one app on Fly. `acquire()` before changing the account, `release()` on every exit."""

    def __init__(self, fly: FlyClient, app: str, *, max_age: float = DEFAULT_MAX_AGE_S) -> None:
        self.fly = fly
        self.app = app
        self.max_age = max_age
        self.mine: FlyHolder | None = None

    def read(self) -> list[FlyHolder]:
        return holders(self.fly.secrets(self.app))

    def live_others(self, found: list[FlyHolder]) -> list[FlyHolder]:
        return [h for h in found if h.age() <= self.max_age and (self.mine is None or h.name != self.mine.name)]

    def refuse_if_held(self, found: list[FlyHolder] | None = None) -> None:
        """Read-only: raise the refusal when someone else holds the lock (no change to the account)."""
        others = self.live_others(self.read() if found is None else found)
        if others:
            raise self._refusal(others[0])

    def _refusal(self, holder: FlyHolder) -> UserError:
        return UserError(f"Another deploy of {self.app} holds its lock on Fly: {holder.describe()}.",
                         fix=f"wait for it to finish (`inv lock.status` shows it); if it is dead, `inv lock.release` "
                             f"frees it (it is taken over by itself after {human_age(self.max_age)}).")

    def acquire(self, purpose: str = "deploy", message: str = "") -> FlyHolder:
        found = self.read()
        self.refuse_if_held(found)
        stale = [h for h in found if h.age() > self.max_age]
        if stale:
            self.fly.unset_secret(self.app, *(h.name for h in stale), stage=True)
        me = FlyHolder(_me_user(), socket.gethostname(), time.time(), purpose, message, pysecrets.token_hex(3))
        me = FlyHolder(me.user, me.host, me.started, me.purpose, me.message, me.nonce, encode(me))
        # The value is never shown by Fly; a random one (masked in our output like any secret value).
        self.fly.import_secrets(self.app, {me.name: pysecrets.token_hex(16)}, stage=True)
        self.mine = me
        others = self.live_others(self.read())
        if others:  # someone took it at the same moment: back off, so at most one of us goes on
            self.release()
            raise UserError(f"Another deploy of {self.app} took its lock on Fly at the same moment: "
                            f"{others[0].describe()}.", fix="wait for it to finish, then run again.")
        return me

    def release(self) -> None:
        if self.mine is None:
            return
        name, self.mine = self.mine.name, None
        self.fly.unset_secret(self.app, name, stage=True)

    def release_all(self) -> list[FlyHolder]:
        """`inv lock.release`: remove every lock name (a dead deploy's too). Returns what was removed."""
        found = self.read()
        if found:
            self.fly.unset_secret(self.app, *(h.name for h in found), stage=True)
        return found
