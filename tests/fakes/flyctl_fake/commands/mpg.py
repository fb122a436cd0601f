"""fly mpg create / list / status / attach / proxy / backup {list,create} / restore (Managed Postgres).

Messages, flags and JSON follow flyctl's internal/command/mpg (v1 JSON shapes: ManagedCluster,
{"data", "credentials"} for status). Each cluster is backed by a database on a real PostgreSQL
(`state.mpg_backend`, set by the test): `proxy` forwards to it, `backup create` really pg_dumps it,
`restore` really pg_restores a backup into a new database that becomes the new cluster.
Point-in-time restore is approximated by the newest backup taken at or before the time (the fake has
no WAL archive); a time before every backup is outside the recovery window.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from datetime import datetime
from typing import Any

from ..context import Ctx, get_app
from ..errors import FlyError
from .common import digest_of, hex_id, now_iso, table

PLANS = {"basic": ("Basic", "Shared x 2", "1 GB", 38), "starter": ("Starter", "Shared x 2", "2 GB", 72),
         "launch": ("Launch", "Performance x 2", "8 GB", 282), "scale": ("Scale", "Performance x 4", "32 GB", 962),
         "Performance": ("Performance", "Performance x 8", "64 GB", 1922)}  # flyctl's own spelling


def _clusters(state: dict[str, Any]) -> dict[str, Any]:
    return state.setdefault("mpg", {}).setdefault("clusters", {})  # type: ignore[no-any-return]


def _find(state: dict[str, Any], ident: str | None) -> dict[str, Any]:
    if not ident:
        raise FlyError("cluster ID argument is required when not running interactively")
    for c in _clusters(state).values():
        if ident in (c["id"], c["name"]) and not c.get("deleted"):
            return c  # type: ignore[no-any-return]
    raise FlyError(f"failed retrieving cluster {ident}: cluster not found")


def _cluster_json(c: dict[str, Any]) -> dict[str, Any]:
    return {"id": c["id"], "mpgd_cluster_id": c["id"], "version": 2, "name": c["name"], "region": c["region"],
            "status": c["status"], "plan": c["plan"], "disk": c["disk"], "replicas": 0,
            "organization": {"id": f"org_{c['org']}", "slug": c["org"], "name": c["org"]},
            "ip_assignments": {"direct": "fdaa:0:1:a7b::5"},
            "attached_apps": [{"name": a, "id": i + 1} for i, a in enumerate(c["attached_apps"])]}


def _uri(c: dict[str, Any], kind: str = "pgbouncer") -> str:
    return f"postgresql://{c['user']}:{c['password']}@{kind}.{c['id']}.flympg.net/{c['dbname']}"


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found and "pg_wrapper" not in os.path.realpath(found):
        return found
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(re.findall(r"\d+", d)[-1]))
    for d in reversed(dirs):
        if os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    raise FlyError(f"fake flyctl: no {name} to emulate Managed Postgres backups with")


def _pg_env(c: dict[str, Any]) -> dict[str, str]:
    host, _, port = c["proxy_target"].rpartition(":")
    return {**os.environ, "PGHOST": host, "PGPORT": port, "PGUSER": c["user"], "PGPASSWORD": c["password"],
            "PGDATABASE": c["dbname"], "PGCONNECT_TIMEOUT": "10"}


def mpg_create(ctx: Ctx) -> int:
    name = ctx.flag("name")
    if not name:
        raise FlyError("name must be specified when not running interactively")
    region = ctx.flag("region")
    if not region:
        raise FlyError("region must be specified when not running interactively")
    major = int(ctx.flag("pg-major-version") or 16)
    if major not in (16, 17):
        raise FlyError(f"invalid Postgres major version: {major}. Supported versions are 16 and 17")
    plan = (ctx.flag("plan") or "basic").strip().lower()
    if plan not in PLANS:
        raise FlyError(f'invalid plan: "{plan}"')
    with ctx.tx() as state:
        backend = state.get("mpg_backend")
        if not backend:
            raise FlyError("fake flyctl: no mpg_backend (use fake_fly.set_mpg_backend)")
        org = ctx.flag("org") or state["default_org"]
        if any(c["name"] == name and not c.get("deleted") for c in _clusters(state).values()):
            raise FlyError(f"failed creating managed postgres cluster: a cluster named {name} already exists")
        cid = hex_id(16)
        cluster = {"id": cid, "name": name, "org": org, "region": region, "plan": plan, "status": "ready",
                   "disk": int(ctx.flag("volume-size") or 10), "pg_major": major, "attached_apps": [],
                   "backups": [], "created_at": now_iso(), **backend}
        _clusters(state)[cid] = cluster
    title, cpu, memory, price = PLANS[plan]
    ctx.say(f"Selected Plan: {title}\n  CPU: {cpu}\n  Memory: {memory}\n  Price: ${price} per month\n")
    ctx.say(f"Waiting for cluster {name} ({cid}) to be ready...")
    ctx.say(f"You can view the cluster in the UI at: https://fly.io/dashboard/{org}/managed_postgres/{cid}")
    ctx.say("You can cancel this wait with Ctrl+C - the cluster will continue provisioning in the background.")
    ctx.say(f"Once ready, you can connect to the database with: fly mpg connect {cid}\n")
    ctx.say("\nManaged Postgres cluster created successfully!")
    ctx.say(f"  ID: {cid}\n  Name: {name}\n  Organization: {org}\n  Region: {region}\n  Plan: {plan}")
    ctx.say(f"  Disk: {cluster['disk']}GB\n  PostGIS: false\n  Connection string: {_uri(cluster)}")
    return 0


def mpg_list(ctx: Ctx) -> int:
    state = ctx.read()
    org = ctx.flag("org")
    rows = [c for c in _clusters(state).values()
            if not c.get("deleted") and (org is None or c["org"] == org)]
    if ctx.json:
        ctx.emit_json([_cluster_json(c) for c in rows])
        return 0
    if not rows:
        ctx.say(f"No managed postgres clusters found in organization {org or state['default_org']}")
        return 0
    ctx.out.write(table([[c["id"], c["name"], c["org"], c["region"], c["status"], c["plan"],
                          ", ".join(c["attached_apps"]) or "<none>"] for c in rows],
                        ["ID", "Name", "Org", "Region", "Status", "Plan", "Attached Apps"]))
    return 0


def mpg_status(ctx: Ctx) -> int:
    with ctx.tx() as state:
        c = _find(state, ctx.pos[0] if ctx.pos else None)
        if c["status"] != "ready" and c.get("polls_until_ready", 0) <= 0:
            c["status"] = "ready"
        c["polls_until_ready"] = c.get("polls_until_ready", 0) - 1
        shown = dict(c)
    if ctx.json:
        ctx.emit_json({"data": _cluster_json(shown),
                       "credentials": {"status": "ok", "user": shown["user"], "password": shown["password"],
                                       "dbname": shown["dbname"], "pgbouncer_uri": _uri(shown)}})
        return 0
    ctx.say("Cluster Status")
    for k, v in (("ID", shown["id"]), ("Name", shown["name"]), ("Organization", shown["org"]),
                 ("Region", shown["region"]), ("Status", shown["status"]), ("Allocated Disk (GB)", shown["disk"])):
        ctx.say(f"  {k} = {v}")
    return 0


def mpg_attach(ctx: Ctx) -> int:
    app_name = ctx.app_name()
    variable = ctx.flag("variable-name") or "DATABASE_URL"
    with ctx.tx() as state:
        c = _find(state, ctx.pos[0] if ctx.pos else None)
        app = get_app(state, app_name)
        if variable in app["secrets"]:
            raise FlyError(f"app {app_name} already has {variable} set. Use 'fly secrets unset {variable}' "
                           "to remove it first")
        uri = _uri(c)
        app["secrets"][variable] = {"digest": digest_of(uri.encode()), "status": "Deployed"}
        app.setdefault("machine_env", {})[variable] = uri  # what the machines see after their next restart
        if app_name not in c["attached_apps"]:
            c["attached_apps"].append(app_name)
        cid = c["id"]
    ctx.say(f"\nPostgres cluster {cid} is being attached to {app_name}")
    ctx.say(f"The following secret was added to {app_name}:\n  {variable}={uri}")
    return 0


def mpg_proxy(ctx: Ctx) -> int:
    from .proxy import forward

    c = _find(ctx.read(), ctx.pos[0] if ctx.pos else None)
    if c["status"] != "ready":
        raise FlyError("cluster is still initializing, wait a bit more")
    return forward(ctx, c["proxy_target"], ctx.flag("local-port") or "16380", "5432", None)


def _backup_dir(ctx: Ctx) -> str:
    d = os.path.join(ctx.home.path, "mpg-backups")
    os.makedirs(d, exist_ok=True)
    return d


def backup_create(ctx: Ctx) -> int:
    kind = ctx.flag("type") or "full"
    if kind not in ("full", "incr"):
        raise FlyError("--type must be either 'full' or 'incr'")
    c = _find(ctx.read(), ctx.pos[0] if ctx.pos else None)
    bid = hex_id(12)
    ctx.say(f"Creating {kind} backup for cluster {c['id']}...")
    start = now_iso()
    path = os.path.join(_backup_dir(ctx), f"{bid}.pgc")
    r = subprocess.run([_pg_tool("pg_dump"), "-Fc", "--no-owner", "--no-acl", "-f", path],
                       env=_pg_env(c), capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise FlyError(f"failed to create backup: {r.stderr.strip().splitlines()[-1:] or ['pg_dump failed']}")
    backup = {"id": bid, "status": "completed", "type": kind, "start": start, "stop": now_iso(), "path": path}
    with ctx.tx() as state:
        _find(state, c["id"])["backups"].append(backup)
    ctx.say("Backup queued successfully!")
    ctx.say(f"  ID: {bid}")
    return 0


def backup_list(ctx: Ctx) -> int:
    c = _find(ctx.read(), ctx.pos[0] if ctx.pos else None)
    rows = [{k: b[k] for k in ("id", "status", "type", "start", "stop")} for b in c["backups"]]
    if not rows:
        ctx.say(f"No backups found for cluster {c['id']}")
        return 0
    if ctx.json:
        ctx.emit_json(rows)
        return 0
    ctx.out.write(table([[b["id"], b["start"], b["status"], b["type"]] for b in rows],
                        ["ID", "Start", "Status", "Type"]))
    return 0


def _parse_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise FlyError("--pitr-time must be an RFC3339 timestamp with an explicit offset (e.g. "
                       f"2026-06-01T12:00:00Z): parsing time {text!r}") from e
    if when.tzinfo is None:
        raise FlyError("--pitr-time must be an RFC3339 timestamp with an explicit offset (e.g. "
                       f"2026-06-01T12:00:00Z): parsing time {text!r}")
    return when


def mpg_restore(ctx: Ctx) -> int:
    backup_id, pitr = ctx.flag("backup-id"), ctx.flag("pitr-time")
    if not backup_id and not pitr:
        raise FlyError("one of --backup-id or --pitr-time is required")
    if backup_id and pitr:
        raise FlyError("--backup-id and --pitr-time are mutually exclusive")
    source = _find(ctx.read(), ctx.pos[0] if ctx.pos else None)
    if pitr:
        when = _parse_time(pitr)
        before = [b for b in source["backups"] if _parse_time(b["stop"]) <= when]
        if not before:
            raise FlyError("failed to restore cluster: the requested time is outside the recovery window")
        chosen = before[-1]
        ctx.say(f"Restoring cluster {source['id']} to point in time {pitr}...")
    else:
        chosen = next((b for b in source["backups"] if b["id"] == backup_id), None)
        if chosen is None:
            raise FlyError(f"failed to restore cluster: backup {backup_id} not found")
        ctx.say(f"Restoring cluster {source['id']} from backup {backup_id}...")
    cid = hex_id(16)
    dbname = f"{source['dbname']}_r{cid[:6]}"
    env = _pg_env(source)
    steps = [[_pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{dbname}"'],
             [_pg_tool("pg_restore"), "--no-owner", "--no-acl", "--exit-on-error", "-d", dbname, chosen["path"]]]
    for argv in steps:
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise FlyError(f"failed to restore cluster: {r.stderr.strip()}")
    name = ctx.flag("name") or f"{source['name']}-restored-{cid[:4]}"
    with ctx.tx() as state:
        cluster = {**{k: source[k] for k in ("org", "region", "plan", "disk", "pg_major", "proxy_target", "user",
                                               "password")},
                   "id": cid, "name": name, "dbname": dbname, "status": "provisioning", "polls_until_ready": 1,
                   "attached_apps": [], "backups": [], "created_at": now_iso(), "restored_from": chosen["id"]}
        _clusters(state)[cid] = cluster
    ctx.say("Restore initiated successfully!")
    ctx.say(f"  Cluster ID: {cid}")
    ctx.say(f"  Cluster Name: {name}")
    return 0
