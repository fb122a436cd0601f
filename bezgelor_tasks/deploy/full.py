"""`inv deploy.full`: lock → survey (ask the world) → plan → confirm → steps side by side → health gate
→ on failure roll back to the last complete release → journal + summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
from bezgelor_tasks.run import cleanup_after_interrupt
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.tasks._common import Session

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
            "drain": drain_mod.state_of(self.ctx).as_json(),
        }


def make_context(sess: Session) -> DeployContext:
    s = sess.settings
    fly = FlyClient(s, sess.executor)
    return DeployContext(settings=s, fly=fly, ui=sess.ui, executor=sess.executor, journal=Journal(s.state_dir))


def _confirm(sess: Session, pipe: Pipeline) -> None:
    if not sys.stdin.isatty():
        raise UserError("deploy.full would change your Fly account (plan above) and needs confirmation, "
                        "but there is no terminal to ask on.",
                        fix="pass --yes to run it unattended (CI), or --dry-run to only see the plan.")
    answer = input("Run these steps? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise UserError("Stopped before changing anything.", fix="run again and answer y, or pass --yes.")


def deploy_full(sess: Session, *, yes: bool = False, skip_backup: bool = False,
                verify: Callable[[], list[str]] | None = None, drain: str | None = None,
                reason: str | None = None) -> DeployOutcome:
    s, ui = sess.settings, sess.ui
    state.require_checkout(s)
    ctx = make_context(sess)
    ctx.skip_backup = skip_backup
    drain_mod.setup(ctx, drain=drain, reason=reason, yes=yes)
    started = time.monotonic()
    step_list = steps.all_steps(ctx, verify or (lambda: verify_errors(s)))
    if sess.dry_run:
        try:  # git is local and read-only: show the real version in the plan even without flyctl
            ctx.version = read_version(s, ctx.executor)
            ctx.label = image_label(ctx.version)
        except UserError:
            pass
        pipe = Pipeline(step_list, ui=ui, journal=None, resume_hint=RESUME_HINT)
        # Without flyctl or a login, still show the whole plan (as for a fresh account), and say so;
        # but flyctl answering garbage is an error, never "a fresh account" (answers are cached: no extra call).
        _flyctl_answers_or_is_absent(ctx)
        pipe.survey(tolerate={"preflight"})
        if pipe.reports["preflight"].state != "done":
            why = pipe.reports["preflight"].detail.rstrip(".") or "not done"
            ui.warn(f"preflight: {why}: the plan below assumes a fresh Fly account (nothing exists yet).")
        if not sess.json_mode:
            pipe.show_plan()
            ui.info("dry run: nothing was changed.")
        return DeployOutcome(True, ctx, list(pipe.reports.values()), time.monotonic() - started, dry_run=True)

    state.ensure_state_dir(s)
    pipe = Pipeline(step_list, ui=ui, journal=ctx.journal, resume_hint=RESUME_HINT)
    lock = DeployLock(s.state_dir, s.app)  # this checkout's guard (and the only one before the app exists)
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
            outcome = DeployOutcome(False, ctx, list(pipe.reports.values()), time.monotonic() - started,
                                    error=failure.paragraph(), failed_step=failure.step.name)
            if failure.step.name in ROLLBACK_STEPS and pipe.reports[failure.step.name].acted:
                outcome.rollback = _auto_rollback(ctx, failure)
                if outcome.rollback.get("done"):
                    ending.rolled_back = True
                    ending.why += f", rolled back to release v{outcome.rollback.get('to_release')}"
            ctx.journal.record("deploy-end", app=s.app, version=ctx.version, ok=False, step=failure.step.name,
                               error=failure.paragraph(), rollback=outcome.rollback,
                               release_version=ctx.release_version, image_ref=ctx.image_ref or None)
            outcome.seconds = time.monotonic() - started
            return outcome
        except KeyboardInterrupt:
            ctx.journal.record("deploy-end", app=s.app, version=ctx.version, ok=False, error="interrupted",
                               interrupted=True, release_version=ctx.release_version,
                               steps={r.name: r.state for r in pipe.reports.values()})
            raise
        finally:
            _free_shared_lock(ctx, shared)
    outcome = DeployOutcome(True, ctx, list(pipe.reports.values()), time.monotonic() - started)
    ctx.journal.record("deploy-end", app=s.app, version=ctx.version, ok=True, image_ref=ctx.image_ref,
                       release_version=ctx.release_version, seconds=round(outcome.seconds, 3))
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


_ABSENT_OR_LOGGED_OUT = ("is not installed or not on PATH", "not logged in")


def _flyctl_answers_or_is_absent(ctx: DeployContext) -> None:
    """For --dry-run: flyctl missing or logged out is fine (plan for a fresh account); garbage is not."""
    try:
        ctx.fly.version()
        ctx.fly.whoami()
    except UserError as e:
        if not any(phrase in e.message for phrase in _ABSENT_OR_LOGGED_OUT):
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
    except UserError as e:
        ui.error(e.paragraph())
        return {"done": False, "to_release": target.version, "image_ref": target.image_ref, "reason": e.message}
    ui.ok(f"rolled back to release v{target.version} ({target.image_ref}); it is {result.health.summary()}")
    return {"done": True, **result.as_json()}


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
    for k, v in rows:
        ui.line(f"  {k:<12} {v}")
    ui.line("  steps:")
    for r in outcome.reports:
        ui.line(f"    {r.name:<10} {r.state:<8} {r.seconds:7.2f}s  {r.detail if r.state == 'done' else ''}".rstrip())
    sequential = sum(r.seconds for r in outcome.reports)
    ui.line(f"  total {outcome.seconds:.2f}s (steps one after another: {sequential:.2f}s)")
