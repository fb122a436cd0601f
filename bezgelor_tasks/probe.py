"""The game-level probe: does the world's code run, as a player reaches it?

A TCP connect proves little: the kernel completes the handshake into the listen backlog even when the
BEAM is frozen. Bezgelor's game servers speak first: `BezgelorProtocol.Connection` sends a frame
`<<size::little-32, opcode::little-16, payload>>` (size = 6 + payload length) on every connect —
ServerHello (opcode 0x0003) on the realm server, the same hello wrapped in ServerRealmEncrypted
(0x03DC) on the world server (apps/bezgelor_protocol/lib/bezgelor_protocol/connection.ex). Reading
that frame within the timeout proves the code runs. An auth server speaking STS/1.0 (Bezgelor's
`BezgelorAuth.Sts.Connection`, an HTTP-like protocol where the client speaks first) says nothing on
connect: when a port stays silent for a moment, the probe sends an STS `/Sts/Ping` and accepts an
`STS/1.0` status line. A listener that accepts and never answers fails either way.

One pass: `/health` answers 200 with every service ok, and every game port greets, all at once (one
thread each, so a pass takes the slowest probe, not the sum), each with its latency; plus, when asked,
the player count through the Portal API (`bin/<release> rpc`, game/portal.py). Never raises for a
sick world: the caller (the deploy's health gate, the watcher, `inv status`) decides.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bezgelor_tasks.processes import STOP

if TYPE_CHECKING:
    from bezgelor_tasks.run import Executor
    from bezgelor_tasks.settings import Settings

OK = "ok"
HEALTH_PROBE = "health endpoint"
SERVER_HELLO = 0x0003
SERVER_REALM_ENCRYPTED = 0x03DC
GREETINGS = {SERVER_HELLO: "ServerHello", SERVER_REALM_ENCRYPTED: "ServerHello (in ServerRealmEncrypted)"}
HEADER = struct.Struct("<IH")
MAX_FRAME = 64 * 1024   # a ServerHello is a few dozen bytes; a size past this is not Bezgelor's framing
STS_PING = b"POST /Sts/Ping STS/1.0\r\nl:0\r\ns:1\r\n\r\n"
STS_STATUS = b"STS/1.0 "
STS_AFTER_S = 1.0       # silence this long (capped at a third of the timeout) → speak STS first


@dataclass(frozen=True)
class ProbeResult:
    name: str            # "health endpoint", "world hello 203.0.113.7:24000"
    ok: bool
    latency_s: float
    detail: str          # what answered, or why it failed

    @property
    def state(self) -> str:
        return OK if self.ok else self.detail

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "latency_ms": round(self.latency_s * 1000, 1),
                "detail": self.detail}


@dataclass
class ProbePass:
    results: list[ProbeResult]
    at: float = field(default_factory=time.time)
    players: int | None = None          # None: not asked, or the Portal API could not be reached
    maintenance: bool | None = None
    players_error: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def failing(self) -> list[ProbeResult]:
        return [r for r in self.results if not r.ok]

    def summary(self) -> str:
        if self.ok:
            return "all probes ok (" + ", ".join(f"{r.name} {r.latency_s * 1000:.0f} ms" for r in self.results) + ")"
        return "; ".join(f"{r.name}: {r.detail}" for r in self.failing)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "at": round(self.at, 3), "probes": [r.as_json() for r in self.results],
                "players": self.players, "maintenance": self.maintenance, "players_error": self.players_error or None}


# --- the greeting on a game port ------------------------------------------------------------------------

def judge_greeting(data: bytes) -> tuple[bool, str] | None:
    """What the first bytes a game port sent say: (ok, detail) once decided, None while more are needed.

    Robust to partial reads (None until the whole frame is there), garbage (a size below the header,
    an unknown opcode) and oversize frames (a size no ServerHello has)."""
    if data.startswith(STS_STATUS[: len(data)]) or data.startswith(b"STS/"):
        if b"\r\n" not in data:
            return None if len(data) < 256 else (False, "an STS status line without an end")
        line = data.split(b"\r\n", 1)[0].decode("ascii", "replace")
        return (True, f"STS answer ({line.strip()})") if data.startswith(STS_STATUS) else \
            (False, f"an unknown STS version ({line.strip()[:40]})")
    if len(data) < HEADER.size:
        return None
    size, opcode = HEADER.unpack_from(data)
    if size < HEADER.size:
        return False, f"garbage, not a Bezgelor frame (size field {size} is smaller than the 6-byte header)"
    if size > MAX_FRAME:
        return False, f"a frame claiming {size} bytes (a ServerHello has a few dozen): not Bezgelor's framing"
    if opcode not in GREETINGS:
        return False, f"a first frame with opcode 0x{opcode:04X}, not ServerHello (0x{SERVER_HELLO:04X})"
    if len(data) < size:
        return None
    return True, f"{GREETINGS[opcode]}, {size - HEADER.size}-byte payload"


def read_greeting(host: str, port: int, timeout: float, *, sts_after: float | None = None) -> tuple[bool, str]:
    """Connect and read the server's greeting frame within `timeout` seconds: (ok, detail)."""
    started = time.monotonic()
    deadline = started + timeout
    quiet = min(STS_AFTER_S, timeout / 3) if sts_after is None else sts_after
    try:
        sock = socket.create_connection((host, port), timeout=max(0.05, timeout))
    except ConnectionRefusedError:
        return False, "connection refused"
    except TimeoutError:
        return False, f"no connection within {timeout:g}s"
    except OSError as e:
        return False, e.strerror or str(e)
    data = b""
    pinged = False
    with sock:
        while True:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return False, _silence(data, timeout, pinged)
            speak_at = started + quiet
            wait = min(left, speak_at - now) if not pinged and not data and now < speak_at else left
            sock.settimeout(max(0.01, wait))
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if not pinged and not data and time.monotonic() >= speak_at:
                    pinged = _send_quietly(sock, STS_PING)
                continue
            except OSError as e:
                return False, f"connection reset after {len(data)} byte(s) ({e.strerror or e})"
            if not chunk:
                return False, f"closed the connection after {len(data)} byte(s), without a greeting"
            data += chunk
            verdict = judge_greeting(data)
            if verdict is not None:
                return verdict


