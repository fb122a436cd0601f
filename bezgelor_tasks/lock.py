"""One deploy at a time per app: a lock file under `.bezgelor/` that says who holds it.

The file is created with O_EXCL (atomic on every local filesystem), so two deploys racing for it
cannot both win. It records the holder (user@host, pid) and the time, so a refused deploy can say
who is deploying and since when. A lock is stale - and taken over - when its process is gone on
this host, or when it is older than `max_age` (a crashed CI runner on another host never frees
it). It is freed on every exit path: the context manager's `finally`, plus SIGINT/SIGTERM handlers
that turn the signal into an exception so the `finally` runs.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bezgelor_tasks import files
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.processes import termination_raises
from bezgelor_tasks.run import Executor
from bezgelor_tasks.units import short

DEFAULT_MAX_AGE_S = 2 * 3600  # longer than any deploy: build + wait + health gate + rollback


@dataclass(frozen=True)
class Holder:
    user: str
    host: str
    pid: int
    started: float  # epoch seconds
    purpose: str = "deploy"

    @property
    def name(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid})"

    def age(self, now: float | None = None) -> float:
        return max(0.0, (now or time.time()) - self.started)

    @classmethod
    def me(cls, purpose: str) -> Holder:
        try:
            user = getpass.getuser()
        except Exception:  # no passwd entry in some containers
            user = str(os.getuid())
        return cls(user, socket.gethostname(), os.getpid(), time.time(), purpose)


def human_age(seconds: float) -> str:
    """A lock's age in whole seconds: 45s, 4m5s, 2h05m."""
    return short(int(seconds))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class DeployLock:
    """The lock file for one app. Use `with lock.held(): ...` (or `acquire`/`release`)."""

    def __init__(self, state_dir: Path, app: str, executor: Executor, *, max_age: float = DEFAULT_MAX_AGE_S) -> None:
        self.path = state_dir / f"deploy-{app}.lock"
        self.app = app
        self.executor = executor  # the lock file is written through it: a dry run takes no lock
        self.max_age = max_age
        self.mine: Holder | None = None

    def read(self) -> Holder | None:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            return Holder(str(data["user"]), str(data["host"]), int(data["pid"]), float(data["started"]),
                          str(data.get("purpose", "deploy")))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, KeyError, TypeError):
            # Half-written or garbage: treat as held since its mtime, so age-based staleness applies.
            try:
                started = self.path.stat().st_mtime
            except FileNotFoundError:
                return None
            return Holder("unknown", "unknown", 0, started)

    def is_stale(self, holder: Holder) -> str:
        """Why the holder no longer counts ("" when it still does)."""
        if holder.age() > self.max_age:
            return f"older than {human_age(self.max_age)}"
        if holder.host == socket.gethostname() and holder.pid > 0 and not _pid_alive(holder.pid):
            return f"process {holder.pid} is gone"
        return ""

    def acquire(self, purpose: str = "deploy") -> Holder | None:
        """Take the lock (None under a dry run, which takes none); refuses while another holds it."""
        me = Holder.me(purpose)
        if self.executor.dry_run:  # judged like a real run: another holder stops it; nothing is written
            holder = self.read()
            if holder is not None and not self.is_stale(holder):
                raise self._held_by(holder)
            return None
        for _ in range(3):
            try:
                files.create_new(self.executor, self.path, json.dumps(asdict(me)))
            except FileExistsError:
                holder = self.read()
                if holder is None:
                    continue  # freed between our open and read: try again
                if not self.is_stale(holder):
                    raise self._held_by(holder) from None
                self._remove_if_same(holder)
                continue
            self.mine = me
            return me
        raise UserError(f"Could not take the deploy lock {self.path}: it keeps changing.",
                        fix="check that no other deploy is starting, then run again.")

    def _held_by(self, holder: Holder) -> UserError:
        return UserError(f"Another {holder.purpose} of {self.app} is running: held by {holder.name} for "
                         f"{human_age(holder.age())} (lock file {self.path}).",
                         fix="wait for it to finish; if you are sure it is dead, `inv lock.release` frees it.")

    def _remove_if_same(self, holder: Holder) -> None:
        if self.read() == holder:
            files.remove(self.executor, self.path)

    def release(self) -> None:
        if self.mine is None:
            return
        holder = self.read()
        if holder is not None and holder.pid == self.mine.pid and holder.started == self.mine.started:
            files.remove(self.executor, self.path)
        self.mine = None

    @contextmanager
    def held(self, purpose: str = "deploy") -> Iterator[Holder | None]:
        """Hold the lock for the block; SIGTERM becomes KeyboardInterrupt so the lock is freed on it too."""
        holder = self.acquire(purpose)
        with termination_raises():
            try:
                yield holder
            finally:
                self.release()
