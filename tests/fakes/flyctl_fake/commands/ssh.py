"""fly ssh console -C: emulates the release's /app/bin/migrate protocol (see notes/interfaces.md)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from ..context import Ctx, get_app
from ..errors import NON_INTERACTIVE, FlyError
from .deploy import apply_migrations

REPO = "BezgelorDb.Repo"


def live_image(state: dict[str, Any], app: dict[str, Any]) -> dict[str, Any]:
    refs = [m["image"] for m in app["machines"] if m.get("image")]
    return state["images"].get(refs[0], {"migrations": []}) if refs else {"migrations": []}


def migration_status(app: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """Ecto's view: the image's migrations up or down, plus applied ones the image lacks (FILE NOT FOUND)."""
    applied = {m["version"]: m["name"] for m in app["database"]["applied"]}
    rows = {m["version"]: {"version": m["version"], "name": m["name"],
                           "status": "up" if m["version"] in applied else "down"} for m in image["migrations"]}
    for version in applied:
        rows.setdefault(version, {"version": version, "name": "** FILE NOT FOUND **", "status": "up"})
    return {"repos": [{"repo": REPO, "migrations": [rows[v] for v in sorted(rows)]}]}


def run_remote(ctx: Ctx, state: dict[str, Any], app: dict[str, Any], words: list[str]) -> int:
    image = live_image(state, app)
    if words[:1] == ["printenv"]:  # the machine's environment: its secrets as values (`machine_env`)
        env = app.get("machine_env") or {}
        values = [env[n] for n in words[1:] if n in env]
        for v in values:
            ctx.say(v)
        return 0 if values and len(values) == len(words[1:]) else 1
    if words[:1] != ["/app/bin/migrate"]:
        ctx.note(f"sh: 1: {words[0] if words else ''}: not found")
        return 127
    args = words[1:]
    if not args:
        new = apply_migrations(app, image)
        for m in new:
            ctx.say(f"[info] == Running {m['version']} {m['name']}.change/0 forward")
        if not new:
            ctx.say("[info] Migrations already up")
        return 0
    if args == ["status"]:
        ctx.say("BEZGELOR_MIGRATIONS " + json.dumps(migration_status(app, image), separators=(",", ":")))
        return 0
    if args[0] == "rollback" and len(args) == 2 and args[1].isdigit():
        target = int(args[1])  # Ecto's run(:down, to: V) reverts V and everything newer
        app["database"]["applied"] = [m for m in app["database"]["applied"] if m["version"] < target]
        ctx.say(f"BEZGELOR_ROLLBACK ok {target}")
        return 0
    ctx.note(f"usage: migrate [status | rollback VERSION], got {' '.join(args)}")
    return 2


def ssh_console(ctx: Ctx) -> int:
    name = ctx.app_name()
    command = ctx.flag("command")
    if not command:
        raise FlyError(f"ssh shell: {NON_INTERACTIVE}")
    with ctx.tx() as state:
        app = get_app(state, name)
        if not any(m["state"] == "started" for m in app["machines"]):
            raise FlyError(f"app {name} has no started VMs.\nIt may be unhealthy or not have been deployed yet.\n"
                           "Try the following command to verify:\n\nfly status")
        ctx.note("Connecting to fdaa:0:1:a7b::2... complete")
        code = run_remote(ctx, state, app, shlex.split(command))
    if code:
        raise FlyError(f"ssh shell: Process exited with status {code}")
    return 0