def _send_quietly(sock: socket.socket, payload: bytes) -> bool:
    try:
        sock.sendall(payload)
    except OSError:
        pass
    return True


def _silence(data: bytes, timeout: float, pinged: bool) -> str:
    if data:
        need = HEADER.unpack_from(data)[0] if len(data) >= HEADER.size else HEADER.size
        return f"a partial frame within {timeout:g}s ({len(data)} of {need} bytes)"
    asked = " (nor an answer to an STS ping)" if pinged else ""
    return f"connected, but no ServerHello within {timeout:g}s{asked}: the world's code does not answer"


def hello_probe(service: str, host: str, port: int, timeout: float) -> ProbeResult:
    started = time.monotonic()
    ok, detail = read_greeting(host, port, timeout)
    return ProbeResult(f"{service} hello {host}:{port}", ok, time.monotonic() - started, detail)


def health_probe(url: str, timeout: float) -> ProbeResult:
    from bezgelor_tasks.health import check_http

    started = time.monotonic()
    services, _version, error = check_http(url, timeout=timeout)
    failing = {k: v for k, v in services.items() if v != OK}
    if not failing:
        detail = "HTTP 200, every service ok"
    elif list(failing) == [HEALTH_PROBE]:
        detail = failing[HEALTH_PROBE]
    else:
        detail = "; ".join(f"{k}: {v}" for k, v in failing.items()) or error
    return ProbeResult(HEALTH_PROBE, not failing, time.monotonic() - started, detail)


# --- one pass -----------------------------------------------------------------------------------------------

def side_by_side(probes: list[Callable[[], ProbeResult]], timeout: float) -> list[ProbeResult]:
    """Run the probes at once on daemon threads (a Ctrl-C never waits for a socket); results in order."""
    results: list[ProbeResult | None] = [None] * len(probes)
    done = threading.Event()
    left = [len(probes)]
    lock = threading.Lock()

    def run(i: int, probe: Callable[[], ProbeResult]) -> None:
        try:
            results[i] = probe()
        finally:
            with lock:
                left[0] -= 1
                if not left[0]:
                    done.set()

    for i, probe in enumerate(probes):
        threading.Thread(target=run, args=(i, probe), daemon=True, name="probe").start()
    deadline = time.monotonic() + timeout + 2.0  # each probe bounds itself; this only guards a stuck resolver
    while not done.wait(0.1):
        if STOP.is_set():
            raise KeyboardInterrupt("interrupted during a probe pass")
        if time.monotonic() > deadline:
            break
    return [r if r is not None else ProbeResult("probe", False, timeout, "did not finish") for r in results]


def game_probes(settings: Settings, host: str, timeout: float) -> list[Callable[[], ProbeResult]]:
    def one(name: str, port: int) -> Callable[[], ProbeResult]:
        return lambda: hello_probe(name, host, port, timeout)

    return [one(name, port) for name, port in settings.ports.game().items()]


def probe_pass(settings: Settings, ipv4: str | None, *, executor: Executor | None = None,
               players: bool = False, timeout: float | None = None) -> ProbePass:
    """/health and every game port's greeting at `ipv4` (the dedicated IPv4 players reach), side by side;
    with `players` (and an executor), the count and maintenance flag from the Portal API too."""
    limit = float(settings.probe_timeout_s if timeout is None else timeout)
    probes: list[Callable[[], ProbeResult]] = [lambda: health_probe(settings.public_health_url, limit)]
    if ipv4:
        probes += game_probes(settings, ipv4, limit)
    began = time.time()
    result = ProbePass(side_by_side(probes, limit), at=began)
    if players and executor is not None:
        read_players(settings, executor, result)
    return result


def read_players(settings: Settings, executor: Executor, into: ProbePass) -> None:
    """The player count and maintenance flag where the rpc is reachable; the reason where it is not."""
    from bezgelor_tasks.game.portal import Portal, PortalUnavailable

    try:
        status = Portal(settings, executor).read(quiet=True)
    except PortalUnavailable as e:
        into.players_error = e.message
        return
    if status is not None:
        into.players, into.maintenance = status.count, status.maintenance
