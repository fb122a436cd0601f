"""The game-level probe reads what a game server says on connect, as a player's client does: real loopback
servers that greet properly, slowly, wrongly or not at all."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from bezgelor_tasks import probe

HELLO = struct.pack("<IH", 6 + 38, 0x0003) + bytes(38)
WORLD_HELLO = struct.pack("<IH", 6 + 60, 0x03DC) + bytes(60)  # Bezgelor's world: the hello in ServerRealmEncrypted


class Server:
    """One loopback port; `handler(conn)` runs for every connection on its own thread."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    servers: list[Server] = []

    def start(handler: Callable[[socket.socket], None]) -> int:
        servers.append(Server(handler))
        return servers[-1].port

    yield start
    for s in servers:
        s.close()


def greet(data: bytes, *, pieces: int = 1, pause: float = 0.0) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        step = max(1, len(data) // pieces)
        for i in range(0, len(data), step):
            conn.sendall(data[i:i + step])
            time.sleep(pause)
        time.sleep(2)  # then keep the connection open, as a game server does
    return handler


def read(port: int, timeout: float = 1.0) -> tuple[bool, str]:
    return probe.read_greeting("127.0.0.1", port, timeout)


def test_a_server_hello_on_connect_passes(serve):
    ok, detail = read(serve(greet(HELLO)))
    assert ok, detail
    assert detail == "ServerHello, 38-byte payload"


def test_the_world_servers_wrapped_hello_passes(serve):
    ok, detail = read(serve(greet(WORLD_HELLO)))
    assert ok and "ServerRealmEncrypted" in detail


def test_a_hello_that_arrives_in_pieces_is_read_whole(serve):
    ok, detail = read(serve(greet(HELLO, pieces=7, pause=0.02)))
    assert ok, detail


def test_a_listener_that_accepts_and_never_speaks_fails(serve):
    """What a frozen BEAM looks like from outside: the kernel accepts into the backlog, nothing more."""
    port = serve(lambda conn: time.sleep(5))
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # a TCP connect succeeds: the old gate's check passes
    ok, detail = read(port, timeout=0.6)
    assert not ok
    assert "no ServerHello within 0.6s" in detail


def test_half_a_frame_and_then_silence_fails_naming_what_arrived(serve):
    ok, detail = read(serve(greet(HELLO[:10])), timeout=0.5)
    assert not ok and detail == "a partial frame within 0.5s (10 of 44 bytes)"


@pytest.mark.parametrize(("data", "said"), [
    (struct.pack("<IH", 3, 0x0003), "smaller than the 6-byte header"),
    (struct.pack("<IH", 10_000_000, 0x0003), "a frame claiming 10000000 bytes"),
    (struct.pack("<IH", 12, 0x0042) + bytes(6), "opcode 0x0042, not ServerHello (0x0003)"),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not Bezgelor's framing"),
])
def test_garbage_and_oversize_frames_fail_at_once(serve, data, said):
    started = time.monotonic()
    ok, detail = read(serve(greet(data)), timeout=3)
    assert not ok and said in detail, detail
    assert time.monotonic() - started < 3  # decided from the header, not by waiting out the timeout


def test_a_server_that_hangs_up_without_a_word_fails(serve):
    ok, detail = read(serve(lambda conn: conn.close()))
    assert not ok and "closed the connection after 0 byte(s)" in detail


def test_nothing_listening_is_connection_refused(serve):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert read(port) == (False, "connection refused")


def test_an_sts_auth_server_where_the_client_speaks_first_passes(serve):
    """Bezgelor's auth server speaks STS/1.0: silent on connect, it answers a /Sts/Ping."""
    def sts(conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(1024)
        assert request.startswith(b"POST /Sts/Ping STS/1.0\r\n")
        conn.sendall(b"STS/1.0 200  OK\r\nl:1\r\ns:1R\r\n\r\n\n")
        time.sleep(1)

    ok, detail = read(serve(sts), timeout=1.5)
    assert ok, detail
    assert detail == "STS answer (STS/1.0 200  OK)"


def test_judging_bytes_as_they_come():
    assert probe.judge_greeting(b"") is None
    assert probe.judge_greeting(HELLO[:5]) is None
    assert probe.judge_greeting(HELLO[:20]) is None             # header read, payload incomplete
    assert probe.judge_greeting(HELLO) == (True, "ServerHello, 38-byte payload")
    assert probe.judge_greeting(HELLO + b"more frames") == (True, "ServerHello, 38-byte payload")
    assert probe.judge_greeting(b"STS/1.") is None
    assert probe.judge_greeting(b"STS/2.0 200 OK\r\n")[0] is False


def test_a_pass_probes_health_and_every_game_port_side_by_side(tmp_path, game_servers):
    from bezgelor_tasks import settings_load

    s = settings_load.load(tmp_path)
    result = probe.probe_pass(s, "127.0.0.1")
    assert result.ok, result.summary()
    names = [r.name for r in result.results]
    assert names[0] == "health endpoint"
    assert {n.split()[0] for n in names[1:]} == {"auth", "realm", "world"}
    assert all(r.latency_s > 0 for r in result.results)
    game_servers.mute()
    result = probe.probe_pass(s, "127.0.0.1", timeout=0.5)
    assert not result.ok
    assert [r.name.split()[0] for r in result.failing] == ["auth", "realm", "world"]
