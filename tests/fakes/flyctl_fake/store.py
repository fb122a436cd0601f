"""The fake's state: FAKE_FLY_HOME/state.json (under an flock) and the call log calls.jsonl.

Several fake fly processes run side by side (deploy.full runs steps in parallel), so every
read-modify-write of state.json happens inside `Home.transaction()`, which holds an exclusive
flock on FAKE_FLY_HOME/state.lock. Nothing sleeps while holding it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

State = dict[str, Any]

DEFAULT_VERSION = "0.4.87"
DEFAULT_COMMIT = "ad0172face303b77584eea95b46fa3ddc61d5ddd"


def default_state() -> State:
    return {
        "schema": 1,
        "flyctl": {"version": DEFAULT_VERSION, "commit": DEFAULT_COMMIT, "build_date": "2026-11-20T10:00:00Z"},
        "auth": {"logged_in": True, "email": "pilot@example.com"},
        "default_org": "personal",
        "orgs": {"personal": {"slug": "personal", "name": "Test Pilot"}},
        "taken_names": [],  # app names owned by other Fly users
        "apps": {},
        "images": {},
        "faults": [],
        "seq": 0,
    }


class Home:
    """One FAKE_FLY_HOME directory."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.state_file = os.path.join(path, "state.json")
        self.lock_file = os.path.join(path, "state.lock")
        self.calls_file = os.path.join(path, "calls.jsonl")

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        os.makedirs(self.path, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _load(self) -> State:
        try:
            with open(self.state_file, encoding="utf-8") as fh:
                state: State = json.load(fh)
        except FileNotFoundError:
            return default_state()
        base = default_state()
        base.update(state)
        return base

    def _save(self, state: State) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".state.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)

    def read(self) -> State:
        with self._locked(fcntl.LOCK_SH):
            return self._load()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Yield the state; save it on exit, also when a flyctl-style error (FlyError) ends the
        command half-way (what happened before the error really happened), not on a crash."""
        from .errors import FlyError

        with self._locked(fcntl.LOCK_EX):
            state = self._load()
            try:
                yield state
            except FlyError:
                self._save(state)
                raise
            self._save(state)

    def append_call(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._locked(fcntl.LOCK_EX), open(self.calls_file, "a", encoding="utf-8") as fh:
            fh.write(line)

    def calls(self) -> list[dict[str, Any]]:
        try:
            with open(self.calls_file, encoding="utf-8") as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except FileNotFoundError:
            return []


def next_seq(state: State) -> int:
    state["seq"] = int(state.get("seq", 0)) + 1
    return int(state["seq"])
