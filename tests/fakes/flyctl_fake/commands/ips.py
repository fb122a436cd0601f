"""fly ips list / allocate-v4 / allocate-v6 / release."""

from __future__ import annotations

from typing import Any

from ..context import Ctx, get_app
from ..errors import NON_INTERACTIVE, YES_REQUIRED, FlyError
from .common import hex_id, now_iso, table

SHARED_V4_DEFAULT = "127.0.0.2"  # loopback: a test's servers on 127.0.0.1 are not reachable through it


def add_ip(app: dict[str, Any], kind: str, address: str, region: str = "global") -> dict[str, Any]:
    ip = {"ID": f"ip_{hex_id(10)}", "Address": address, "Type": kind, "Region": region,
          "CreatedAt": now_iso(), "ServiceName": "", "Network": None}
    app["ips"].append(ip)
    return ip


def public_v6(app: dict[str, Any]) -> str:
    return f"2a09:8280:1::{len(app['ips']) + 1:x}:{hex_id(4)}"


def ips_list(ctx: Ctx) -> int:
    app = get_app(ctx.read(), ctx.app_name())
    if ctx.json:
        ctx.emit_json(app["ips"])
        return 0
    rows = [[ip["Type"].replace("shared_", ""), ip["Address"],
             "public (shared)" if ip["Type"] == "shared_v4" else "public (dedicated)", ip["Region"], ip["CreatedAt"]]
            for ip in app["ips"]]
    ctx.out.write(table(rows, ["VERSION", "IP", "TYPE", "REGION", "CREATED AT"]))
    return 0


def allocate_interactive(ctx: Ctx) -> int:
    """`fly ips allocate` asks which addresses to allocate (its args are ignored): fails off a TTY."""
    get_app(ctx.read(), ctx.app_name())
    ctx.say("? Select the IP address types to allocate:")
    raise FlyError(NON_INTERACTIVE)


def allocate_v4(ctx: Ctx) -> int:
    name = ctx.app_name()
    shared = ctx.on("shared")
    if not shared and not ctx.on("yes"):
        get_app(ctx.read(), name)
        ctx.say("Looks like you're accessing a paid feature. Dedicated IPv4 addresses now cost $2/mo.")
        raise FlyError(YES_REQUIRED)
    with ctx.tx() as state:
        app = get_app(state, name)
        if shared:
            ip = add_ip(app, "shared_v4", ctx.env.get("FAKE_FLY_SHARED_IPV4", SHARED_V4_DEFAULT))
        else:
            app["ips"] = [i for i in app["ips"] if i["Type"] != "shared_v4"]  # a dedicated one replaces it
            ip = add_ip(app, "v4", ctx.env.get("FAKE_FLY_IPV4", "127.0.0.1"), ctx.flag("region") or "global")
    kind = "public (shared)" if shared else "public (dedicated, $2/mo)"
    ctx.out.write(table([["v4", ip["Address"], kind, ip["Region"]]], ["VERSION", "IP", "TYPE", "REGION"]))
    return 0


def allocate_v6(ctx: Ctx) -> int:
    with ctx.tx() as state:
        app = get_app(state, ctx.app_name())
        private = ctx.on("private")
        ip = add_ip(app, "private_v6" if private else "v6",
                    f"fdaa:0:1:a7b::{hex_id(4)}" if private else public_v6(app), ctx.flag("region") or "global")
    ctx.out.write(table([["v6", ip["Address"], ip["Type"], ip["Region"]]], ["VERSION", "IP", "TYPE", "REGION"]))
    return 0


def ips_release(ctx: Ctx) -> int:
    with ctx.tx() as state:
        app = get_app(state, ctx.app_name())
        for address in ctx.pos:
            if not any(ip["Address"] == address for ip in app["ips"]):
                raise FlyError(f"Couldn't find IP address {address} for app {app['name']}")
            app["ips"] = [ip for ip in app["ips"] if ip["Address"] != address]
            ctx.say(f"Released {address} from {app['name']}")
    return 0
