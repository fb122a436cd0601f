"""fly postgres create / attach / backup {enable,create,list} (unmanaged Fly Postgres)."""

from __future__ import annotations

import re
import time
from typing import Any

from ..context import Ctx, get_app
from ..errors import NON_INTERACTIVE, FlyError
from .common import digest_of, hex_id, new_app, new_machine, now_iso

UNMANAGED_NOTICE = (
    "Unmanaged Fly Postgres is not supported by Fly.io Support and you are responsible for its operations, "
    "management and disaster recovery. For a managed, supported database, use Managed Postgres: fly mpg create"
)
MEMORY_BY_SIZE = {"shared-cpu-1x": 256, "shared-cpu-2x": 512, "shared-cpu-4x": 1024, "shared-cpu-8x": 2048,
                  "performance-1x": 2048, "performance-2x": 4096}
BARMAN_SECRET = "S3_ARCHIVE_CONFIG"
DEFAULT_FLEX_MAJOR = 17  # what Fly's API picks when --image-ref does not pin one (late 2026)

# flag -> what flyctl says when it would have to prompt for it
REQUIRED = {
    "name": "name argument or flag must be specified when not running interactively",
    "org": "org slug must be specified when not running interactively",
    "region": "region code must be specified when not running interactively",
    "initial-cluster-size": NON_INTERACTIVE,
    "vm-size": NON_INTERACTIVE,
    "volume-size": NON_INTERACTIVE,
}


def _notice(ctx: Ctx) -> None:
    ctx.note(UNMANAGED_NOTICE)


def memory_mb(text: str) -> int:
    t = text.strip().lower()
    for suffix, factor in (("gb", 1024), ("g", 1024), ("mb", 1), ("m", 1)):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * factor)
    return int(t)


def pg_app(state: dict[str, Any], name: str) -> dict[str, Any]:
    app = get_app(state, name)
    if app["kind"] != "postgres":
        raise FlyError(f"app {name} is not a postgres app")
    return app


def pg_create(ctx: Ctx) -> int:
    _notice(ctx)
    for name, message in REQUIRED.items():
        if not ctx.flag(name) and not (name == "org" and ctx.env.get("FLY_ORG")) \
                and not (name == "region" and ctx.env.get("FLY_REGION")):
            raise FlyError(message)
    name, org = ctx.flag("name") or "", ctx.flag("org") or ctx.env["FLY_ORG"]
    region = ctx.flag("region") or ctx.env["FLY_REGION"]
    size = int(ctx.flag("initial-cluster-size") or 1)
    vm_size = ctx.flag("vm-size") or "shared-cpu-1x"
    mem = memory_mb(ctx.flag("vm-memory")) if ctx.flag("vm-memory") else MEMORY_BY_SIZE.get(vm_size, 256)
    password = ctx.flag("password") or hex_id(24)
    # Fly's API picks the default major; --image-ref pins it (the tag is the major)
    image_ref = ctx.flag("image-ref") or f"flyio/postgres-flex:{DEFAULT_FLEX_MAJOR}"
    backups = ctx.on("enable-backups")
    if backups and mem < 512:
        raise FlyError(f"backups require at least 512 MB of memory on the Postgres machines, got {mem} MB")
    with ctx.tx() as state:
        if name in state["apps"] or name in state["taken_names"]:
            raise FlyError("Validation failed: Name has already been taken")
        app = new_app(state, name, org, kind="postgres")
        app["status"] = "deployed"
        app["vm"].update({"size": vm_size, "memory_mb": mem})
        app["pg"] = {"region": region, "cluster_size": size, "volume_size_gb": int(ctx.flag("volume-size") or 10),
                     "backups_enabled": backups, "backup_fails": False, "backups": []}
        if backups:
            app["secrets"][BARMAN_SECRET] = {"digest": digest_of(hex_id(32).encode()), "status": "Deployed"}
        app["secrets"]["OPERATOR_PASSWORD"] = {"digest": digest_of(password.encode()), "status": "Deployed"}
        for _ in range(size):
            machine = new_machine(app, region)
            machine["image"] = f"docker-hub-mirror.fly.io/{image_ref}"
            machine["checks"] = [{"name": "pg", "status": "passing", "output": "[✓] connections: 10 used"}]
        ids = [m["id"] for m in app["machines"]]
    ctx.say(f"Creating postgres cluster {name} in organization {org}")
    ctx.say("Creating app...")
    ctx.say(f"Setting secrets on app {name}...")
    ctx.say(f"Provisioning {size} of {size} machines with image {image_ref}")
    for mid in ids:
        ctx.say(f"Machine {mid} is created")
    ctx.say("==> Monitoring health checks")
    ctx.say(f"\nPostgres cluster {name} created")
    ctx.say("  Username:    postgres")
    ctx.say(f"  Password:    {password}")
    ctx.say(f"  Hostname:    {name}.internal")
    ctx.say("  Flycast:     fdaa:0:1::3")
    ctx.say("  Proxy port:  5432")
    ctx.say("  Postgres port:  5433")
    ctx.say(f"  Connection string: postgres://postgres:{password}@{name}.flycast:5432")
    ctx.say("\nSave your credentials in a secure place -- you won't be able to see them again!")
    return 0


