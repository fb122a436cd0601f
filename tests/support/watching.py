"""Helpers for the watcher stories (not a plugin): a deployed app whose machine is a real BEAM world, and the
watcher run as a user runs it (`inv watch` in its own process, stopped with Ctrl-C or killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.flyctl_fake.commands.common import new_app, new_machine
from tests.fakes.flyctl_fake.commands.ips import add_ip
from tests.support.deployrun import REPO
from tests.support.world import World

APP = "bezgelor"
IMAGE = "registry.fly.io/bezgelor:v0.1.0"

# Fast watcher settings for the stories: sub-second intervals, short timeouts (never asserted on).
FAST = {"BEZGELOR_WATCH_INTERVAL": "0.2", "BEZGELOR_WATCH_FAILURES": "3", "BEZGELOR_PROBE_TIMEOUT": "0.5",
        "BEZGELOR_HEALTH_TIMEOUT": "20", "BEZGELOR_HEALTH_INTERVAL": "0.2", "BEZGELOR_RPC_TIMEOUT": "30",
        "BEZGELOR_DRAIN_POLL": "0.5"}


def deploy_world(fake_fly: Any, world: World) -> str:
    """The fake account has the app, one started machine (the world) and its dedicated IPv4 (loopback)."""
    def go(state: dict[str, Any]) -> str:
        app = new_app(state, APP, "personal")
        app["status"] = "deployed"
        machine = new_machine(app, "sjc")
        machine.update(image=IMAGE, release_version=1)
        add_ip(app, "v4", "127.0.0.1")
        return str(machine["id"])
    machine = fake_fly.update(go)
    world.attach(fake_fly, APP)
    return str(machine)


class WatcherProcess:
    """`inv watch --root ROOT` in its own process; its output goes to a file the test can read while it runs."""

    def __init__(self, root: Path, env: dict[str, str], *args: str) -> None:
        self.log = root.parent / f"watch-{time.monotonic_ns()}.log"
        self.out = open(self.log, "w+", encoding="utf-8")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(REPO), "watch", "--root", str(root),
                                      *args], env={**os.environ, **env}, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None, f"the watcher exited ({self.proc.returncode}):\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} in the watcher's output:\n{self.output}"
            time.sleep(0.05)
        return self.output

    def interrupt(self) -> int:
        """Ctrl-C, as a person would press it."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=15)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=15)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self.out.close()


@pytest.fixture
def watched(tmp_path: Path, fake_fly: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A deployed world (real BEAM), alert receivers and a heartbeat receiver, fast watcher settings."""
    world = World(tmp_path)
    root = tmp_path / "checkout"
    root.mkdir()
    for key, value in {**FAST, **world.settings_env()}.items():
        monkeypatch.setenv(key, value)

    class Watched:
        pass

    w = Watched()
    w.world, w.root, w.fake_fly, w.receiver = world, root, fake_fly, receiver  # type: ignore[attr-defined]
    w.machine = deploy_world(fake_fly, world)  # type: ignore[attr-defined]
    started: list[WatcherProcess] = []

    def watcher(*args: str, **env: str) -> WatcherProcess:
        started.append(WatcherProcess(root, env, *args))
        return started[-1]

    w.watcher = watcher  # type: ignore[attr-defined]
    w.restarts = lambda: [a for a in fake_fly.state().get("machine_actions", []) if a["action"] == "restart"]  # type: ignore[attr-defined]
    try:
        yield w
    finally:
        for p in started:
            p.stop()
        world.stop()
