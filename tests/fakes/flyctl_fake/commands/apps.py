"""fly apps list / create / destroy."""

from __future__ import annotations

from typing import Any

from ..context import Ctx, get_app
from ..errors import YES_REQUIRED, FlyError
from ..store import State
from .common import new_app, org_json, table


def app_json(state: State, app: dict[str, Any]) -> dict[str, Any]:
    current = next((r for r in app["releases"] if r["version"] == app.get("current_release")), None)
    return {
        "ID": app["name"],
        "Name": app["name"],
        "Deployed": app["status"] == "deployed",
        "Hostname": app["hostname"],
        "Status": app["status"],
        "PlatformVersion": "machines",
        "Organization": org_json(state, app["org"]),
        "CurrentRelease": {"CreatedAt": current["created_at"], "Status": current["status"]} if current else None,
    }


def apps_list(ctx: Ctx) -> int:
    state = ctx.read()
    org = ctx.flag("org")
    apps = [a for a in sorted(state["apps"].values(), key=lambda a: a["name"]) if org in (None, a["org"])]
    if ctx.json:
        ctx.emit_json([app_json(state, a) for a in apps])
    else:
        rows = [[a["name"], a["org"], a["status"], ""] for a in apps]
        ctx.out.write(table(rows, ["NAME", "OWNER", "STATUS", "LATEST DEPLOY"]))
    return 0


def apps_create(ctx: Ctx) -> int:
    name = (ctx.pos[0] if ctx.pos else None) or ctx.flag("name")
    if not name:
        raise FlyError("--name or --generate-name flags must be specified when not running interactively")
    with ctx.tx() as state:
        org = ctx.flag("org") or ctx.env.get("FLY_ORG") or state["default_org"]
        if name in state["apps"] or name in state["taken_names"]:
            raise FlyError("Validation failed: Name has already been taken")
        app = new_app(state, name, org)
        if ctx.json:
            ctx.emit_json(app_json(state, app))
        else:
            ctx.say(f"New app created: {name}")
    return 0


def apps_destroy(ctx: Ctx) -> int:
    if not ctx.pos:
        raise FlyError("app name argument must be specified when not running interactively")
    if not ctx.on("yes"):
        raise FlyError(YES_REQUIRED)
    with ctx.tx() as state:
        for name in ctx.pos:
            get_app(state, name)
            del state["apps"][name]
            ctx.say(f"Destroyed app {name}")
    return 0
