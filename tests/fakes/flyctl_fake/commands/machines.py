"""fly machine restart / stop / start, and fly tokens create deploy.

Output and flags as in flyctl v0.4.87 (internal/command/machine/{restart,stop,start}.go, internal/machine/
restart.go, internal/command/tokens/create.go). `--signal` is a signal *name* sent to the API as given
(upper-cased); older flyctl parsed it as a number, which today's API does not take, so a number is refused.
A machine's events (`state`, `type`, `source`, `timestamp` in ms) are kept like Fly keeps them.

When a test world is attached to the app (tests/support/world.py: `state.machine_control[app]` =
"host:port"), a restart, stop or start is carried out on that real BEAM through its control port: one
line `restart|stop|start` in, `ok started|stopped|crashed` out. The state lock is not held meanwhile.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from typing import Any

from ..context import Ctx, get_app
from ..errors import FlyError
from .common import digest_of, now_iso

# Fly's signals (fly.toml kill_signal): names only.
SIGNALS = {"SIGABRT", "SIGALRM", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGKILL", "SIGPIPE", "SIGQUIT",
           "SIGSEGV", "SIGTERM", "SIGTRAP", "SIGUSR1"}
MAX_EVENTS = 20


def _event(machine: dict[str, Any], kind: str, status: str, source: str = "user", **request: Any) -> None:
    events = machine.setdefault("events", [])
    events.insert(0, {"type": kind, "status": status, "source": source, "timestamp": int(time.time() * 1000),
                      **({"request": request} if request else {})})
    del events[MAX_EVENTS:]


def _machines(ctx: Ctx, verb: str) -> tuple[str, list[str]]:
    name = ctx.app_name()
    if not ctx.pos:
        raise FlyError(f"a machine ID must be provided to {verb} (or use --select)")
    app = get_app(ctx.read(), name)
    known = {m["id"]: m for m in app["machines"]}
    for mid in ctx.pos:
        if mid not in known:
            raise FlyError(f"could not get machine {mid}: failed to get VM {mid}: machine not found")
    return name, list(ctx.pos)


def _signal(ctx: Ctx, mid: str, verb: str) -> str | None:
    raw = ctx.flag("signal")
    if raw is None:
        return None
    sig = raw.upper()
    if sig not in SIGNALS:
        raise FlyError(f"failed to {verb} machine {mid}: could not stop machine {mid}: invalid signal {raw!r} "
                       f"(one of {', '.join(sorted(SIGNALS))})")
    return sig


def _control(ctx: Ctx, app: str, action: str) -> str | None:
    """Carry `action` out on the test world attached to `app`; its resulting state, or None without one."""
    address = ctx.read().get("machine_control", {}).get(app)
    if not address:
        return None
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.settimeout(180)
        sock.sendall(f"{action}\n".encode())
        reply = sock.makefile("r", encoding="utf-8").readline().strip()
    if not reply.startswith("ok "):
        raise FlyError(f"fake flyctl: the test world refused {action}: {reply}")
    return reply.split()[1]


def _settle(ctx: Ctx, app_name: str, mid: str, state_after: str, events: list[tuple[str, str, str]]) -> None:
    with ctx.tx() as state:
        machine = next(m for m in get_app(state, app_name)["machines"] if m["id"] == mid)
        machine["state"] = state_after
        machine["updated_at"] = now_iso()
        for kind, status, source in events:
            _event(machine, kind, status, source)


def machine_restart(ctx: Ctx) -> int:
    app, ids = _machines(ctx, "restart")
    for mid in ids:
        machine = next(m for m in get_app(ctx.read(), app)["machines"] if m["id"] == mid)
        signal = _signal(ctx, mid, "restart")
        if machine["state"] != "started":
            raise FlyError(f"failed to restart machine {mid}: could not stop machine {mid}: failed to restart VM "
                           f"{mid}: failed_precondition: machine is {machine['state']}, not started")
        ctx.say(f"Restarting machine {mid}")
        _settle(ctx, app, mid, "stopping", [("restart", "stopping", "user")])
        after = _control(ctx, app, "restart") or "started"
        events = [("exit", "stopped", "flyd"), ("start", "started", "user")]
        if after == "crashed":  # the new boot died at once; the restart policy keeps the machine trying
            events.append(("exit", "started", "flyd"))
        _settle(ctx, app, mid, "started", events)
        record(ctx, app, mid, "restart", signal=signal, time=ctx.flag("time"),
               skip_health_checks=ctx.on("skip-health-checks"))
        ctx.say(f"Machine {mid} restarted successfully!")
    return 0


def machine_stop(ctx: Ctx) -> int:
    app, ids = _machines(ctx, "stop")
    for mid in ids:
        signal = _signal(ctx, mid, "stop")
        ctx.say(f"Sending kill signal to machine {mid}...")
        _control(ctx, app, "stop")
        _settle(ctx, app, mid, "stopped", [("stop", "stopped", "user")])
        record(ctx, app, mid, "stop", signal=signal, timeout=ctx.flag("timeout"))
        ctx.say(f"{mid} has been successfully stopped")
    return 0


def machine_start(ctx: Ctx) -> int:
    app, ids = _machines(ctx, "start")
    for mid in ids:
        after = _control(ctx, app, "start") or "started"
        _settle(ctx, app, mid, "started", [("start", "started", "user")]
                + ([("exit", "started", "flyd")] if after == "crashed" else []))
        record(ctx, app, mid, "start")
        ctx.say(f"{mid} has been started")
    return 0


def record(ctx: Ctx, app: str, mid: str, action: str, **details: Any) -> None:
    """What was asked of which machine, for the tests (`state.machine_actions`)."""
    with ctx.tx() as state:
        state.setdefault("machine_actions", []).append(
            {"app": app, "machine": mid, "action": action, "at": time.time(),
             **{k: v for k, v in details.items() if v not in (None, False)}})


def tokens_create_deploy(ctx: Ctx) -> int:
    """An app-scoped deploy token (`FlyV1 fm2_...`); the fake keeps only its digest."""
    name = ctx.app_name()
    get_app(ctx.read(), name)
    token = "FlyV1 fm2_" + secrets.token_urlsafe(48)
    with ctx.tx() as state:
        state.setdefault("tokens", []).append({"kind": "deploy", "app": name, "digest": digest_of(token.encode()),
                                               "name": ctx.flag("name") or "flyctl deploy token",
                                               "expiry": ctx.flag("expiry") or "175200h0m0s", "created_at": now_iso()})
    if ctx.json:
        ctx.say(json.dumps({"token": token}, indent=2))
    else:
        ctx.say(token)
    return 0
