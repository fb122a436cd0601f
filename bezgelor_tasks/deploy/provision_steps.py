"""The steps of `inv deploy.full` that give the app what it needs on Fly before its image runs: the database
(created once and attached; Managed Postgres in mpg_database.py), a dedicated IPv4 for the raw-TCP game ports,
and the secrets (SECRET_KEY_BASE and CLOAK_KEY generated only when absent, WORLD_PUBLIC_ADDRESS the IPv4).
Each asks the world (flyctl, read-only) whether it is done; steps.py orders them with the others.
"""

from __future__ import annotations

from typing import Any

from bezgelor_tasks.command import Command
from bezgelor_tasks.deploy import secretgen, state
from bezgelor_tasks.deploy.context import IPV4_LATER, DeployContext
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands, postgres_commands, secret_commands
from bezgelor_tasks.pipeline import Status, Step, done, todo

GENERATED_SECRETS = ("SECRET_KEY_BASE", "CLOAK_KEY")
ADDRESS_SECRET = "WORLD_PUBLIC_ADDRESS"


# --- 3. database --------------------------------------------------------------------------------------

def database(ctx: DeployContext) -> Step:
    s = ctx.settings
    if s.pg_flavor == "mpg":
        from bezgelor_tasks.deploy.mpg_database import mpg_database

        return mpg_database(ctx)
    path = state.password_path(s)

    def check() -> Status:
        pg = ctx.fly.find_app(s.db_app)
        if pg is None:
            return todo(f"no Postgres app {s.db_app}")
        ctx.facts["db_exists"] = True
        names = {x.name for x in ctx.fly.secrets(s.app)}
        if "DATABASE_URL" not in names:
            return todo(f"{s.db_app} exists but is not attached (no DATABASE_URL)")
        return done(f"{s.db_app} exists and is attached")

    def plan() -> list[Command]:
        cmds = [] if ctx.facts.get("db_exists") else [postgres_commands.postgres_create(s)]
        return [*cmds, postgres_commands.postgres_attach(s)]

    def run() -> dict[str, Any]:
        changed: dict[str, Any] = {}
        if ctx.fly.find_app(s.db_app) is None:
            output = ctx.fly.postgres_create()
            creds = state.extract_credentials(output)
            ctx.db_password_path = state.save_credentials(s, creds, ctx.executor)
            ctx.ui.info(f"{s.db_app}: its password is kept in {ctx.db_password_path} (mode 0600, gitignored); "
                        "Fly shows it only once.")
            changed.update(created_postgres=s.db_app, password_file=str(ctx.db_password_path))
        elif not path.exists():
            ctx.ui.info(f"{s.db_app} exists but {path} does not: backups fetch the password from Fly "
                        f"(the app's DATABASE_URL) and cache it there.")
        if "DATABASE_URL" not in {x.name for x in ctx.fly.secrets(s.app)}:
            attached = ctx.fly.postgres_attach()
            changed["attached"] = attached
        parts = []
        if changed.get("created_postgres"):
            parts.append(f"created {s.db_app} (password in {path})")
        if changed.get("attached"):
            parts.append(f"attached it to {s.app} (DATABASE_URL staged)")
        changed["summary"] = ", ".join(parts) or "nothing to do"
        return changed

    return Step("database", f"Postgres app {s.db_app} exists and is attached to {s.app}", check, plan, run,
                after=("app",),
                irreversible=f"`fly postgres create` prints the database password once; it is kept in {path}",
                fix=f"check `fly apps list` for {s.db_app}; if the name is taken choose another BEZGELOR_FLY_DB_APP")


# --- 4. ipv4 ------------------------------------------------------------------------------------------

def ipv4(ctx: DeployContext) -> Step:
    s = ctx.settings

    def find() -> str:
        v4 = [ip for ip in ctx.fly.ips(s.app) if ip.is_dedicated_v4 and ip.address]
        return v4[0].address if v4 else ""

    def check() -> Status:
        ctx.ipv4 = find()
        return done(f"dedicated IPv4 {ctx.ipv4}") if ctx.ipv4 else todo("no dedicated IPv4 (game ports need one)")

    def run() -> dict[str, Any]:
        ctx.fly.allocate_v4(s.app)
        ctx.ipv4 = find()
        if not ctx.ipv4:
            raise UserError(f"`fly ips allocate-v4` succeeded but `fly ips list -a {s.app}` shows no dedicated IPv4.",
                            fix=f"run `fly ips list -a {s.app}` to see what Fly allocated, then deploy again.")
        return {"ipv4": ctx.ipv4, "summary": f"allocated {ctx.ipv4}"}

    return Step("ipv4", "a dedicated IPv4 for the raw-TCP game ports (becomes WORLD_PUBLIC_ADDRESS)",
                check, lambda: [commands.ips_allocate_v4(s)], run, after=("app",),
                fix=f"check `fly ips list -a {s.app}` and your organization's IPv4 allowance")


# --- 5. secrets -------------------------------------------------------------------------------------

def _address_confirmed(ctx: DeployContext, digest: str) -> bool:
    """Fly shows digests, never values: trust WORLD_PUBLIC_ADDRESS when we set this digest to this address."""
    for e in reversed(list(ctx.journal.entries())):
        if e.get("event") == "secret-digest" and e.get("app") == ctx.settings.app and e.get("name") == ADDRESS_SECRET:
            return bool(digest) and e.get("digest") == digest and e.get("address") == ctx.ipv4
    return False


def secrets(ctx: DeployContext) -> Step:
    s = ctx.settings

    def wanted() -> tuple[list[str], bool]:
        present = {x.name: x for x in ctx.fly.secrets(s.app)}
        missing = [n for n in GENERATED_SECRETS if n not in present]
        addr = present.get(ADDRESS_SECRET)
        address_ok = addr is not None and _address_confirmed(ctx, addr.digest)
        return missing, not address_ok

    def check() -> Status:
        missing, address = wanted()
        if not missing and not address:
            return done(f"SECRET_KEY_BASE and CLOAK_KEY present, WORLD_PUBLIC_ADDRESS = {ctx.ipv4}")
        what = missing + ([f"WORLD_PUBLIC_ADDRESS={ctx.ipv4 or IPV4_LATER}"] if address else [])
        return todo("to set: " + ", ".join(what))

    def plan() -> list[Command]:
        names = [*GENERATED_SECRETS, ADDRESS_SECRET]
        return [secret_commands.secrets_import(s, {n: "***" for n in names}, stage=True)]

    def run() -> dict[str, Any]:
        missing, address = wanted()
        values = {n: secretgen.GENERATED[n]() for n in missing}
        if address:
            values[ADDRESS_SECRET] = ctx.ipv4
        if not values:
            return {"summary": "nothing to do"}
        ctx.fly.import_secrets(s.app, values, stage=True)
        if ADDRESS_SECRET in values:
            digest = next((x.digest for x in ctx.fly.secrets(s.app) if x.name == ADDRESS_SECRET), "")
            # The address is public (it is the game servers' IP); the digest lets a re-run recognise it.
            ctx.journal.record("secret-digest", app=s.app, name=ADDRESS_SECRET, address=ctx.ipv4, digest=digest)
        return {"staged": sorted(values), "generated": sorted(missing),
                "summary": f"staged {', '.join(sorted(values))} in one `secrets import`"}

    return Step("secrets", "SECRET_KEY_BASE and CLOAK_KEY (generated only when absent), WORLD_PUBLIC_ADDRESS",
                check, plan, run, after=("database", "ipv4"),
                fix=f"check `fly secrets list -a {s.app}`; existing SECRET_KEY_BASE/CLOAK_KEY are never replaced")
