"""Restores that Fly performs, always into a NEW database cluster, then attach and redeploy.

Managed Postgres: `fly mpg restore <old> --backup-id ID | --pitr-time T --name <new>`, wait until the new
cluster is ready, swap the app's DATABASE_URL (pooled) and DIRECT_DATABASE_URL (migrations) to it,
`fly secrets deploy`. Flex: `fly postgres backup restore <new app> -a <old> --restore-target-time T`
(barman, into a new app), then `fly postgres attach` to the new app and the same redeploy.
Managed Postgres creation (`db.create`) is the same kind of plan: create, attach, direct URL.

Every step is planned first (`--dry-run` prints the plan and changes nothing), journalled as it runs,
and the old cluster is never touched: the way back is printed at the end and on failure.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bezgelor_tasks.backup import credentials
from bezgelor_tasks.backup.mpg_cluster import cluster_id, mpg_credentials
from bezgelor_tasks.command import Command
from bezgelor_tasks.deploy import state
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands as fly_commands
from bezgelor_tasks.fly import postgres_commands, secret_commands
from bezgelor_tasks.journal import Journal
from bezgelor_tasks.pg_flavor import DIRECT_URL_VARIABLE
from bezgelor_tasks.redact import register
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI

NEW = "<new cluster>"
_CLUSTER_ID = re.compile(r"^\s*(?:Cluster )?ID:\s*(\S+)\s*$", re.M)


@dataclass
class Step:
    name: str
    shows: list[Command]
    run: Callable[[dict[str, Any]], None]


@dataclass
class Plan:
    title: str
    steps: list[Step]
    way_back: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> list[dict[str, Any]]:
        return [{"step": s.name, "commands": [c.as_json() for c in s.shows]} for s in self.steps]


def direct_uri(pooled: str) -> str:
    """MPG's direct URL is the pooled one with `direct.` for `pgbouncer.` (Fly's Connect tab shows both)."""
    return re.sub(r"@pgbouncer\.", "@direct.", pooled, count=1)


def wait_ready(settings: Settings, executor: Executor, cid: str, *, timeout: float = 900,
               interval: float = 2.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        creds = mpg_credentials(settings, executor, cid)
        if creds["status"] == "ready":
            return creds
        if creds["status"] == "error":
            raise UserError(f"Managed Postgres cluster {cid} failed to come up.",
                            fix=f"look at it in the dashboard; the old cluster is untouched. `fly mpg destroy {cid}`.")
        if time.monotonic() > deadline:
            raise UserError(f"Managed Postgres cluster {cid} was not ready after {timeout:g}s.",
                            fix="run the same command again later; nothing was attached yet.")
        time.sleep(interval)


def _swap_steps(settings: Settings, executor: Executor, attach: Callable[[dict[str, Any]], Command],
                direct: bool) -> list[Step]:
    """Detach the old URLs, attach the new cluster, (MPG) set the direct URL, redeploy."""
    names = ("DATABASE_URL", DIRECT_URL_VARIABLE) if direct else ("DATABASE_URL",)
    unset = secret_commands.secrets_unset(settings, *names, stage=True)
    placeholder: dict[str, Any] = {"new": NEW}

    def run_unset(facts: dict[str, Any]) -> None:
        executor.run(unset, check=False)  # absent is fine: nothing to remove

    def run_attach(facts: dict[str, Any]) -> None:
        executor.run(attach(facts))

    def run_direct(facts: dict[str, Any]) -> None:
        creds = mpg_credentials(settings, executor, facts["new"])
        if not creds.get("pgbouncer_uri"):
            raise UserError(f"`fly mpg status {facts['new']}` gave no connection URI.", fix="run again.")
        direct_url = {DIRECT_URL_VARIABLE: direct_uri(creds["pgbouncer_uri"])}
        executor.run(secret_commands.secrets_import(settings, direct_url))

    steps = [Step("detach the old database URL", [unset], run_unset),
             Step("attach the new cluster", [attach(placeholder)], run_attach)]
    if direct:
        steps.append(Step(f"set {DIRECT_URL_VARIABLE} (migrations bypass PgBouncer)",
                          [secret_commands.secrets_import(settings, {DIRECT_URL_VARIABLE: "<direct URI>"})],
                          run_direct))
    redeploy = secret_commands.secrets_deploy(settings)

    def run_redeploy(facts: dict[str, Any]) -> None:
        r = executor.run(redeploy, check=False)
        if not r.ok and "no machines" not in f"{r.stderr}{r.stdout}":  # none yet: the first deploy carries them
            raise executor.failure(r, fix=f"run `fly secrets deploy -a {settings.app}` once the app is healthy.")

    steps.append(Step("redeploy with the new secrets", [redeploy], run_redeploy))
    return steps


def mpg_restore_plan(settings: Settings, executor: Executor, *, backup_id: str | None = None,
                     pitr_time: str | None = None) -> Plan:
    old = cluster_id(settings, executor)
    new_name = f"{settings.db_app}-r{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}"
    restore = postgres_commands.mpg_restore(settings, old, backup_id=backup_id, pitr_time=pitr_time, name=new_name)

    def run_restore(facts: dict[str, Any]) -> None:
        r = executor.run(restore)
        m = _CLUSTER_ID.search(r.stdout)
        if m is None:
            raise UserError("`fly mpg restore` did not name the new cluster.", fix="find it with `fly mpg list`.")
        facts["new"] = m.group(1)

    def run_wait(facts: dict[str, Any]) -> None:
        wait_ready(settings, executor, facts["new"])

    steps = [Step(f"restore {old} into a new cluster {new_name}", [restore], run_restore),
             Step("wait until the new cluster is ready", [postgres_commands.mpg_status(settings, NEW)], run_wait),
             *_swap_steps(settings, executor,
                          lambda facts: postgres_commands.mpg_attach(settings, facts["new"]), direct=True)]
    back = [f"{secret_commands.secrets_unset(settings, 'DATABASE_URL', DIRECT_URL_VARIABLE).shown()}",
            f"{postgres_commands.mpg_attach(settings, old).shown()}",
            f"set {DIRECT_URL_VARIABLE} to the old cluster's direct URI (`fly mpg status {old} --json`)",
            f"{secret_commands.secrets_deploy(settings).shown()}"]
    what = f"backup {backup_id}" if backup_id else f"point in time {pitr_time}"
    return Plan(f"restore Managed Postgres {settings.db_app} ({what}) into a new cluster", steps, back,
                {"old": old, "new_name": new_name})


def mpg_create_plan(settings: Settings, executor: Executor) -> Plan:
    create = postgres_commands.mpg_create(settings)

    def run_create(facts: dict[str, Any]) -> None:
        r = executor.run(create, check=False)
        found = re.search(r"Connection string:\s*(\S+)", r.stdout)
        if found:
            register(found.group(1), credentials.parse_url(found.group(1))[1])
        if not r.ok:
            raise executor.failure(r, fix="check BEZGELOR_FLY_REGION, BEZGELOR_MPG_PLAN and BEZGELOR_PG_MAJOR.")
        m = _CLUSTER_ID.search(r.stdout)
        if m is None:
            raise UserError("`fly mpg create` did not print the cluster id.", fix="find it with `fly mpg list`.")
        facts["new"] = m.group(1)

    steps = [Step(f"create Managed Postgres {settings.db_app} (PostgreSQL {settings.pg_create_major}, "
                  f"plan {settings.mpg_plan})", [create], run_create),
             *_swap_steps(settings, executor, lambda facts: postgres_commands.mpg_attach(settings, facts["new"]),
                          direct=True)[1:]]  # a new app has no old URL to detach
    return Plan(f"create Managed Postgres {settings.db_app} and attach it to {settings.app}", steps,
                [f"fly mpg destroy <cluster id>  # and `fly secrets unset DATABASE_URL {DIRECT_URL_VARIABLE} "
                 f"-a {settings.app}`"])


def flex_pitr_plan(settings: Settings, executor: Executor, target_time: str) -> Plan:
    _check_rfc3339(target_time)
    new_app = f"{settings.db_app}-r{datetime.now(UTC).strftime('%m%d%H%M%S')}"
    restore = postgres_commands.postgres_backup_restore(settings, new_app, target_time=target_time)

    def run_restore(facts: dict[str, Any]) -> None:
        r = executor.run(restore, check=False)
        creds = state.extract_credentials(f"{r.stdout}\n{r.stderr}")  # registers the new password first
        if not r.ok:
            raise executor.failure(r, fix=f"check that Fly-side backups of {settings.db_app} cover {target_time} "
                                          f"(`inv db.backups`); the old cluster is untouched.")
        facts["new"] = new_app
        if creds.get("password"):
            moved = dataclasses.replace(settings, db_app=new_app)
            state.save_credentials(moved, creds, executor, origin="printed by `fly postgres backup restore`")

    attach = lambda facts: Command(  # noqa: E731 - same argv as postgres_commands.postgres_attach, other app
        (settings.flyctl, "postgres", "attach", facts["new"], "-a", settings.app, "--yes"),
        purpose=f"attach {facts['new']} to {settings.app} (sets DATABASE_URL)", env=fly_commands.BASE_ENV,
        cwd=settings.root, tool="flyctl", install=fly_commands.FLYCTL_INSTALL)
    steps = [Step(f"restore {settings.db_app} as of {target_time} into the new app {new_app}", [restore],
                  run_restore),
             *_swap_steps(settings, executor, attach, direct=False)]
    back = [secret_commands.secrets_unset(settings, "DATABASE_URL").shown(),
            postgres_commands.postgres_attach(settings).shown(), secret_commands.secrets_deploy(settings).shown()]
    return Plan(f"restore Flex {settings.db_app} to {target_time} into a new app", steps, back,
                {"new_name": new_app})


def _check_rfc3339(text: str) -> None:
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", text):
        raise UserError(f"{text!r} is not an RFC 3339 time with an offset.", fix="use e.g. 2026-06-01T12:00:00Z.")


def execute(settings: Settings, executor: Executor, ui: UI, plan: Plan, *, dry_run: bool) -> dict[str, Any]:
    """Print the plan; unless dry-run, run it step by step, journalling each, printing the way back."""
    ui.info(f"plan: {plan.title}")
    for i, step in enumerate(plan.steps, 1):
        ui.info(f"  {i}. {step.name}")
        for cmd in step.shows:
            ui.command(cmd.shown(), dry_run=True)
    outcome: dict[str, Any] = {"plan": plan.title, "steps": plan.shown(), "way_back": plan.way_back,
                               "dry_run": dry_run}
    if dry_run:
        return outcome
    journal = Journal(state.ensure_state_dir(settings, executor), executor)
    facts = dict(plan.facts)
    journal.record("db.fly_restore.plan", plan=plan.title, steps=[s.name for s in plan.steps])
    for step in plan.steps:
        journal.record("db.fly_restore.step", step=step.name, status="started", new=facts.get("new"))
        try:
            step.run(facts)
        except UserError as e:
            journal.record("db.fly_restore.step", step=step.name, status="failed", error=e.message)
            ui.error(f"stopped at: {step.name}. The old database is untouched; the way back:")
            for line in plan.way_back:
                ui.line(f"  {line}")
            raise
        journal.record("db.fly_restore.step", step=step.name, status="done", new=facts.get("new"))
        ui.ok(step.name)
    ui.info("the old database is kept until you remove it; the way back:")
    for line in plan.way_back:
        ui.line(f"  {line}")
    outcome["new"] = facts.get("new")
    name = facts.get("new_name")
    if name and name != settings.db_app:
        ui.info(f"from now on the database is {name}: set BEZGELOR_FLY_DB_APP={name} (in .env or CI) so "
                "backups and restores use it")
        outcome["set"] = {"BEZGELOR_FLY_DB_APP": name}
    journal.record("db.fly_restore.done", plan=plan.title, new=facts.get("new"), new_name=name)
    return outcome
