"""fly deploy, releases, status, image show, scale memory: the app's images, releases and machines."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from typing import Any

from .. import faults
from ..context import Ctx, get_app
from ..errors import FlyError
from ..store import State
from .common import REGISTRY, find_image, hex_id, new_machine, now_iso, split_ref, table
from .ips import SHARED_V4_DEFAULT, add_ip, public_v6
from .postgres import memory_mb
from .secrets import deploy_staged

MIGRATIONS_DIR = os.path.join("apps", "bezgelor_db", "priv", "repo", "migrations")
MIGRATION_FILE = re.compile(r"^(\d+)_(\w+)\.exs$")
HEALTHY = "healthy"
CHECK_BY_BEHAVIOR = {
    "healthy": ("passing", "HTTP GET http://[fdaa::3]:4000/health: 200 OK Output: \"ok\""),
    "degraded": ("warning", "HTTP GET http://[fdaa::3]:4000/health: 200 OK Output: \"degraded\""),
    "503": ("critical", "HTTP GET http://[fdaa::3]:4000/health: 503 Service Unavailable"),
    "html": ("critical", "HTTP GET http://[fdaa::3]:4000/health: 301 Moved Permanently"),
    "timeout": ("critical", "HTTP GET http://[fdaa::3]:4000/health: context deadline exceeded"),
    "down": ("critical", "dial tcp [fdaa::3]:4000: connect: connection refused"),
}


def scan_migrations(workdir: str) -> list[dict[str, Any]]:
    """The migrations a build would bake in: versions and names of the migration files of the checkout."""
    try:
        names = os.listdir(os.path.join(workdir, MIGRATIONS_DIR))
    except OSError:
        return []
    found = [(int(m.group(1)), m.group(2)) for m in map(MIGRATION_FILE.match, names) if m]
    return [{"version": v, "name": n} for v, n in sorted(found)]


_COPIED_RELEASE = re.compile(r"_build/[^/\s]+/rel/([a-z_][a-z0-9_]*)\b")
_DEFMODULE = re.compile(r"^\s*defmodule\s+([\w.]+)\s+do", re.M)
_DEF = re.compile(r"^\s*def\s+([a-z_][a-zA-Z0-9_?!]*)", re.M)
OUR_SCRIPT = "Installed by bezgelor-tasks"   # the first lines of the bin/migrate `inv init` writes


def read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def scan_release(workdir: str) -> dict[str, Any]:
    """What a build puts in /app (as far as the fake needs it): the release the Dockerfile copies (its bin/<name>),
    the release modules of the apps (`release.ex`: name and public functions), and whether the release's
    bin/migrate is the one `inv init` writes (the status/rollback protocol) or the checkout's own, which the fake
    runs as the maintainers' does: migrate, then seed, whatever it is given."""
    dockerfile = read(os.path.join(workdir, "Dockerfile"))
    names = _COPIED_RELEASE.findall(dockerfile)
    modules: dict[str, list[str]] = {}
    migrate = "ours"
    for folder, dirs, files in os.walk(workdir):
        dirs[:] = [d for d in dirs if d not in ("deps", "_build", ".git", "node_modules", ".bezgelor")]
        for name in files:
            path = os.path.join(folder, name)
            if name == "release.ex" and f"{os.sep}lib{os.sep}" in path:
                text = read(path)
                for m in _DEFMODULE.finditer(text):
                    modules[m.group(1)] = _DEF.findall(text)
            elif name == "migrate" and folder.endswith(os.path.join("overlays", "bin")):
                migrate = "ours" if OUR_SCRIPT in read(path) else "seeds"
    return {"release": names[-1] if names else None, "release_modules": modules, "migrate_script": migrate}


def pairs(values: list[str]) -> dict[str, str]:
    return dict(v.partition("=")[::2] for v in values)


