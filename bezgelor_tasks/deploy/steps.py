"""The steps of `inv deploy.full`, each asking the world (flyctl, read-only) whether it is done.

preflight → app → {build, database, ipv4} side by side; secrets after database and ipv4; drain (the
players' countdown, deploy/drain.py) after build and secrets; backup after database and drain; deploy
after build, secrets and backup; health after deploy.
The image is built and pushed while the database and the IPv4 are provisioned, then deployed by image.
This module holds the steps of the release itself; database, ipv4 and secrets (what the app needs on Fly)
are in provision_steps.py, drain in deploy/drain.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bezgelor_tasks import migrations
from bezgelor_tasks.command import Command
from bezgelor_tasks.deploy import fly_lock, provision_steps
from bezgelor_tasks.deploy import machines as machines_mod
from bezgelor_tasks.deploy.context import IMAGE_LATER, DeployContext, git_describe, image_label, read_version
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands
from bezgelor_tasks.pipeline import Status, Step, done, todo

BACKUP_SKIPPED = "skipped: --skip-backup (no backup before this release's migrations)"


# --- 1. preflight -----------------------------------------------------------------------------------

_ABSENT_OR_LOGGED_OUT = ("is not installed or not on PATH", "not logged in")


def flyctl_unavailable(e: UserError) -> bool:
    """flyctl missing or logged out (not: flyctl answering something that is not its JSON)."""
    return any(phrase in e.message for phrase in _ABSENT_OR_LOGGED_OUT)


def preflight(ctx: DeployContext, verify: Callable[[], list[str]]) -> Step:
    """The checks every run makes first, the dry run too: flyctl and the login (a dry run without them plans
    for a fresh account), `inv verify` clean, a git version. What stops the real run stops the dry run."""
    def check() -> Status:
        try:
            flyctl: Any = ctx.fly.version()
            who: Any = ctx.fly.whoami()
        except UserError as e:
            if not (ctx.dry_run and flyctl_unavailable(e)):
                raise
            ctx.facts["flyctl_unavailable"] = e.headline().rstrip(".")
            flyctl = who = None
        errors = verify()
        if errors:
            listed = [f"- {e}" for e in errors[:10]] + ([f"- and {len(errors) - 10} more"] if len(errors) > 10 else [])
            raise UserError(f"`inv verify` reports {len(errors)} error(s) in the checkout.",
                            detail="\n".join([f"in {ctx.settings.root}:", *listed]),
                            fix=f"run `inv init --root {ctx.settings.root}` (and `inv verify` for details) "
                                "and fix what remains")
        ctx.version = ctx.version or read_version(ctx.settings, ctx.executor)
        ctx.label = ctx.label or image_label(ctx.version)
        if flyctl is None:
            return todo(f"{ctx.facts['flyctl_unavailable']}; verify clean, version {ctx.version}")
        return done(f"flyctl {flyctl.version or '?'}, logged in as {who.email or '?'}, verify clean, "
                    f"version {ctx.version}")

    def plan() -> list[Command]:
        return [commands.version(ctx.settings), commands.whoami(ctx.settings), git_describe(ctx.settings)]

    def run() -> dict[str, Any]:
        return {"version": ctx.version, "summary": check().detail}

    return Step("preflight", "flyctl present and logged in, `inv verify` clean, version from git",
                check, plan, run, fix="see the message above", resumable=False)


# --- 2. app -----------------------------------------------------------------------------------------

def app(ctx: DeployContext) -> Step:
    s = ctx.settings

    def check() -> Status:
        found = ctx.fly.find_app(s.app)
        return done(f"app {s.app} exists") if found else todo(f"no app {s.app} in org {s.org}")

    def run() -> dict[str, Any]:
        ctx.fly.create_app(s.app)
        return {"created_app": s.app, "org": s.org, "summary": f"created app {s.app} in {s.org}"}

    return Step("app", f"the Fly app {s.app} exists in org {s.org}", check,
                lambda: [commands.apps_create(s)], run, after=("preflight",),
                fix="choose another BEZGELOR_FLY_APP if the name is taken, or check BEZGELOR_FLY_ORG")


# --- build (side by side with database and ipv4) ------------------------------------------------------

def build(ctx: DeployContext) -> Step:
    s = ctx.settings

    def check() -> Status:
        running = machines_mod.runs_label(ctx.fly.status(s.app), ctx.label)
        if running:
            ctx.image_ref = running.image_ref
            return done(f"release v{running.release_version} already runs {running.image_ref}")
        for e in reversed(list(ctx.journal.entries())):
            if e.get("event") == "built" and e.get("label") == ctx.label and e.get("app") == s.app \
                    and e.get("image_ref"):
                ctx.image_ref = str(e["image_ref"])
                return done(f"image {ctx.image_ref} was built and pushed earlier")
        return todo(f"no image labelled {ctx.label}")

    def run() -> dict[str, Any]:
        # Which migrations this code contains, as image labels and in the journal (rollback.app reads them).
        code = migrations.code_migrations_for_build(s, ctx.executor)
        ctx.facts["code_migrations"] = code
        ctx.image_ref = ctx.fly.deploy_build(ctx.version, ctx.label, labels=code.image_labels(ctx.version))
        ctx.journal.record("built", app=s.app, label=ctx.label, version=ctx.version, image_ref=ctx.image_ref,
                           **code.journal_fields())
        return {"image_ref": ctx.image_ref, "label": ctx.label, "summary": f"built and pushed {ctx.image_ref}"}

    def plan() -> list[Command]:  # reading the migrations is local and read-only: show the real labels
        code = migrations.code_migrations_for_build(s, ctx.executor)
        return [commands.deploy(s, ctx.version or "<version>", build_only=True, image_label=ctx.label or "<version>",
                                labels=code.image_labels(ctx.version or "<version>"))]

    return Step("build", "build and push the image (remote builder), labelled with the version", check,
                plan, run, after=("app",),
                fix="read the build log above; `inv verify` and `inv release.build` reproduce most build errors "
                    "locally")


# --- 6. backup (slot) ---------------------------------------------------------------------------------

def backup(ctx: DeployContext) -> Step:
    """Back up the live database before the release command migrates it (unless --skip-backup).

    Nothing to protect on a first deploy (no complete release yet) or when the live release already
    runs this version (no new migrations); an empty database is recognised by the backup itself.
    """
    from bezgelor_tasks.backup import backup as backup_mod

    s = ctx.settings

    def check() -> Status:
        if ctx.skip_backup:
            return done(BACKUP_SKIPPED)
        app_status = ctx.fly.status(s.app)
        live = machines_mod.serving(app_status)  # what the machines run, not the newest complete release
        if live is None:
            return done("first deploy: no data to back up yet")
        if ctx.label and machines_mod.runs_label(app_status, ctx.label):
            return done(f"release v{live.release_version} already runs {ctx.label}: no new migrations to protect")
        return todo(f"back up {s.db_app}/{s.db_name} (live release v{live.release_version}) before migrating")

    def run() -> dict[str, Any]:
        live = machines_mod.serving(ctx.fly.status(s.app))
        live_version = str(live.release_version) if live and live.release_version is not None else None
        made = backup_mod.predeploy_backup(s, ctx.executor, ctx.ui, release_version=live_version)
        if made is None:
            return {"backup": None, "summary": "the database has no tables yet: nothing to back up"}
        ctx.journal.record("predeploy-backup", app=s.app, backup=made.path.name, path=str(made.path),
                           live_release=live_version, deploying_version=ctx.version)
        ctx.facts["backup"] = made.path.name
        return {"backup": made.path.name, "before_release": live_version,
                "summary": f"backed up to {made.path.name} (verified, before release v{live_version})"}

    return Step("backup", "back up the database before the release command migrates it", check,
                lambda: backup_mod.describe(s), run, after=("database", "build", "drain"),
                fix="see `inv db.backups` and fix the cause",
                bypass=f"deploy with --skip-backup at your own risk (the release command then migrates "
                       f"{s.db_app} with no backup)")


# --- 7. deploy ------------------------------------------------------------------------------------------

def _deployed_code_migrations(ctx: DeployContext) -> migrations.CodeMigrations:
    """The migrations of the image being deployed: as read at build time (this run, or the journal's
    `built` record of that image when an earlier run built it), else read from the checkout now."""
    known = ctx.facts.get("code_migrations")
    if isinstance(known, migrations.CodeMigrations):
        return known
    for e in reversed(list(ctx.journal.entries())):
        if e.get("event") == "built" and e.get("app") == ctx.settings.app and e.get("image_ref") == ctx.image_ref \
                and isinstance(e.get("migrations"), list):
            return migrations.CodeMigrations(tuple(str(v) for v in e["migrations"]),
                                             str(e.get("migrations_source") or "build record"),
                                             str(e.get("git_sha") or ""))
    return migrations.code_migrations_for_build(ctx.settings, ctx.executor)


def deploy(ctx: DeployContext) -> Step:
    s = ctx.settings

    def check() -> Status:
        running = machines_mod.runs_label(ctx.fly.status(s.app), ctx.label)
        if not running:
            return todo(f"{s.app}'s machines do not run {ctx.label} with passing checks yet")
        ctx.release_version = running.release_version
        ctx.image_ref = running.image_ref
        staged = sorted(x.name for x in ctx.fly.secrets(s.app) if x.status.lower() == "staged"
                        and not fly_lock.is_bookkeeping_name(x.name))  # bookkeeping: staged on purpose
        if staged:
            return todo(f"release v{running.release_version} runs {ctx.label}, but {', '.join(staged)} are "
                        "staged, not deployed")
        return done(f"release v{running.release_version} runs {running.image_ref}")

    def run() -> dict[str, Any]:
        emitted = ctx.fly.deploy_image(ctx.image_ref, ctx.version)
        if emitted and emitted.version is not None:
            ctx.release_version = emitted.version
        else:
            running = machines_mod.serving(ctx.fly.status(s.app))
            ctx.release_version = running.release_version if running else None
        # The release's migrations, so `inv rollback.app` can tell whether going back to it is safe later.
        code = _deployed_code_migrations(ctx)
        ctx.journal.record("deployed", app=s.app, release_version=ctx.release_version, version=ctx.version,
                           image_ref=ctx.image_ref, label=ctx.label, **code.journal_fields())
        return {"release_version": ctx.release_version, "image_ref": ctx.image_ref,
                "newest_migration": code.newest,
                "summary": f"release v{ctx.release_version} runs {ctx.image_ref} "
                           f"(newest migration {code.newest or 'none'})"}

    return Step("deploy", f"deploy the image (release command migrates; waits up to {s.deploy_wait_timeout_s}s)",
                check, lambda: [commands.deploy(s, ctx.version or "<version>", image=ctx.image_ref or IMAGE_LATER)],
                run, after=("build", "secrets", "backup", "machines"),
                irreversible="the release command runs database migrations; rolling the image back does not "
                             "undo them (`inv db.rollback` does)",
                fix=f"see `fly logs -a {s.app}` and `inv deploy.status`")


# --- 8. health gate ------------------------------------------------------------------------------------

def health(ctx: DeployContext) -> Step:
    s = ctx.settings

    def run() -> dict[str, Any]:
        from bezgelor_tasks.health import health_gate

        report = health_gate(s, ctx.ui, ctx.ipv4)
        ctx.health = report
        if not report.ok:
            for line in report.lines():
                ctx.ui.line(f"  {line}")
            raise UserError(f"{s.app} is {report.summary()}; last error: {report.last_error or 'none'}.",
                            fix=f"read `fly logs -a {s.app}`; raise BEZGELOR_HEALTH_TIMEOUT if the game data "
                                "needs longer to load")
        return {"waited_s": round(report.waited, 2), "services": dict(report.services), "summary": report.summary()}

    return Step("health", f"{s.public_health_url} all ok and each game port greets (ServerHello) on the IPv4",
                lambda: todo("checked on every deploy"), lambda: [], run, after=("deploy",),
                fix=f"read `fly logs -a {s.app}`")


# --- one machine, one world ------------------------------------------------------------------------------

def machines(ctx: DeployContext) -> Step:
    """More than one machine is more than one game world: refuse to deploy onto them, and say which
    machine to keep and the exact command back to one (destroying a machine with players on it is
    the user's decision, never ours)."""
    s = ctx.settings

    def check() -> Status:
        count = machines_mod.assess(ctx.fly.status(s.app))
        ctx.facts["machines"] = count
        if count.ok:
            return done(f"one machine ({count.keep.id})" if count.keep else "no machine yet (the deploy creates one)")
        way_back = "; ".join(c.shown() for c in count.commands(s))
        return todo(f"REFUSED: {len(count.machines)} machines = {len(count.machines)} game worlds; keep "
                    f"{count.why_keep()}; you run: {way_back}")

    def run() -> dict[str, Any]:
        count = machines_mod.assess(ctx.fly.status(s.app))
        if count.ok:
            return {"summary": "one machine"}
        raise UserError(count.problem(s) + ".",
                        fix="run the command(s) above (players on the destroyed machine are disconnected)")

    return Step("machines", f"{s.app} has at most one machine (one game world)", check, lambda: [], run,
                after=("app",), fix="destroy the extra machines as shown")


def all_steps(ctx: DeployContext, verify: Callable[[], list[str]]) -> list[Step]:
    from bezgelor_tasks.deploy.drain import drain_step  # the players' countdown (deploy/drain.py)

    return [preflight(ctx, verify), app(ctx), machines(ctx), build(ctx), provision_steps.database(ctx),
            provision_steps.ipv4(ctx), provision_steps.secrets(ctx),
            drain_step(ctx), backup(ctx), deploy(ctx), health(ctx)]


READ_ONLY_STEPS = frozenset({"preflight", "backup", "health", "machines"})
