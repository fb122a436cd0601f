"""Top-level tasks on a checkout: init, verify, demo (thin: flags → library calls → output)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from invoke import Context, task
from invoke.exceptions import Exit

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.tasks._common import ROOT_HELP, Session, session, user_task

if TYPE_CHECKING:
    from bezgelor_tasks.checks import Report
    from bezgelor_tasks.ui import UI

EXAMPLE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "bezgelor"


@task(help={
    "root": ROOT_HELP,
    "check": "Change nothing; print the diffs and exit 1 if anything would change (for CI).",
    "dry_run": "Change nothing; print the diffs of what init would write.",
    "yes": "Replace files bezgelor-tasks did not write (Dockerfile, .dockerignore...) without asking; "
           "a .orig copy of each is kept.",
    "force": "Old name of --yes.",
    "json": "Print one JSON document (files, actions, why) on stdout.",
    "skip_syntax_check": "Write even without Elixir to syntax-check the result (not recommended).",
})
@user_task
def init(c: Context, root: str | None = None, check: bool = False, dry_run: bool = False, yes: bool = False,
         force: bool = False, json: bool = False, skip_syntax_check: bool = False) -> None:
    """Apply the deployment plan to a Bezgelor checkout (idempotent; --check for CI)."""
    from bezgelor_tasks import elixir
    from bezgelor_tasks.checkout import plan

    with plan.interrupted_before_writing():
        elixir.judge().warm()  # Elixir boots while Python reads the settings and the checkout
        from bezgelor_tasks.checkout.discover import Checkout

        s = session(root, dry_run=dry_run or check, json_mode=json)
        co = Checkout.open(s.settings)
        result = plan.run_init(co, s.ui, s.executor, check=check, yes=yes or force,
                               skip_syntax_check=skip_syntax_check)
    plan.report(result, s.ui)
    if json:
        s.ui.emit_json(result.as_json())
    if check and result.pending:
        raise Exit(code=1)


def print_report(report: Report, ui: UI) -> None:
    from bezgelor_tasks.checks import IGNORE_FILE as ignore_file

    for note in report.skipped:
        ui.warn(f"SKIPPED: {note}")
    for f in report.findings:
        ui.say(f.severity, f"{f.where()} {f.message} — {f.fix} [{f.id}]")
        for line in f.detail.splitlines():
            ui.line(f"    {line}")
    for f, rule in report.ignored:
        ui.line(f"   ignored {f.where()} [{f.id}] ({rule.why or 'no reason given'}; listed in {ignore_file})")
    counts = f"{report.errors} error(s), {report.count('warning')} warning(s), {report.count('info')} note(s)"
    if report.ignored:
        counts += f", {len(report.ignored)} ignored"
    if report.errors:
        ui.error(f"verify: {counts}. Fix the errors (most are fixed by `inv init`), then run `inv verify` again.")
    else:
        ui.ok(f"verify: the checkout is ready to deploy ({counts}).")
    if report.skipped:
        ui.warn("verify did NOT run every check (see SKIPPED above).")


def verify_checkout(s: Session) -> Report:
    from bezgelor_tasks.checkout.discover import Checkout
    from bezgelor_tasks.checks import verify as run_verify

    return run_verify(Checkout.open(s.settings))


@task(help={
    "root": ROOT_HELP,
    "json": "Print the findings as one JSON document on stdout.",
    "strict": "Also exit 1 on warnings (and on checks skipped because Elixir is missing).",
})
@user_task
def verify(c: Context, root: str | None = None, json: bool = False, strict: bool = False) -> None:
    """Check a checkout's deployment config offline; exit 1 on errors."""
    from bezgelor_tasks import elixir

    elixir.judge().warm()  # Elixir boots while Python reads the settings and the checkout
    s = session(root, json_mode=json)
    report = verify_checkout(s)
    print_report(report, s.ui)
    if json:
        s.ui.emit_json(report.as_json())
    failed = report.errors > 0 or (strict and (report.count("warning") > 0 or bool(report.skipped)))
    if failed:
        raise Exit(code=1)


