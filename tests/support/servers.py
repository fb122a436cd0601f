"""Fixture `game_servers`: real loopback servers playing the portal's /health and the three game ports.

What they answer follows a *behaviour*:
  healthy  - /health 200 JSON, every service ok; all game ports accept connections and greet each
             client with a ServerHello frame, as Bezgelor's game servers do
  degraded - /health 200 JSON with status "degraded" and world "error"; the world port refuses
  503      - /health 503 JSON with database "error"; game ports accept
  html     - /health 200 with an HTML page (what a force_ssl redirect or proxy page looks like)
  timeout  - /health accepts and never answers; game ports accept
  down     - /health resets the connection; every game port refuses

The behaviour is, in order: the one set on the fixture (`set_behavior`, or `script([...])` for one per
/health request, the last one sticking), else the live release's image behaviour in the fake flyctl's
state (FAKE_FLY_HOME/state.json), else "healthy". The fixture points BEZGELOR_HEALTH_URL and
BEZGELOR_{AUTH,REALM,WORLD}_PORT at these servers (and polls fast: BEZGELOR_HEALTH_INTERVAL=0.1).
`mute(True)` makes the open game ports accept and never speak (a frozen world, as the kernel sees it).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bezgelor_tasks.backup.scratch import free_port

BEHAVIORS = ("healthy", "degraded", "503", "html", "timeout", "down")
HOST = "127.0.0.1"
GAME_SERVICES = ("auth", "realm", "world")
# What Bezgelor's BezgelorProtocol.Connection sends on connect: <<size::little-32, opcode::little-16, payload>>,
# size = 6 + payload length, ServerHello = 0x0003 (the payload's content does not matter to a probe).
HELLO_PAYLOAD = bytes(range(38))
SERVER_HELLO = struct.pack("<IH", 6 + len(HELLO_PAYLOAD), 0x0003) + HELLO_PAYLOAD


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # resets are on purpose
        pass




class Listener:
    """A TCP port that can be opened and closed again (closed → connection refused)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()
        self.accepted = 0
        self.speaks = True                      # False: accept and say nothing (a frozen world)
        self.silent: list[socket.socket] = []   # connections held open without a word

    def set_open(self, want: bool) -> None:
        with self.lock:
            if want and self.sock is None:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((HOST, self.port))
                sock.listen(16)
                self.sock = sock
                threading.Thread(target=self._accept, args=(sock,), daemon=True).start()
            elif not want and self.sock is not None:
                sock, self.sock = self.sock, None
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
                for conn in self.silent:
                    conn.close()
                self.silent.clear()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.accepted += 1
            if not self.speaks:
                self.silent.append(conn)
                continue
            try:
                conn.sendall(SERVER_HELLO)
            except OSError:
                pass
            conn.close()


def live_image_behavior(state: dict[str, Any], app: str | None = None) -> tuple[str, str]:
    """(behaviour, version) of the live release in the fake flyctl's state; ("down", "") if none is live."""
    apps = state.get("apps", {})
    candidates = [apps[app]] if app and app in apps else [a for a in apps.values() if a.get("kind", "app") == "app"]
    for candidate in candidates:
        current = candidate.get("current_release")
        if current is None:
            continue
        release = next((r for r in candidate.get("releases", []) if r.get("version") == current), None)
        if release is None:
            continue
        ref = release.get("image_ref") or release.get("image") or ""
        images = state.get("images", {})
        image = images.get(ref) or next((i for i in images.values() if i.get("ref") == ref), None) or {}
        behavior = image.get("behavior") or image.get("behaviour") or release.get("behavior") or "healthy"
        build_args = image.get("build_args") or {}
        version = str(build_args.get("APP_VERSION") or image.get("label") or "")
        return str(behavior), version
    return "down", ""


