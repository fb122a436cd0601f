"""fly ssh console -C: emulates the release's /app/bin/migrate protocol (see notes/interfaces.md), the release
module's functions through `/app/bin/<release> eval "<Db>.Release.status()"` / `rollback_to("V")`, and
`/app/bin/<release> rpc EXPR`, evaluated on a real BEAM node (tests/support/world.py) when one is set.

What the image has comes from its build (deploy.scan_release): the release's name (another bin/<name> is "not
found"), its release modules (a call to one it lacks fails as Elixir's UndefinedFunctionError does), and its
bin/migrate: the one `inv init` writes, or the checkout's own, which migrates and seeds whatever it is given
(`database.seeded` counts its runs).

flyctl sends the -C string unchanged; Fly's in-machine SSH server splits it into words with shell-style
quoting and runs them without a shell (shlex.split here). Mix's release script evaluates only the
word after `rpc` (`elixir --rpc-eval "$RELEASE_NODE" "$2"`): so does the fake, with a real `elixir`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
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
    if len(words) >= 2 and words[1] == "eval" and words[0] != "/app/bin/migrate":
        return run_eval(ctx, app, image, words)
    if words[:1] != ["/app/bin/migrate"]:
        ctx.note(f"sh: 1: {words[0] if words else ''}: not found")
        return 127
    args = words[1:]
    if not args or image.get("migrate_script") == "seeds":
        migrate(ctx, app, image)
        if image.get("migrate_script") == "seeds":   # the checkout's own: it never reads its arguments
            app["database"]["seeded"] = app["database"].get("seeded", 0) + 1
            ctx.say("[info] Seeded the realm, the permissions and the roles")
        return 0
    if args == ["status"]:
        print_status(ctx, app, image)
        return 0
    if args[0] == "rollback" and len(args) == 2 and args[1].isdigit():
        roll_back(ctx, app, int(args[1]))
        return 0
    ctx.note(f"usage: migrate [status | rollback VERSION], got {' '.join(args)}")
    return 2


def migrate(ctx: Ctx, app: dict[str, Any], image: dict[str, Any]) -> None:
    new = apply_migrations(app, image)
    for m in new:
        ctx.say(f"[info] == Running {m['version']} {m['name']}.change/0 forward")
    if not new:
        ctx.say("[info] Migrations already up")


def print_status(ctx: Ctx, app: dict[str, Any], image: dict[str, Any]) -> None:
    ctx.say("BEZGELOR_MIGRATIONS " + json.dumps(migration_status(app, image), separators=(",", ":")))


def roll_back(ctx: Ctx, app: dict[str, Any], target: int) -> None:
    """Ecto's run(:down, to: V) reverts V and everything newer."""
    app["database"]["applied"] = [m for m in app["database"]["applied"] if m["version"] < target]
    ctx.say(f"BEZGELOR_ROLLBACK ok {target}")


_CALL = re.compile(r'^([A-Z][\w.]*)\.(status|rollback_to|migrate)\((?:"(\d+)")?\)$')
DEFAULT_MODULES = {"BezgelorDb.Release": ["migrate", "rollback", "rollback_to", "status"]}  # images set by tests


def run_eval(ctx: Ctx, app: dict[str, Any], image: dict[str, Any], words: list[str]) -> int:
    """`/app/bin/<release> eval EXPR`: a release module's migrate/status/rollback_to, as the image has them."""
    release = image.get("release")
    if release is not None and words[0] != f"/app/bin/{release}":
        ctx.note(f"sh: 1: {words[0]}: not found")
        return 127
    m = _CALL.match(words[2] if len(words) > 2 else "")
    if m is None:
        ctx.note(f"fake flyctl does not emulate `eval {' '.join(words[2:])}`")
        return 1
    module, function, version = m.groups()
    modules = image.get("release_modules", DEFAULT_MODULES)
    if function not in modules.get(module, []):
        ctx.note(f"** (UndefinedFunctionError) function {module}.{function}/{1 if version else 0} is undefined"
                 + ("" if module in modules else f" (module {module} is not available)"))
        return 1
    if function == "status":
        print_status(ctx, app, image)
    elif function == "rollback_to" and version:
        roll_back(ctx, app, int(version))
    else:
        migrate(ctx, app, image)
    return 0


RPC_NODEDOWN = "--rpc-eval : RPC failed with reason :nodedown"  # what `bin/<release> rpc` says, node not up


def is_rpc(words: list[str]) -> bool:
    return len(words) >= 2 and words[0].startswith("/app/bin/") and words[0] != "/app/bin/migrate" \
        and words[1] == "rpc"


def run_rpc(ctx: Ctx, node: dict[str, Any] | None, words: list[str]) -> int:
    """`bin/<release> rpc EXPR` on the app's node (state["rpc_nodes"][app]): a real `elixir --rpc-eval`."""
    if len(words) < 3 or not words[2]:
        ctx.note("ERROR: RPC expects an expression as argument")
        return 1
    if not node:  # no world node for this app: the release's node is not reachable
        ctx.note(RPC_NODEDOWN)
        return 1
    env = {**os.environ, "ERL_EPMD_PORT": str(node["epmd_port"])}
    proc = subprocess.run(
        ["elixir", "--hidden", "--name", f"rpc-{secrets.token_hex(4)}@127.0.0.1", "--cookie", node["cookie"],
         "--rpc-eval", node["node"], words[2]],
        env=env, capture_output=True, text=True, timeout=120)
    ctx.out.write(proc.stdout)
    ctx.err.write(proc.stderr)
    return proc.returncode


def ssh_console(ctx: Ctx) -> int:
    name = ctx.app_name()
    command = ctx.flag("command")
    if not command:
        raise FlyError(f"ssh shell: {NON_INTERACTIVE}")
    words = shlex.split(command)
    with ctx.tx() as state:
        app = get_app(state, name)
        if not any(m["state"] == "started" for m in app["machines"]):
            raise FlyError(f"app {name} has no started VMs.\nIt may be unhealthy or not have been deployed yet.\n"
                           "Try the following command to verify:\n\nfly status")
        ctx.note("Connecting to fdaa:0:1:a7b::2... complete")
        node = state.get("rpc_nodes", {}).get(name)
        code = None if is_rpc(words) else run_remote(ctx, state, app, words)
    if code is None:  # outside the state lock: the remote call takes a while
        code = run_rpc(ctx, node, words)
    if code:
        raise FlyError(f"ssh shell: Process exited with status {code}")
    return 0
