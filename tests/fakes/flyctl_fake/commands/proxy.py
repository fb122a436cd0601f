"""fly proxy LOCAL:REMOTE -a APP: a real TCP forwarder to the app's proxy_target (a test's server)."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any

from .. import faults
from ..context import Ctx, get_app
from ..errors import FlyError


def _pipe(src: socket.socket, dst: socket.socket, limit: int | None, done: threading.Event) -> None:
    sent = 0
    try:
        while not done.is_set():
            data = src.recv(65536)
            if not data:
                break
            if limit is not None and sent + len(data) >= limit:
                dst.sendall(data[: max(0, limit - sent)])
                break  # the drop fault: cut the connection mid-stream
            dst.sendall(data)
            sent += len(data)
    except OSError:
        pass
    finally:
        done.set()
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def _serve(client: socket.socket, target: tuple[str, int], drop_after: int | None) -> None:
    try:
        upstream = socket.create_connection(target, timeout=10)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    done = threading.Event()
    threading.Thread(target=_pipe, args=(client, upstream, None, done), daemon=True).start()
    threading.Thread(target=_pipe, args=(upstream, client, drop_after, done), daemon=True).start()


def proxy(ctx: Ctx) -> int:
    local, _, remote = ctx.pos[0].partition(":")
    remote = remote or local
    name = ctx.app_name()
    with ctx.tx() as state:
        app: dict[str, Any] = get_app(state, name)
        drops = faults.take(state, "proxy", ctx.argv, {"drop"})
    if not app.get("proxy_target"):
        raise FlyError(f"fake flyctl: app {name} has no proxy_target (use fake_fly.set_pg_proxy_target)")
    drop_after = int(drops[0].get("after_bytes") or 0) if drops else None
    return forward(ctx, str(app["proxy_target"]), local, remote, drop_after)


def forward(ctx: Ctx, proxy_target: str, local: str, remote: str, drop_after: int | None) -> int:
    """Listen on `local` (0: any free port, named in the ready line) and forward to `proxy_target`."""
    host, _, port = proxy_target.rpartition(":")
    target = (host.strip("[]"), int(port))
    bind = ctx.flag("bind-addr") or "127.0.0.1"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((bind, int(local)))
    except (OSError, ValueError) as e:
        raise FlyError(f"listen tcp {bind}:{local}: bind: address already in use") from e
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ctx.say(f"Proxying localhost:{listener.getsockname()[1]} to remote [fdaa:0:1:a7b::3]:{remote}")
    ctx.out.flush()
    while not stop.is_set():
        try:
            client, _addr = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            if stop.is_set():
                break
            raise
        client.settimeout(None)
        _serve(client, target, drop_after)
    listener.close()
    return 0