def _copy_example(dest: Path, ui: UI, s: Session) -> None:
    from bezgelor_tasks import files, git

    if not EXAMPLE.is_dir():
        raise UserError(f"The bundled example checkout ({EXAMPLE}) is not there (installed without tests/?).",
                        fix="run the demo from a clone of bezgelor-tasks.")
    if dest.exists() and any(dest.iterdir()):
        raise UserError(f"{dest} already exists and is not empty; the demo never overwrites a folder.",
                        fix=f"remove it (rm -r {dest}) or pass --dest another/folder.")
    if files.copy_tree(s.executor, EXAMPLE, dest):
        ui.ok(f"copied the example Bezgelor checkout to {dest}")
    if shutil.which("git"):
        for cmd in git.commit_everything(dest, "Bezgelor example before init", init=True):
            s.executor.run(cmd)


@task(help={
    "dest": "Where to put the demo checkout (must not exist or be empty); default ./demo-checkout.",
    "dry_run": "Change nothing: say what would be copied, run verify and `init --dry-run` on the bundled example.",
})
@user_task
def demo(c: Context, dest: str = "demo-checkout", dry_run: bool = False) -> None:
    """Copy the bundled example checkout and run verify, init, verify and a dry-run deploy on it."""
    from bezgelor_tasks import elixir, git
    from bezgelor_tasks.checkout import plan
    from bezgelor_tasks.checkout.discover import Checkout

    target = Path(dest).resolve()
    s = session(str(target), new_root=True, dry_run=dry_run)
    ui = s.ui
    _copy_example(target, ui, s)
    if dry_run:
        _dry_run_demo(s, ui)
        return
    s = session(str(target))
    ui.heading("1. verify on the untouched example (it has the plan's bugs):")
    print_report(verify_checkout(s), ui)
    ui.heading("2. init (patches the user's files, writes ours):")
    co = Checkout.open(s.settings)
    if not elixir.available():
        ui.warn("Elixir is not installed: the demo writes without syntax-checking what it writes "
                "(apt-get install elixir to see the full check; `inv init` itself refuses without it).")
    result = plan.run_init(co, ui, s.executor, skip_syntax_check=not elixir.available())
    plan.report(result, ui)
    for cmd in git.commit_everything(target, "inv init: deployable on Fly.io"):  # as a user would
        s.executor.run(cmd)
    ui.heading("3. verify again:")
    report = verify_checkout(s)
    print_report(report, ui)
    ui.heading("4. release.build:")
    if not elixir.available():
        ui.warn("skipped: Elixir is not installed.")
    else:
        ui.info("skipped: the example has hex dependencies (Phoenix, Ecto), which cannot be fetched offline; "
                f"run `inv release.build --root {target}` on a real checkout with network access.")
    ui.heading("5. plan.size (memory and monthly cost for the configured VM):")
    from bezgelor_tasks.tasks import plan as plan_tasks

    plan_tasks.size(c, root=str(target))
    ui.heading("6. deploy.full --dry-run (every command it would run; nothing is changed):")
    _dry_run_deploy(c, target, ui)
    ui.ok(f"demo done: look around in {target} (git diff shows what init changed).")


def _dry_run_demo(s: Session, ui: UI) -> None:
    """`demo --dry-run`: the first two steps on the bundled example itself (they only read it)."""
    from bezgelor_tasks.checkout import plan
    from bezgelor_tasks.checkout.discover import Checkout
    from bezgelor_tasks.settings_load import load_checked

    example = Session(load_checked(EXAMPLE), ui, s.executor, True, False)
    ui.heading(f"1. verify on the bundled example ({EXAMPLE}; it has the plan's bugs):")
    print_report(verify_checkout(example), ui)
    ui.heading("2. init --dry-run (what init would write into the copy):")
    plan.report(plan.run_init(Checkout.open(example.settings), ui, s.executor), ui)
    ui.info("dry run: nothing was copied or written; the later steps (verify again, plan.size, deploy.full "
            "--dry-run) need init's changes, so run the demo without --dry-run to see them.")


def _dry_run_deploy(c: Context, target: Path, ui: UI) -> None:
    from bezgelor_tasks.tasks import deploy as deploy_tasks

    try:
        deploy_tasks.full(c, root=str(target), dry_run=True)
    except Exit as e:
        ui.warn(f"deploy.full --dry-run stopped (exit {e.code}).")
