"""deploy.full's database step when BEZGELOR_PG_FLAVOR=mpg: the Managed Postgres cluster exists and is
attached (DATABASE_URL pooled, DIRECT_DATABASE_URL for migrations). The steps are db.create's plan
(backup/fly_restore.py), so `inv db.create` and `inv deploy.full` create a cluster the same way."""

from __future__ import annotations

from typing import Any

from bezgelor_tasks.backup import fly_restore
from bezgelor_tasks.command import Command
from bezgelor_tasks.deploy.context import DeployContext
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.pg_flavor import DIRECT_URL_VARIABLE
from bezgelor_tasks.pipeline import Status, Step, done, todo

NEEDED = ("DATABASE_URL", DIRECT_URL_VARIABLE)


def mpg_database(ctx: DeployContext) -> Step:
    s, ex = ctx.settings, ctx.fly.executor

    def existing() -> str | None:
        try:
            return fly_restore.cluster_id(s, ex)
        except UserError:
            return None

    def check() -> Status:
        cid = existing()
        if cid is None:
            return todo(f"no Managed Postgres cluster {s.db_app}")
        ctx.facts["mpg_cluster"] = cid
        missing = [n for n in NEEDED if n not in {x.name for x in ctx.fly.secrets(s.app)}]
        return todo(f"{s.db_app} is not attached ({', '.join(missing)} missing)") if missing else \
            done(f"{s.db_app} ({cid}) exists and is attached")

    def steps() -> list[fly_restore.Step]:
        plan = fly_restore.mpg_create_plan(s, ex).steps
        plan = [st for st in plan if not st.name.startswith("redeploy")]  # the deploy itself follows
        return plan[1:] if ctx.facts.get("mpg_cluster") else plan

    def plan_cmds() -> list[Command]:
        return [cmd for st in steps() for cmd in st.shows]

    def run() -> dict[str, Any]:
        cid = existing()
        ctx.facts["mpg_cluster"] = cid
        facts: dict[str, Any] = {"new": cid}
        have = {x.name for x in ctx.fly.secrets(s.app)}
        for st in steps():
            if cid is not None and "attach" in st.name and "DATABASE_URL" in have:
                continue
            if cid is not None and DIRECT_URL_VARIABLE in st.name and DIRECT_URL_VARIABLE in have:
                continue
            st.run(facts)
        return {"cluster": facts["new"], "created": cid is None,
                "summary": f"{'created' if cid is None else 'found'} {s.db_app} ({facts['new']}), attached"}

    return Step("database", f"Managed Postgres {s.db_app} exists and is attached to {s.app}", check, plan_cmds,
                run, after=("app",),
                fix=f"check `fly mpg list --org {s.org}`; BEZGELOR_FLY_REGION must offer Managed Postgres")