def build_image(ctx: Ctx, state: State, app: dict[str, Any], workdir: str, push: bool) -> dict[str, Any]:
    label = ctx.flag("image-label") or f"deployment-{hex_id(26).upper()}"
    ref = f"{REGISTRY}/{app['name']}:{label}"
    behaviors = state.get("image_behaviors", {})
    image = {
        "ref": ref,
        "app": app["name"],
        "label": label,
        "digest": "sha256:" + hashlib.sha256(f"{ref}{time.time()}{hex_id(8)}".encode()).hexdigest(),
        "migrations": scan_migrations(workdir),
        **scan_release(workdir),
        "behavior": behaviors.get(ref) or behaviors.get(label) or state.get("default_image_behavior", HEALTHY),
        "build_args": pairs(ctx.flag_list("build-arg")),
        "labels": pairs(ctx.flag_list("label")),
        "dockerfile": ctx.flag("dockerfile") or "Dockerfile",
        "dockerfile_present": os.path.exists(os.path.join(workdir, ctx.flag("dockerfile") or "Dockerfile")),
        "workdir": workdir,
        "pushed": push,
        "created_at": now_iso(),
    }
    state["images"][ref] = image
    ctx.say("==> Building image")
    ctx.say("--> Building image done")
    if push:
        ctx.say("==> Pushing image to fly")
        ctx.say("--> Pushing image done")
    ctx.say(f"image: {ref}")
    ctx.say("image size: 88 MB")
    return image


def apply_migrations(app: dict[str, Any], image: dict[str, Any]) -> list[dict[str, Any]]:
    applied = {m["version"] for m in app["database"]["applied"]}
    new = [m for m in image["migrations"] if m["version"] not in applied]
    app["database"]["applied"] = sorted(app["database"]["applied"] + new, key=lambda m: m["version"])
    return new


BOOT_LOG = ("Running BezgelorPortalWeb.Endpoint with Bandit at :::4000 (http)",
            "[auth] listening on port 6600", "[realm] listening on port 23115", "[world] listening on port 24000")


def log_boot(app: dict[str, Any], machine: dict[str, Any], image: dict[str, Any]) -> None:
    """What the machine prints when it boots an image: `fly logs` shows it (the newest 100 lines)."""
    lines = app.setdefault("logs", [])
    for message in BOOT_LOG:
        lines.append({"timestamp": now_iso(), "instance": machine["id"], "region": machine["region"],
                      "level": "info", "message": f"{message} ({image['label']})"})
    del lines[:-100]


def set_machine_image(machine: dict[str, Any], image: dict[str, Any], version: int) -> None:
    status, output = CHECK_BY_BEHAVIOR.get(image["behavior"], CHECK_BY_BEHAVIOR["down"])
    machine.update({"image": image["ref"], "image_digest": image["digest"], "release_version": version,
                    "updated_at": now_iso(),
                    "checks": [{"name": "servicecheck-00-http-4000", "status": status, "output": output,
                                "updated_at": now_iso()}]})


def deploy(ctx: Ctx) -> int:
    name = ctx.app_name()
    workdir = os.path.join(ctx.cwd, ctx.pos[0]) if ctx.pos else ctx.cwd
    with ctx.tx() as state:
        app = get_app(state, name)
        wanted = ctx.flag("image")
        if wanted:
            image = find_image(state, wanted)
            if image is None:
                raise FlyError(f'failed to fetch an image or build from source: could not find image "{wanted}": '
                               "manifest unknown")
            ctx.say(f"==> Deploying image {image['ref']}")
        else:
            image = build_image(ctx, state, app, workdir, push=ctx.on("push") or not ctx.on("build-only"))
        if ctx.on("build-only"):
            return 0
        return roll_out(ctx, state, app, image)