class GameServers:
    def __init__(self, app: str | None = None) -> None:
        self.app = app
        self.ports = {name: free_port() for name in GAME_SERVICES}
        self.listeners = {name: Listener(port) for name, port in self.ports.items()}
        self._override: str | None = None
        self._script: list[str] = []
        self._version = "test"
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.health_hits = 0
        self.http = _QuietHTTPServer((HOST, 0), self._handler())
        self.health_port = int(self.http.server_address[1])
        self.health_url = f"http://{HOST}:{self.health_port}/health"
        self.host = HOST
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.reconcile()

    # --- behaviour --------------------------------------------------------------------------------

    def set_behavior(self, behavior: str | None, version: str = "test") -> None:
        """Fix the behaviour (None: follow the fake flyctl's live release again)."""
        assert behavior is None or behavior in BEHAVIORS, behavior
        with self._lock:
            self._override, self._script, self._version = behavior, [], version
        self.reconcile()

    def script(self, behaviors: list[str], version: str = "test") -> None:
        """One behaviour per /health request, in order; the last one sticks."""
        assert behaviors and all(b in BEHAVIORS for b in behaviors), behaviors
        with self._lock:
            self._script, self._override, self._version = list(behaviors), behaviors[0], version
        self.reconcile()

    def _fake_state(self) -> dict[str, Any] | None:
        home = os.environ.get("FAKE_FLY_HOME")
        if not home:
            return None
        try:
            with open(os.path.join(home, "state.json"), encoding="utf-8") as fh:
                return json.load(fh)  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def current(self) -> tuple[str, str]:
        """(behaviour, version) right now."""
        with self._lock:
            if self._override is not None:
                return self._override, self._version
        state = self._fake_state()
        if state is None:
            return "healthy", self._version
        return live_image_behavior(state, self.app or os.environ.get("BEZGELOR_FLY_APP"))

    @property
    def behavior(self) -> str:
        return self.current()[0]

    def _next_for_request(self) -> tuple[str, str]:
        with self._lock:
            if self._script:
                self._override = self._script.pop(0) if len(self._script) > 1 else self._script[0]
        return self.current()

    def mute(self, on: bool = True) -> None:
        """Game ports that accept and never send their ServerHello (on) or greet again (off)."""
        for listener in self.listeners.values():
            listener.speaks = not on

    def reconcile(self, behavior: str | None = None) -> None:
        """Open or close the game ports to match the behaviour."""
        behavior = behavior or self.behavior
        for name, listener in self.listeners.items():
            closed = behavior == "down" or (behavior == "degraded" and name == "world")
            listener.set_open(not closed)

    # --- HTTP -------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        servers = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?")[0] not in ("/health", "/api/health", "/livez"):
                    self._send(404, "text/plain", b"not found")
                    return
                with servers._lock:
                    servers.health_hits += 1
                behavior, version = servers._next_for_request()
                servers.reconcile(behavior)
                if behavior == "down":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    self.connection.close()
                    return
                if behavior == "timeout":
                    servers._released.wait(30)
                    return
                if behavior == "html":
                    self._send(200, "text/html", b"<html><body>You are being redirected</body></html>")
                    return
                services = {"database": "ok", "auth": "ok", "realm": "ok", "world": "ok"}
                status, code = "healthy", 200
                if behavior == "degraded":
                    services["world"], status = "error", "degraded"
                elif behavior == "503":
                    services["database"], status, code = "error", "degraded", 503
                body = json.dumps({"status": status, "services": services, "version": version,
                                   "timestamp": "2026-01-01T00:00:00Z"}).encode()
                self._send(code, "application/json", body)

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def env(self) -> dict[str, str]:
        return {"BEZGELOR_HEALTH_URL": self.health_url, "BEZGELOR_AUTH_PORT": str(self.ports["auth"]),
                "BEZGELOR_REALM_PORT": str(self.ports["realm"]), "BEZGELOR_WORLD_PORT": str(self.ports["world"]),
                "BEZGELOR_HEALTH_INTERVAL": "0.1", "BEZGELOR_PROBE_TIMEOUT": "2"}

    def close(self) -> None:
        self._released.set()
        self.http.shutdown()
        self.http.server_close()
        for listener in self.listeners.values():
            listener.set_open(False)


@pytest.fixture
def game_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[GameServers]:
    """Real /health + game-port servers on 127.0.0.1; settings loaded afterwards point at them."""
    servers = GameServers()
    for key, value in servers.env().items():
        monkeypatch.setenv(key, value)
    try:
        yield servers
    finally:
        servers.close()
