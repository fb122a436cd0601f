"""Fixture `world`: a real BEAM on loopback playing Bezgelor's game world (tests/support/world_node.exs).

It runs its own epmd on a free loopback port, listens on free game ports, counts connected clients
as players and implements BezgelorWorld.Portal. `world.attach(fake_fly, app)` tells the fake flyctl to
evaluate `ssh console -C "/app/bin/<release> rpc EXPR"` for that app on this node. `world.connect()`
is a player: it reads the broadcasts the world writes to it, each one whole and in order.
"""

from __future__ import annotations

import os
import queue
import secrets
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("world_node.exs")
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Player:
    """One connected game client: the frames the world sent it, in order."""

    def __init__(self, port: int, name: str) -> None:
        self.name = name
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.inbox: queue.Queue[str | None] = queue.Queue()
        self.received: list[str] = []
        self.closed_by_server = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        welcome = self.next_message(timeout=30)
        assert welcome.startswith("WELCOME "), welcome  # counted from now on
        self.sock.sendall(name.encode() + b"\n")

    def _read(self) -> None:
        buf = b""
        self.sock.settimeout(None)
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed_by_server.set()
                self.inbox.put(None)
                return
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                size = struct.unpack(">I", buf[:4])[0]
                message, buf = buf[4:4 + size].decode("utf-8"), buf[4 + size:]
                self.received.append(message)
                self.inbox.put(message)

    def next_message(self, timeout: float = 30) -> str:
        message = self.inbox.get(timeout=timeout)
        assert message is not None, f"{self.name}: the world closed the connection"
        return message

    def wait_for(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            message = self.next_message(timeout=max(0.1, deadline - time.monotonic()))
            if needle in message:
                return message

    @property
    def messages(self) -> list[str]:
        """What the world broadcast to this player (without the welcome)."""
        return [m for m in self.received if not m.startswith("WELCOME ")]

    def leave(self) -> None:
        try:  # shutdown first: close() alone does not wake the reader thread's recv, so no FIN is sent
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class World:
    def __init__(self, tmp: Path, *, portal: bool = True) -> None:
        self.cookie = secrets.token_hex(16)
        self.node = f"world-{secrets.token_hex(4)}@{HOST}"
        self.epmd_port = free_port()
        self.ports = {"world": free_port(), "realm": free_port(), "auth": free_port()}
        self.env = {**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)}
        self.log = tmp / f"{self.node.split('@')[0]}.log"
        self.players: list[Player] = []
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address", HOST],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait_for_port(self.epmd_port)
        args = ["elixir", "--name", self.node, "--cookie", self.cookie, str(SCRIPT),
                *([] if portal else ["--no-portal"]), *(str(p) for p in self.ports.values())]
        self.out = open(self.log, "w+", encoding="utf-8")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(args, env=self.env, stdin=subprocess.PIPE, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while "WORLD READY" not in self.log.read_text():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    @staticmethod
    def _wait_for_port(port: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"epmd did not listen on {port}")

    def attach(self, fake_fly: Any, app: str = "bezgelor") -> None:
        """From now on the fake flyctl evaluates `bin/<release> rpc EXPR` for `app` on this node."""
        def put(state: dict[str, Any]) -> None:
            state.setdefault("rpc_nodes", {})[app] = {"node": self.node, "cookie": self.cookie,
                                                      "epmd_port": self.epmd_port}
        fake_fly.update(put)

    def connect(self, name: str = "Player") -> Player:
        player = Player(self.ports["world"], name)
        self.players.append(player)
        return player

    def rpc(self, expr: str) -> subprocess.CompletedProcess[str]:
        """Evaluate EXPR on the node the way `bin/<release> rpc` does (for the tests' own checks)."""
        return subprocess.run(["elixir", "--hidden", "--name", f"check-{secrets.token_hex(4)}@{HOST}", "--cookie",
                               self.cookie, "--rpc-eval", self.node, expr],
                              env=self.env, capture_output=True, text=True, timeout=60)

    def count(self) -> int:
        return int(self.rpc("IO.puts(FakeWorld.count())").stdout.strip())

    def wait_count(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.count() != n:
            assert time.monotonic() < deadline, f"the world never had {n} player(s)"
            time.sleep(0.1)

    def maintenance(self) -> bool:
        return self.rpc("IO.puts(Application.get_env(:bezgelor_world, :maintenance_mode, false))").stdout.strip() \
            == "true"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def broadcasts(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.startswith("BROADCAST ")]

    def stop(self) -> None:
        for player in self.players:
            player.leave()
        for proc in (self.proc, self.epmd):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(timeout=10)
        if self.proc.stdin:
            self.proc.stdin.close()
        self.out.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A running game world with BezgelorWorld.Portal (Bezgelor's API)."""
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def old_world(tmp_path: Path) -> Iterator[World]:
    """A running game world without BezgelorWorld.Portal (an older Bezgelor)."""
    w = World(tmp_path, portal=False)
    try:
        yield w
    finally:
        w.stop()