def pg_attach(ctx: Ctx) -> int:
    _notice(ctx)
    pg_name, app_name = ctx.pos[0], ctx.app_name()
    variable = ctx.flag("variable-name") or "DATABASE_URL"
    db = ctx.flag("database-name") or app_name.replace("-", "_")
    user = ctx.flag("database-user") or app_name.replace("-", "_")
    with ctx.tx() as state:
        pg_app(state, pg_name)
        app = get_app(state, app_name)
        if variable in app["secrets"]:
            raise FlyError(f'consumer app "{app_name}" already contains a secret named {variable}')
        password = hex_id(24)
        url = f"postgres://{user}:{password}@{pg_name}.flycast:5432/{db}?sslmode=disable"
        app["secrets"][variable] = {"digest": digest_of(url.encode()), "status": "Staged"}
        app.setdefault("attached", []).append(pg_name)
    ctx.say("Checking for existing attachments\nRegistering attachment\nCreating database\nCreating user\n")
    ctx.say(f"Postgres cluster {pg_name} is now attached to {app_name}")
    ctx.say(f"The following secret was added to {app_name}:\n  {variable}={url}")
    return 0


def _not_enabled(name: str) -> FlyError:
    return FlyError(f"Backups are not enabled. Run `fly pg backup enable -a {name}` to enable them.")


def backup_enable(ctx: Ctx) -> int:
    _notice(ctx)
    name = ctx.app_name()
    with ctx.tx() as state:
        app = pg_app(state, name)
        if app["pg"]["backups_enabled"]:
            raise FlyError("Backups are already enabled.")
        if int(app["vm"]["memory_mb"]) < 512:
            raise FlyError(f"backups require at least 512 MB of memory on the Postgres machines, "
                           f"{name} has {app['vm']['memory_mb']} MB",
                           suggestion=f"Run `fly scale memory 1024 -a {name}` first")
        app["pg"]["backups_enabled"] = True
        app["secrets"][BARMAN_SECRET] = {"digest": digest_of(hex_id(32).encode()), "status": "Deployed"}
    return 0


def backup_create(ctx: Ctx) -> int:
    _notice(ctx)
    name = ctx.app_name()
    with ctx.tx() as state:
        app = pg_app(state, name)
        pg = app["pg"]
        if not pg["backups_enabled"]:
            raise _not_enabled(name)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        backup = {"id": f"{stamp}-{len(pg['backups']) + 1}", "name": ctx.flag("name") or "",
                  "start": now_iso(), "stop": now_iso(), "status": "DONE"}
        if pg.get("backup_fails"):  # the work fails on the machine; flyctl still exits 0
            backup["status"] = "FAILED"
            pg["backups"].append(backup)
            ctx.say("Exit code: 1")
            ctx.note("ERROR: Backup failed: barman-cloud-backup exited with code 1")
            return 0
        pg["backups"].append(backup)
    ctx.say(f"Backup completed successfully: {backup['id']}")
    return 0


def backup_list(ctx: Ctx) -> int:
    _notice(ctx)
    name = ctx.app_name()
    app = pg_app(ctx.read(), name)
    if not app["pg"]["backups_enabled"]:
        raise _not_enabled(name)
    rows = [[b["id"], b["name"] or "-", b["start"], b["stop"], b["status"]] for b in app["pg"]["backups"]]
    if not rows:
        ctx.say("No backups found")
        return 0
    from .common import table

    ctx.out.write(table(rows, ["ID", "NAME", "START", "STOP", "STATUS"]))
    return 0


def backup_restore(ctx: Ctx) -> int:
    """A new Flex app from the source's barman backups (flyctl runBackupRestore): it launches like
    `postgres create` (same output, its password included) with backups off. The fake points the new app
    at the source's server (no WAL replay here); it checks the target time against the backups taken."""
    _notice(ctx)
    source_name, new_name = ctx.app_name(), ctx.pos[0]
    when = ctx.flag("restore-target-time")
    with ctx.tx() as state:
        source = pg_app(state, source_name)
        if not any(m["state"] == "started" for m in source["machines"]):
            raise FlyError("No active machines")
        if not source["pg"]["backups_enabled"]:
            raise FlyError(f"backups are not enabled. Run `fly pg backup enable -a {source_name}` to enable them")
        done = [b for b in source["pg"]["backups"] if b["status"] == "DONE"]
        if when is not None:
            if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", when):
                raise FlyError(f"invalid restore target time {when!r}: use RFC 3339, e.g. 2026-06-01T12:00:00Z")
            if not done or min(b["stop"] for b in done) > when.replace("+00:00", "Z"):
                raise FlyError("barman-cloud-restore: no backup found before the restore target time")
        if new_name in state["apps"] or new_name in state["taken_names"]:
            raise FlyError("Validation failed: Name has already been taken")
        password = hex_id(24)
        app = new_app(state, new_name, source["org"], kind="postgres")
        app.update(status="deployed", proxy_target=source.get("proxy_target"), restored_from=source_name,
                   restore_target_time=when)
        app["vm"].update(source["vm"])
        app["pg"] = {**source["pg"], "backups_enabled": False, "backups": []}
        app["secrets"]["OPERATOR_PASSWORD"] = {"digest": digest_of(password.encode()), "status": "Deployed"}
        image = ctx.flag("image-ref")
        machine = new_machine(app, source["pg"]["region"])
        machine["image"] = f"docker-hub-mirror.fly.io/{image}" if image else source["machines"][0]["image"]
        machine["checks"] = [{"name": "pg", "status": "passing", "output": "[✓] connections: 10 used"}]
        mid = machine["id"]
    ctx.say(f"Creating postgres cluster {new_name} in organization {app['org']}")
    ctx.say(f"Provisioning 1 of 1 machines with image {machine['image'].split('/', 1)[-1]}")
    ctx.say(f"Machine {mid} is created")
    ctx.say(f"\nPostgres cluster {new_name} created")
    ctx.say(f"  Username:    postgres\n  Password:    {password}\n  Hostname:    {new_name}.internal")
    ctx.say(f"  Connection string: postgres://postgres:{password}@{new_name}.flycast:5432")
    return 0