def fly_toml_text(ctx: Ctx) -> str:
    try:
        with open(ctx.config_path(), encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


def process_groups(text: str) -> list[str]:
    """The process groups of fly.toml: the keys of `[processes]`, else the one default group "app"."""
    m = re.search(r"^\s*\[processes\]\s*$(.*?)(?=^\s*\[|\Z)", text, re.M | re.S)
    names = re.findall(r"^\s*([A-Za-z0-9_-]+)\s*=", m.group(1), re.M) if m else []
    return names or ["app"]


def launch_missing_groups(ctx: Ctx, app: dict[str, Any]) -> None:
    """Like flyctl's deployMachinesApp: a group without machines gets one, plus - unless `--ha=false`
    (the flag defaults to true) - a spare: a second machine when the group has services, a standby
    when it has none; a group with mounts gets only one (internal/command/deploy/machines_deploymachinesapp.go).
    This fake treats every group as having fly.toml's services and mounts."""
    text = fly_toml_text(ctx)
    region = ctx.fly_toml_value("primary_region") or ctx.env.get("FLY_REGION") or "iad"
    has_services = bool(re.search(r"^\s*\[\[?(services|http_service)\]?\]\s*$", text, re.M))
    has_mounts = bool(re.search(r"^\s*\[\[?mounts\]?\]\s*$", text, re.M))
    ha = "ha" not in ctx.flags or ctx.on("ha")
    launched = 0
    for group in process_groups(text):
        if any(m.get("process_group", "app") == group for m in app["machines"]):
            continue
        ctx.say(f"No machines in group {group}, launching a new machine")
        launched += 1
        first = new_machine(app, region, group)
        if not ha or has_mounts:
            continue
        if has_services:
            ctx.say("Creating a second machine for high availability and zero downtime deployments.")
            ctx.say('To disable this, set "min_machines_running = 0" in your fly.toml.')
            new_machine(app, region, group)
        else:
            ctx.say(f"Creating a standby machine for {first['id']}")
            new_machine(app, region, group)["standbys"] = [first["id"]]
    if launched:
        ctx.note("Finished launching new machines")


def roll_out(ctx: Ctx, state: State, app: dict[str, Any], image: dict[str, Any]) -> int:
    name = app["name"]
    version = max((r["version"] for r in app["releases"]), default=0) + 1
    release = {"id": f"rel_{hex_id(12)}", "version": version, "status": "running", "image_ref": image["ref"],
               "created_at": now_iso(), "description": "Deploy image", "reason": "deploy", "stable": False,
               "user_email": state["auth"].get("email", "pilot@example.com"),
               "strategy": ctx.flag("strategy") or ctx.fly_toml_value("strategy", "deploy") or "rolling"}
    app["releases"].append(release)

    ctx.say(f"Running {name} release_command: /app/bin/migrate")
    failing = faults.take(state, "release_command", ctx.argv, {"fail_once", "fail_always"})
    if failing:
        release["status"] = "failed"
        ctx.note("release_command failed")
        raise FlyError(faults.error_text(failing[0], "release_command"))
    applied = apply_migrations(app, image)
    release["migrations_applied"] = [m["version"] for m in applied]
    if image.get("migrate_script") == "seeds":
        app["database"]["seeded"] = app["database"].get("seeded", 0) + 1
    ctx.say("✔ release_command completed successfully")

    if not app["ips"]:  # the first deploy of an app with services gets a shared IPv4 and an IPv6
        add_ip(app, "v6", public_v6(app))
        add_ip(app, "shared_v4", ctx.env.get("FAKE_FLY_SHARED_IPV4", SHARED_V4_DEFAULT))
    launch_missing_groups(ctx, app)

    strategy = release["strategy"]
    wait = not ctx.on("detach") and strategy != "immediate"
    healthy = image["behavior"] == HEALTHY
    ctx.say(f"Updating existing machines in '{name}' with {strategy} strategy")
    failed_machine = None
    if strategy == "bluegreen" and wait and not healthy:
        failed_machine = app["machines"][0]["id"]  # green machines never pass; blue ones keep serving
        ctx.say("Rolling back failed deployment: destroying green machines")
    else:
        for machine in app["machines"]:
            set_machine_image(machine, image, version)
            log_boot(app, machine, image)
            app["current_release"] = version
            app["status"] = "deployed"
            deploy_staged(app)
            if wait and not healthy and strategy != "immediate":
                failed_machine = machine["id"]
                break
            if wait:
                ctx.say(f"✔ Machine {machine['id']} is now in a good state")
    if failed_machine:
        release["status"] = "failed"
        raise FlyError(f"timeout reached waiting for health checks to pass for machine {failed_machine}")
    release["status"] = "complete"
    release["stable"] = True
    ctx.say(f"\nVisit your newly deployed app at https://{app['hostname']}/")
    if ctx.env.get("FLY_EMIT_RELEASE_JSON") == "1":
        ctx.say(json.dumps({"id": release["id"], "version": version, "image_ref": image["ref"]}))
    return 0


def release_json(state: State, release: dict[str, Any], with_image: bool) -> dict[str, Any]:
    out = {
        "ID": release["id"], "Version": release["version"], "Stable": release["stable"],
        "InProgress": release["status"] == "running", "Reason": release["reason"],
        "Description": release["description"], "Status": release["status"],
        "DeploymentStrategy": release.get("strategy", "rolling").upper(),
        "User": {"ID": "user_1", "Email": release["user_email"], "Name": "Test Pilot"},
        "CreatedAt": release["created_at"],
    }
    if with_image:
        out["ImageRef"] = release["image_ref"]
    return out


def releases(ctx: Ctx) -> int:
    state = ctx.read()
    app = get_app(state, ctx.app_name())
    newest = sorted(app["releases"], key=lambda r: r["version"], reverse=True)[:25]
    items = [release_json(state, r, ctx.on("image")) for r in newest]
    if ctx.json:
        ctx.emit_json(items)
        return 0
    header = ["VERSION", "STATUS", "DESCRIPTION", "USER", "DATE"] + (["DOCKER IMAGE"] if ctx.on("image") else [])
    rows = [[f"v{r['Version']}", r["Status"], r["Description"], r["User"]["Email"], r["CreatedAt"]]
            + ([r["ImageRef"]] if ctx.on("image") else []) for r in items]
    ctx.out.write(table(rows, header))
    return 0


def machine_json(m: dict[str, Any], app: dict[str, Any]) -> dict[str, Any]:
    ref = split_ref(m["image"] or "")
    ref["digest"] = m.get("image_digest", "")
    return {
        "id": m["id"], "name": m["name"], "state": m["state"], "region": m["region"],
        "image_ref": ref, "instance_id": m["id"].upper(), "private_ip": "fdaa:0:1:a7b::2",
        "created_at": m["created_at"], "updated_at": m["updated_at"],
        "config": {
            "image": m["image"],
            "metadata": {"fly_release_version": str(m["release_version"] or ""), "fly_platform_version": "v2",
                         "fly_process_group": m.get("process_group", "app")},
            "guest": {"cpu_kind": app["vm"]["cpu_kind"], "cpus": app["vm"]["cpus"],
                      "memory_mb": app["vm"]["memory_mb"]},
            **({"standbys": m["standbys"]} if m.get("standbys") else {}),
        },
        "checks": m["checks"],
        "events": m.get("events", []),
    }


def status(ctx: Ctx) -> int:
    state = ctx.read()
    app = get_app(state, ctx.app_name())
    if ctx.json:
        ctx.emit_json({
            "ID": app["name"], "Name": app["name"], "Status": app["status"],
            "Deployed": app["status"] == "deployed", "Hostname": app["hostname"],
            "Version": app.get("current_release") or 0, "PlatformVersion": "machines",
            "Organization": {"Slug": app["org"]},
            "Machines": [machine_json(m, app) for m in app["machines"]],
        })
        return 0
    ctx.say(f"App\n  Name     = {app['name']}\n  Owner    = {app['org']}\n  Hostname = {app['hostname']}\n")
    rows = [[m["id"], str(m["release_version"] or ""), m["region"], m["state"],
             ",".join(c["status"] for c in m["checks"])] for m in app["machines"]]
    ctx.out.write(table(rows, ["ID", "VERSION", "REGION", "STATE", "CHECKS"]))
    return 0


def image_show(ctx: Ctx) -> int:
    state = ctx.read()
    app = get_app(state, ctx.app_name())
    items = []
    for m in app["machines"]:
        ref = split_ref(m["image"] or "")
        image = state["images"].get(m["image"] or "", {})
        items.append({"MachineID": m["id"], "Registry": ref["registry"], "Repository": ref["repository"],
                      "Tag": ref["tag"], "Version": "", "Digest": m.get("image_digest", ""),
                      "Labels": image.get("labels", {})})
    if ctx.json:
        ctx.emit_json(items)
    else:
        ctx.out.write(table([[i["MachineID"], i["Repository"], i["Tag"], i["Digest"]] for i in items],
                            ["MACHINE ID", "REPOSITORY", "TAG", "DIGEST"]))
    return 0


def scale_memory(ctx: Ctx) -> int:
    try:
        mb = memory_mb(ctx.pos[0])
    except ValueError as e:
        raise FlyError(f"invalid memory size {ctx.pos[0]!r}") from e
    with ctx.tx() as state:
        app = get_app(state, ctx.app_name())
        app["vm"]["memory_mb"] = mb
        for m in app["machines"]:
            m["updated_at"] = now_iso()
    ctx.say(f"Scaled VM memory to {mb} MB" if mb < 1024 else f"Scaled VM memory to {mb / 1024:g} GB")
    return 0


def machine_list(ctx: Ctx) -> int:
    app = get_app(ctx.read(), ctx.app_name())
    items = [machine_json(m, app) for m in app["machines"]]
    if ctx.json:
        ctx.emit_json(items)
    elif ctx.on("quiet"):
        ctx.out.write("".join(f"{m['id']}\n" for m in items))
    else:
        ctx.out.write(table([[m["id"], m["name"], m["state"], m["region"]] for m in items],
                            ["ID", "NAME", "STATE", "REGION"]))
    return 0


def machine_destroy(ctx: Ctx) -> int:
    """`fly machine destroy ID... [--force]`: a started machine needs --force, as in flyctl."""
    if not ctx.pos:
        raise FlyError("a machine ID must be provided (or use --select)")
    with ctx.tx() as state:
        app = get_app(state, ctx.app_name())
        by_id = {m["id"]: m for m in app["machines"]}
        for mid in ctx.pos:
            machine = by_id.get(mid)
            if machine is None:
                raise FlyError(f"could not retrieve machine {mid}: machine not found")
            if machine["state"] not in ("stopped", "suspended", "created") and not ctx.on("force"):
                raise FlyError(f"machine {mid} is in a {machine['state']} state and cannot be destroyed "
                               "since it is not stopped, either stop first or use --force flag")
            app["machines"] = [m for m in app["machines"] if m["id"] != mid]
            ctx.say(f"machine {mid} was found and is currently in {machine['state']} state, attempting to destroy...")
            ctx.say(f"{mid} has been destroyed")
    return 0


def scale_count(ctx: Ctx) -> int:
    """`fly scale count N [--yes]` for the default group: drops the newest machines first."""
    try:
        wanted = int(ctx.pos[0])
    except ValueError as e:
        raise FlyError(f"invalid count {ctx.pos[0]!r}") from e
    with ctx.tx() as state:
        app = get_app(state, ctx.app_name())
        group = ctx.flag("process-group") or "app"
        mine = [m for m in app["machines"] if m.get("process_group", "app") == group]
        if wanted > len(mine):
            raise FlyError("the fake flyctl only scales down")
        if len(mine) != wanted and not ctx.on("yes"):
            raise FlyError("yes flag must be specified when not running interactively")
        drop = {m["id"] for m in mine[wanted:]}  # app["machines"] is in creation order
        app["machines"] = [m for m in app["machines"] if m["id"] not in drop]
        for mid in sorted(drop):
            ctx.say(f"Destroying machine {mid}")
    return 0


def logs(ctx: Ctx) -> int:
    """`fly logs --no-tail`: the buffered lines the fake wrote for the app (`app["logs"]`)."""
    app = get_app(ctx.read(), ctx.app_name())
    if not ctx.on("no-tail"):
        raise FlyError("the fake flyctl only emulates `fly logs --no-tail`")
    machine = ctx.flag("machine")
    for line in app.get("logs", []):
        if machine and line.get("instance") != machine:
            continue
        if ctx.json:
            ctx.say(json.dumps(line))
        else:
            ctx.say(f"{line['timestamp']} app[{line['instance']}] {line['region']} [{line['level']}] {line['message']}")
    return 0
