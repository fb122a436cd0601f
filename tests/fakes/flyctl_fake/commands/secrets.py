"""fly secrets list / import / unset / deploy. Only digests of values are ever stored."""

from __future__ import annotations

from typing import Any

from ..context import Ctx, get_app
from ..errors import FlyError
from .common import digest_of, table


def parse_env_lines(data: bytes) -> dict[str, bytes]:
    """NAME=VALUE lines: surrounding quotes stripped, # comments and blank lines skipped, no escapes."""
    out: dict[str, bytes] = {}
    for raw in data.splitlines():
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        name, eq, value = line.partition(b"=")
        if not eq or not name.strip():
            raise FlyError("Secrets must be provided as NAME=VALUE pairs")  # never echo the line: it is secret
        value = value.strip()
        if len(value) >= 2 and value[:1] == value[-1:] and value[:1] in (b'"', b"'"):
            value = value[1:-1]
        out[name.strip().decode()] = value
    return out


def deploy_staged(app: dict[str, Any]) -> None:
    for secret in app["secrets"].values():
        secret["status"] = "Deployed"


def secrets_list(ctx: Ctx) -> int:
    app = get_app(ctx.read(), ctx.app_name())
    items = [{"name": n, "digest": s["digest"], "status": s["status"]} for n, s in sorted(app["secrets"].items())]
    if ctx.json:
        ctx.emit_json(items)
    else:
        ctx.out.write(table([[i["name"], i["digest"], i["status"]] for i in items], ["NAME", "DIGEST", "STATUS"]))
    return 0


def secrets_import(ctx: Ctx) -> int:
    name = ctx.app_name()
    pairs = parse_env_lines(ctx.read_stdin())
    if not pairs:
        raise FlyError("requires at least one SECRET=VALUE pair")
    stage = ctx.on("stage")
    with ctx.tx() as state:
        app = get_app(state, name)
        for key, value in pairs.items():
            app["secrets"][key] = {"digest": digest_of(value), "status": "Staged" if stage else "Deployed"}
        if not stage:
            deploy_staged(app)
    if stage:
        ctx.say("Secrets have been staged, but not set on VMs. Deploy or update machines in this app "
                "for the secrets to take effect.")
    else:
        ctx.say(f"Updating existing machines in '{name}' with rolling strategy")
        ctx.say("✔ Machines are now up to date")
    return 0


def secrets_unset(ctx: Ctx) -> int:
    name = ctx.app_name()
    with ctx.tx() as state:
        app = get_app(state, name)
        for key in ctx.pos:
            app["secrets"].pop(key, None)
        if not ctx.on("stage"):
            deploy_staged(app)
    return 0


def secrets_deploy(ctx: Ctx) -> int:
    with ctx.tx() as state:
        app = get_app(state, ctx.app_name())
        if not app["machines"]:
            raise FlyError(f"no machines available to deploy secrets to for app {app['name']}")
        deploy_staged(app)
    ctx.say("✔ Machines are now up to date")
    return 0
