"""Fixture `world`: a real BEAM on loopback playing Bezgelor's game world (tests/support/world_node.exs).

It runs its own epmd on a free loopback port, listens on free game ports (each greets a connection
with a ServerHello frame, as Bezgelor's game servers do), serves the portal's /health from the same
node, counts logged-in clients as players and implements BezgelorWorld.Portal. `world.attach(fake_fly,
app)` tells the fake flyctl to evaluate `ssh console -C "/app/bin/<release> rpc EXPR"` for that app on
this node, and makes the fake's `machine restart|stop|start` restart, stop and start it (through a
loopback control port: the fake is another process). `world.connect()` is a player: it reads the
broadcasts the world writes to it, each one whole and in order. `freeze()`/`thaw()` stop and continue
the BEAM (SIGSTOP/SIGCONT): the kernel still accepts connections, nothing answers. `crash_on_boot`
makes every later (re)start die at boot, before listening.
"""

from __future__ import annotations

import os
import queue
import secrets
import signal
import socket
import socketserver
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bezgelor_tasks.backup.scratch import free_port

SCRIPT = Path(__file__).with_name("world_node.exs")
HOST = "127.0.0.1"




class Player:
    """One connected game client: the frames the world sent it, in order."""

    def __init__(self, port: int, name: str) -> None:
        self.name = name
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.inbox: queue.Queue[str | None] = queue.Queue()
        self.received: list[str] = []
        self.closed_by_server = threading.Event()
        hello = _read_exactly(self.sock, 6)  # the ServerHello every game server sends first
        size, opcode = struct.unpack("<IH", hello)
        assert opcode == 0x0003, hello
        _read_exactly(self.sock, size - 6)
        self.sock.sendall(name.encode() + b"\n")  # logging in: counted from the WELCOME on
        threading.Thread(target=self._read, daemon=True).start()
        welcome = self.next_message(timeout=30)
        assert welcome.startswith("WELCOME "), welcome

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


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"the world closed the connection after {len(data)} of {n} bytes"
        data += chunk
    return data


class World:
    def __init__(self, tmp: Path, *, portal: bool = True) -> None:
        self.tmp = tmp
        self.portal = portal
        self.cookie = secrets.token_hex(16)
        self.epmd_port = free_port()
        self.ports = {"world": free_port(), "realm": free_port(), "auth": free_port()}
        self.http_port = free_port()
        self.env = {**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)}
        self.players: list[Player] = []
        self.boots = 0
        self.crash_on_boot = False
        self.frozen = False
        self.attached: tuple[Any, str] | None = None
        self.control: socketserver.ThreadingTCPServer | None = None
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address", HOST],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait_for_port(self.epmd_port)
        self.out: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.boot()

    @property
    def health_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/health"

    def settings_env(self) -> dict[str, str]:
        """BEZGELOR_* settings that point the probes at this world (its /health and game ports)."""
        return {"BEZGELOR_HEALTH_URL": self.health_url, "BEZGELOR_AUTH_PORT": str(self.ports["auth"]),
                "BEZGELOR_REALM_PORT": str(self.ports["realm"]), "BEZGELOR_WORLD_PORT": str(self.ports["world"])}

    def boot(self) -> bool:
        """Start a node on the world's ports; False when it died at boot (crash_on_boot)."""
        self.boots += 1
        self.node = f"world-{secrets.token_hex(4)}@{HOST}"
        self.log = self.tmp / f"{self.node.split('@')[0]}.log"
        args = ["elixir", "--name", self.node, "--cookie", self.cookie, str(SCRIPT),
                *([] if self.portal else ["--no-portal"]), "--http", str(self.http_port),
                *(["--crash"] if self.crash_on_boot else []), *(str(p) for p in self.ports.values())]
        if self.out is not None:
            self.out.close()
        self.out = open(self.log, "w+", encoding="utf-8")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(args, env=self.env, stdin=subprocess.PIPE, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while "WORLD READY" not in self.log.read_text():
            if self.proc.poll() is not None and self.crash_on_boot:
                return False
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)
        if self.attached:
            self._register(*self.attached)
        return True

    def freeze(self) -> None:
        """SIGSTOP the BEAM: connections are still accepted by the kernel, nothing answers."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.proc is not None and self.frozen:
            os.killpg(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    def halt(self) -> None:
        """Stop the node (a machine stop): its ports close."""
        for player in self.players:
            player.leave()
        self.players.clear()
        self.thaw()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if proc is not None and proc.stdin:
            proc.stdin.close()

    def restart(self) -> bool:
        """What `fly machine restart` does to this world: stop the node, boot a new one on the same ports."""
        self.halt()
        return self.boot()

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
        """From now on the fake flyctl evaluates `bin/<release> rpc EXPR` for `app` on this node, and its
        `machine restart|stop|start` for `app` restart, stop and start this world."""
        if self.control is None:
            self.control = self._serve_control()
        self.attached = (fake_fly, app)
        self._register(fake_fly, app)

    def _register(self, fake_fly: Any, app: str) -> None:
        assert self.control is not None
        control = f"{HOST}:{self.control.server_address[1]}"

        def put(state: dict[str, Any]) -> None:
            state.setdefault("rpc_nodes", {})[app] = {"node": self.node, "cookie": self.cookie,
                                                      "epmd_port": self.epmd_port}
            state.setdefault("machine_control", {})[app] = control
        fake_fly.update(put)

    def _serve_control(self) -> socketserver.ThreadingTCPServer:
        """The fake flyctl's way to this world: one line `restart|stop|start` in, `ok <state>` out."""
        world = self
        lock = threading.Lock()

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                action = self.rfile.readline().decode().strip()
                with lock:
                    if action == "restart":
                        booted = world.restart()
                    elif action == "stop":
                        world.halt()
                        booted = False
                    elif action == "start":
                        booted = world.alive or world.boot()
                    else:
                        self.wfile.write(f"error unknown action {action!r}\n".encode())
                        return
                self.wfile.write(f"ok {'started' if booted else 'crashed' if world.crash_on_boot else 'stopped'}\n"
                                 .encode())

        server = socketserver.ThreadingTCPServer((HOST, 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return server

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
        return self.proc is not None and self.proc.poll() is None

    def broadcasts(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.startswith("BROADCAST ")]

    def stop(self) -> None:
        if self.control is not None:
            self.control.shutdown()
            self.control.server_close()
        self.halt()
        if self.epmd.poll() is None:
            os.killpg(self.epmd.pid, signal.SIGTERM)
            self.epmd.wait(timeout=10)
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
