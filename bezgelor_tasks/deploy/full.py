"""`inv deploy.full`: lock → survey (ask the world) → plan → confirm → steps side by side → health gate
→ on failure roll back a release this run deployed (never one it did not: a failing health with nothing
deployed is diagnosed, an outage is not a bad release) → journal + summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bezgelor_tasks.deploy import drain as drain_mod
from bezgelor_tasks.deploy import rollback as rollback_mod
from bezgelor_tasks.deploy import state, steps
from bezgelor_tasks.deploy.context import DeployContext, image_label, read_version
from bezgelor_tasks.deploy.fly_lock import FlyLock
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.journal import Journal
from bezgelor_tasks.lock import DeployLock
from bezgelor_tasks.pipeline import Pipeline, StepFailed, StepReport
from bezgelor_tasks.processes import cleanup_after_interrupt
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.tasks._common import Session
from bezgelor_tasks.ui import confirm

RESUME_HINT = "run `inv deploy.full` again: finished steps are recognised and skipped"
ROLLBACK_STEPS = ("deploy", "health")


def verify_errors(settings: Settings) -> list[str]:
    """The errors `inv verify` reports for the checkout, one line each (warnings do not stop a deploy)."""
    from bezgelor_tasks.checkout.discover import Checkout
    from bezgelor_tasks.checks import verify

    report = verify(Checkout.open(settings))
    return [f"{f.where()} {f.message}" for f in report.findings if f.severity == "error"]


@dataclass
class DeployOutcome:
    ok: bool
    ctx: DeployContext
    reports: list[StepReport]
    seconds: float
    error: str = ""
    failed_step: str = ""
    rollback: dict[str, Any] | None = None
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None
    failure: StepFailed | None = None     # what stopped the run (the task reports it)
    refusal: StepFailed | None = None     # a dry run: what the real run would refuse

    def as_json(self) -> dict[str, Any]:
        s = self.ctx.settings
        return {
            "ok": self.ok, "dry_run": self.dry_run, "app": s.app, "version": self.ctx.version,
            "image": self.ctx.image_ref or None, "release_version": self.ctx.release_version,
            "url": f"https://{s.hostname}", "ipv4": self.ctx.ipv4 or None, "game_ports": s.ports.game(),
            "db_password_file": str(state.password_path(s)) if state.password_path(s).exists() else None,
            "steps": [r.as_json() for r in self.reports], "seconds": round(self.seconds, 3),
            "sequential_seconds": round(sum(r.seconds for r in self.reports), 3),
            "error": self.error or None, "failed_step": self.failed_step or None, "rollback": self.rollback,
            "diagnosis": self.diagnosis.as_json() if self.diagnosis else None,
            "drain": drain_mod.state_of(self.ctx).as_json(),
        }


def make_context(sess: Session) -> DeployContext:
    s = sess.settings
    fly = FlyClient(s, sess.executor)
    return DeployContext(settings=s, fly=fly, ui=sess.ui, executor=sess.executor,
                         journal=Journal(s.state_dir, sess.executor))


def _confirm(sess: Session, pipe: Pipeline) -> None:
    if not confirm("Run these steps?", no_terminal=UserError(
            "deploy.full would change your Fly account (plan above) and needs confirmation, but there is no "
            "terminal to ask on; nothing was changed.",
            fix="pass --yes to run it unattended (CI), or --dry-run to only see the plan.")):
        raise UserError("Stopped before changing anything.", fix="run again and answer y, or pass --yes.")


def deploy_full(sess: Session, *, yes: bool = False, skip_backup: bool = False,
                verify: Callable[[], list[str]] | None = None, drain: str | None = None,
                reason: str | None = None) -> DeployOutcome:
    s = sess.settings
    state.require_checkout(s)
    ctx = make_context(sess)
    ctx.skip_backup = skip_backup
    drain_mod.setup(ctx, drain=drain, reason=reason, yes=yes)
    started = time.monotonic()
    step_list = steps.all_steps(ctx, verify or (lambda: verify_errors(s)))
    if sess.dry_run:
        return _dry_run(sess, ctx, step_list, started)

    state.ensure_state_dir(s, sess.executor)
    pipe = Pipeline(step_list, ui=sess.ui, journal=ctx.journal, resume_hint=RESUME_HINT)
    lock = DeployLock(s.state_dir, s.app, sess.executor)  # this checkout's guard (the only one before the app exists)
    shared = FlyLock(ctx.fly, s.app)      # the one every deployer sees, kept on Fly
    deployed = lambda: pipe.reports["deploy"].state == "ran"  # noqa: E731 (the new release went out)
    with lock.held("deploy"), drain_mod.maintenance_ends(ctx, deployed) as ending:
        try:
            pipe.survey()
            app_exists = pipe.reports["app"].state == "done"
            if app_exists:
                shared.refuse_if_held()  # read-only: the survey already listed the secrets
            pipe.show_plan()
            changing = [r for r in pipe.pending if r.name not in steps.READ_ONLY_STEPS]
            if changing and not yes:
                _confirm(sess, pipe)
            if changing and app_exists:  # a no-op re-run changes nothing, not even the lock
                shared.acquire("deploy", message=f"deploy {ctx.version}")
            drain_mod.check_players(ctx, pipe)
            ctx.journal.record("deploy-start", app=s.app, version=ctx.version,
                               todo=[r.name for r in pipe.pending])
            pipe.execute()
        except StepFailed as failure:
            ending.why = f"step {failure.step.name} failed"
            outcome = _after_failure(ctx, pipe, failure, started)
            if outcome.rollback and outcome.rollback.get("done"):
                ending.rolled_back = True
                ending.why += f", rolled back to release v{outcome.rollback.get('to_release')}"
            return outcome
        except KeyboardInterrupt:
            ctx.journal.record("deploy-end", app=s.app, version=ctx.version, ok=False, error="interrupted",
                               interrupted=True, **_released(ctx, pipe),
                               steps={r.name: r.state for r in pipe.reports.values()})
            raise
        finally:
            _free_shared_lock(ctx, shared)
    outcome = DeployOutcome(True, ctx, list(pipe.reports.values()), time.monotonic() - started)
    ctx.journal.record("deploy-end", app=s.app, version=ctx.version, ok=True, image_ref=ctx.image_ref,
                       seconds=round(outcome.seconds, 3), **_released(ctx, pipe))
    return outcome


def _dry_run(sess: Session, ctx: DeployContext, step_list: list[Any], started: float) -> DeployOutcome:
    """The plan, judged like the real run: the same preflight (verify, git, settings) runs first, and what the
    real run would refuse makes the dry run fail with the same message (after the plan). Without flyctl or a
    login the plan assumes a fresh account, and says so; flyctl answering garbage is an error."""
    ui = sess.ui
    try:  # git is local and read-only: show the real version in the plan even without flyctl
        ctx.version = read_version(ctx.settings, ctx.executor)
        ctx.label = image_label(ctx.version)
    except UserError:
        pass  # preflight says it, below
    pipe = Pipeline(step_list, ui=ui, journal=None, resume_hint=RESUME_HINT)
    _flyctl_answers_or_is_absent(ctx)
    try:
        pipe.survey(tolerate={"preflight"})
    except StepFailed:
        if "preflight" in pipe.failures:  # the later steps could not even be planned: the refusal comes first
            raise pipe.failures["preflight"] from None
        raise
    if ctx.facts.get("flyctl_unavailable"):
        ui.warn(f"preflight: {ctx.facts['flyctl_unavailable']}: the plan below assumes a fresh Fly account "
                "(nothing exists yet).")
    if not sess.json_mode:
        pipe.show_plan()
    refusal = pipe.failures.get("preflight")
    if refusal is None and not sess.json_mode:
        ui.info("dry run: nothing was changed.")
    return DeployOutcome(refusal is None, ctx, list(pipe.reports.values()), time.monotonic() - started,
                         dry_run=True, error=refusal.paragraph() if refusal else "",
                         failed_step="preflight" if refusal else "", refusal=refusal)


def _released(ctx: DeployContext, pipe: Pipeline) -> dict[str, Any]:
    """The release a deploy-end record speaks for: only one this run deployed. A run that deployed nothing
    names what was running (`running_release`), so no verdict lands on a release it did not deploy."""
    if pipe.reports["deploy"].acted:
        return {"release_version": ctx.release_version}
    return {"running_release": ctx.release_version, "deployed": False}


def _after_failure(ctx: DeployContext, pipe: Pipeline, failure: StepFailed, started: float) -> DeployOutcome:
    """Roll back only a release this run deployed and that then failed (its deploy or our gate). A failing
    health gate with nothing deployed is an outage, not a bad release: diagnosed, never rolled back."""
    s = ctx.settings
    outcome = DeployOutcome(False, ctx, list(pipe.reports.values()), time.monotonic() - started,
                            error=failure.paragraph(), failed_step=failure.step.name, failure=failure)
    deployed_now = pipe.reports["deploy"].acted
    if failure.step.name in ROLLBACK_STEPS and deployed_now:
        outcome.rollback = _auto_rollback(ctx, failure)
    elif failure.step.name == "health":
        outcome.diagnosis = diagnose(ctx)
    ctx.journal.record("deploy-end", app=s.app, version=ctx.version, ok=False, step=failure.step.name,
                       error=failure.paragraph(), rollback=outcome.rollback, image_ref=ctx.image_ref or None,
                       diagnosis=outcome.diagnosis.as_json() if outcome.diagnosis else None,
                       **_released(ctx, pipe))
    outcome.seconds = time.monotonic() - started
    return outcome


def _free_shared_lock(ctx: DeployContext, shared: FlyLock) -> None:
    """Free the lock on Fly on every exit path, Ctrl-C included; a failure to free it is said, not raised."""
    if shared.mine is None:
        return
    try:
        with cleanup_after_interrupt():
            shared.release()
    except UserError as e:
        ctx.ui.warn(f"could not free the deploy lock on Fly ({e.message}); `inv lock.release` frees it.")


def _flyctl_answers_or_is_absent(ctx: DeployContext) -> None:
    """For --dry-run: flyctl missing or logged out is fine (plan for a fresh account); garbage is not."""
    try:
        ctx.fly.version()
        ctx.fly.whoami()
    except UserError as e:
        if not steps.flyctl_unavailable(e):
            raise


def _auto_rollback(ctx: DeployContext, failure: StepFailed) -> dict[str, Any]:
    """Back to the last complete release, only when its code matches the database's migrations.

    The failed deploy's release command may already have migrated the database past that release;
    then (or when its migrations are unknown) rolling back would silently run old code on a newer
    schema, so nothing is rolled back and the way out is printed instead (never forced here).
    """
    s, ui = ctx.settings, ctx.ui
    bad_image = ctx.image_ref
    try:
        releases = ctx.fly.releases(s.app)
        target = rollback_mod.choose_target(releases, avoid_image=bad_image, app=s.app,
                                            verdicts=rollback_mod.gate_verdicts(ctx.journal.entries(), s.app))
    except UserError as e:
        ui.error(f"cannot roll back: {e.message}")
        return {"done": False, "reason": e.message}
    check = rollback_mod.check_migrations(s, target, rollback_mod.migration_records(s, ctx.journal),
                                          rollback_mod.read_database(ctx.fly, s.app))
    if check.safety.safe is not True:
        refusal = check.refusal(s.app)
        ui.error(f"not rolling back automatically: {refusal.paragraph()}")
        ctx.journal.record("rollback-refused", app=s.app, to_release=target.version, image_ref=target.image_ref,
                           automatic=True, migration_check=check.as_json())
        return {"done": False, "to_release": target.version, "image_ref": target.image_ref,
                "reason": refusal.message, "way_out": list(check.safety.way_out),
                "migration_check": check.as_json()}
    try:
        result = rollback_mod.roll_back(s, ctx.fly, ui, ctx.journal, target, ipv4=ctx.ipv4 or None,
                                        reason=f"step {failure.step.name} failed", check=check)
    except rollback_mod.RollbackUnhealthy as e:  # it was rolled back: the old image is not healthy either
        ui.error(e.paragraph())
        return {"done": True, "healthy": False, **e.result.as_json(), "reason": e.message}
    except UserError as e:
        ui.error(e.paragraph())
        return {"done": False, "to_release": target.version, "image_ref": target.image_ref, "reason": e.message}
    ui.ok(f"rolled back to release v{target.version} ({target.image_ref}); it is {result.health.summary()}")
    return {"done": True, "healthy": True, **result.as_json()}


@dataclass
class Diagnosis:
    """Why the live release is not healthy when this run deployed nothing: what fails, what runs, since when."""

    failing: dict[str, str]
    running: str
    last_healthy: str
    read_next: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"failing": self.failing, "running": self.running, "last_healthy": self.last_healthy or None,
                "read_next": self.read_next}

    def lines(self) -> list[str]:
        out = [f"failing: {name}: {why}" for name, why in sorted(self.failing.items())] or ["failing: (no detail)"]
        out.append(f"running: {self.running}")
        out.append(f"last healthy: {self.last_healthy or 'not known to this checkout'}")
        return out


def diagnose(ctx: DeployContext) -> Diagnosis:
    """What the failing gate saw, the release the machines run, and when this checkout last saw it healthy
    (the final error shows it; the health gate printed each probe above)."""
    s = ctx.settings
    report = ctx.health
    failing = dict(report.failing) if report is not None else {}
    if report is not None and not failing and report.last_error:
        failing = {"health": report.last_error}
    running = f"release v{ctx.release_version}" if ctx.release_version is not None else "unknown release"
    if ctx.image_ref:
        running += f" ({ctx.image_ref})"
    last = ""
    for e in ctx.journal.entries():
        if e.get("app") != s.app:
            continue
        if (e.get("event") == "deploy-end" and e.get("ok") is True) or \
                (e.get("event") == "rollback" and e.get("healthy") is True):
            last = f"{e.get('at')} ({'deploy' if e['event'] == 'deploy-end' else 'rollback'} by {e.get('user', '?')})"
    from bezgelor_tasks.tasks import namespace

    where = "" if Path.cwd().resolve() == s.root.resolve() else f" --root {s.root}"
    read_next = [f"inv {task}{where}" for task in ("logs", "status", "deploy.status") if task in namespace.task_names]
    return Diagnosis(failing, running, last, read_next)


def show_summary(sess: Session, outcome: DeployOutcome) -> None:
    ui, s, ctx = sess.ui, sess.settings, outcome.ctx
    ui.heading("Summary")
    ports = ", ".join(f"{name} {port}" for name, port in s.ports.game().items())
    rows = [("version", ctx.version or "?"), ("image", ctx.image_ref or "-"),
            ("release", f"v{ctx.release_version}" if ctx.release_version is not None else "-"),
            ("url", f"https://{s.hostname}"), ("ipv4", ctx.ipv4 or "-"), ("game ports", ports)]
    if state.password_path(s).exists():
        rows.append(("db password", f"{state.password_path(s)} (mode 0600)"))
    backup_report = next((r for r in outcome.reports if r.name == "backup"), None)
    if ctx.skip_backup:
        rows.append(("backup", "SKIPPED (--skip-backup): no backup was taken before migrating"))
    elif ctx.facts.get("backup"):
        rows.append(("backup", f"{ctx.facts['backup']} (before this release)"))
    elif backup_report is not None:
        rows.append(("backup", backup_report.detail or "-"))
    rows += drain_mod.summary_rows(ctx)
    if not outcome.ok and not outcome.dry_run:
        rows.append(("rollback", _rollback_said(outcome)))
    for k, v in rows:
        ui.line(f"  {k:<12} {v}")
    ui.line("  steps:")
    for r in outcome.reports:
        ui.line(f"    {r.name:<10} {r.state:<8} {r.seconds:7.2f}s  {r.detail if r.state == 'done' else ''}".rstrip())
    sequential = sum(r.seconds for r in outcome.reports)
    ui.line(f"  total {outcome.seconds:.2f}s (steps one after another: {sequential:.2f}s)")


def _rollback_said(outcome: DeployOutcome) -> str:
    """Exactly what happened about a rollback, in one line (the summary and the final error say the same)."""
    rb = outcome.rollback
    if rb is None:
        if outcome.diagnosis is not None:
            return "none: this run deployed nothing (the live release is not healthy: an outage, not a bad release)"
        return "none: this run deployed nothing that failed"
    if rb.get("done") and rb.get("healthy"):
        return f"rolled back to release v{rb.get('to_release')} ({rb.get('image_ref')}), which is healthy"
    if rb.get("done"):
        return f"rolled back to release v{rb.get('to_release')} ({rb.get('image_ref')}), but it is not healthy either"
    return f"not rolled back: {rb.get('reason')}"


def final_error(outcome: DeployOutcome) -> UserError:
    """The error `deploy.full` ends with: what stopped it, what was done about it, and what to do."""
    if outcome.refusal is not None:
        return outcome.refusal
    failure = outcome.failure
    message = failure.message if failure is not None else outcome.error
    fix = failure.fix if failure is not None else ""
    if outcome.diagnosis is not None:
        d = outcome.diagnosis
        return UserError(f"{outcome.ctx.settings.app} is not healthy; this run deployed nothing, so nothing was "
                         "rolled back (an outage is not a bad release).",
                         detail="\n".join([*d.lines(), message]),
                         fix="read " + ", then ".join(f"`{c}`" for c in d.read_next) + "; fix the cause (the "
                             "database? a secret?) and run `inv deploy.full` again to check it.")
    if outcome.rollback is None:
        return failure if failure is not None else UserError(message, fix=fix)
    said = _rollback_said(outcome)
    return UserError(f"{message} {said[0].upper()}{said[1:]}.", fix=fix,
                     detail=failure.detail if failure is not None else "")
