"""Ordered steps that ask the world whether they are done, run side by side when independent.

A `Step` knows three things:
- `check()`  read-only questions to the world: is this already done? (`Status`)
- `plan()`   the exact commands it would run (shown by --dry-run / --json, secrets masked)
- `run()`    do it; returns what it changed (a dict, journaled without secret values)
plus `after` (the steps it needs first), a `fix` hint for failures and `irreversible` (a note
shown before running a step that cannot be undone).

`Pipeline.survey()` checks steps in dependency order; a step whose prerequisites are not done yet
is not checked (its world question would fail: the app does not exist) but planned in full.
`Pipeline.execute()` runs the plan: steps whose prerequisites finished run in a thread pool, each
re-asking the world first when something upstream changed it. The first failure stops new steps,
lets running ones finish, and raises `StepFailed` naming the step and the fix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Container, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.journal import Journal
from bezgelor_tasks.processes import interrupt_all
from bezgelor_tasks.ui import UI


@dataclass(frozen=True)
class Status:
    done: bool
    detail: str = ""


def done(detail: str = "") -> Status:
    return Status(True, detail)


def todo(detail: str = "") -> Status:
    return Status(False, detail)


@dataclass
class Step:
    name: str
    description: str
    check: Callable[[], Status]
    plan: Callable[[], list[Command]]
    run: Callable[[], dict[str, Any]]
    after: tuple[str, ...] = ()
    fix: str = ""
    irreversible: str = ""
    resumable: bool = True  # after a failure, re-running picks up here (the resume hint applies)
    # A way past this step that holds whatever made it fail (e.g. --skip-backup); added to every failure's fix.
    bypass: str = ""

    def shown(self) -> str:
        return f"{self.name}: {self.description}"


@dataclass
class StepReport:
    name: str
    description: str
    state: str = "pending"        # pending | done | todo | ran | skipped | failed | not-run
    detail: str = ""
    commands: list[Command] = field(default_factory=list)
    changed: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    started: float | None = None  # monotonic
    seconds: float = 0.0
    irreversible: str = ""
    after: tuple[str, ...] = ()
    acted: bool = False           # run() was entered: the world may have changed (a failure may need undoing)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "state": self.state, "detail": self.detail,
                "after": list(self.after), "irreversible": self.irreversible or None,
                "argv": [list(c.as_json()["argv"]) for c in self.commands],
                "commands": [c.as_json() for c in self.commands], "changed": self.changed,
                "error": self.error or None, "seconds": round(self.seconds, 3)}


class StepFailed(UserError):
    def __init__(self, step: Step, cause: BaseException, *, resume_hint: str = "") -> None:
        self.step = step
        self.cause = cause
        reason = cause.message if isinstance(cause, UserError) else f"{type(cause).__name__}: {cause}"
        fix = cause.fix if isinstance(cause, UserError) and cause.fix else step.fix
        if step.bypass:
            fix = f"{fix.rstrip('. ')}; or {step.bypass}" if fix else step.bypass
        if resume_hint and step.resumable:
            fix = f"{fix.rstrip('. ')}; then {resume_hint}" if fix else resume_hint
        detail = cause.detail if isinstance(cause, UserError) else ""
        super().__init__(f"Step `{step.name}` failed: {reason}", fix=fix,
                         detail="\n".join(x for x in (detail, f"(step {step.name}: {step.description})") if x))


class Pipeline:
    def __init__(self, steps: Sequence[Step], *, ui: UI, journal: Journal | None = None,
                 max_workers: int = 4, resume_hint: str = "") -> None:
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate step names in {names}")
        for s in steps:
            unknown = [d for d in s.after if d not in names]
            if unknown or any(names.index(d) >= names.index(s.name) for d in s.after):
                raise ValueError(f"step {s.name} must come after {s.after} (unknown or later: {unknown})")
        self.steps = list(steps)
        self.ui = ui
        self.journal = journal
        self.max_workers = max_workers
        self.resume_hint = resume_hint
        self.reports = {s.name: StepReport(s.name, s.description, irreversible=s.irreversible, after=s.after)
                        for s in steps}
        self._changed_upstream: set[str] = set()
        self._lock = threading.Lock()
        self.failures: dict[str, StepFailed] = {}  # tolerated survey failures, by step (see `survey`)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    # -- planning ------------------------------------------------------------------------------------
    def survey(self, *, tolerate: Container[str] = ()) -> list[StepReport]:
        """Ask each step (whose prerequisites are done) whether it is done, and what it would run.

        A step named in `tolerate` whose question fails is planned as to-do instead of stopping the survey,
        and its failure is kept in `failures` (a dry run shows the plan, then the refusal)."""
        for s in self.steps:
            rep = self.reports[s.name]
            blocked = [d for d in s.after if self.reports[d].state != "done"]
            if blocked:
                rep.state, rep.detail = "todo", f"after {', '.join(blocked)}"
            else:
                began = time.monotonic()
                try:
                    status = self._check(s)
                except StepFailed as failure:
                    if s.name not in tolerate:
                        raise
                    self.failures[s.name] = failure
                    cause = failure.cause
                    status = todo(f"could not ask: {cause.message if isinstance(cause, UserError) else cause}")
                rep.seconds += time.monotonic() - began
                rep.state, rep.detail = ("done" if status.done else "todo"), status.detail
            rep.commands = [] if rep.state == "done" else self._plan(s)
        return [self.reports[s.name] for s in self.steps]

    def _check(self, s: Step) -> Status:
        try:
            return s.check()
        except StepFailed:
            raise
        except Exception as e:  # as in execute(): any failure is reported against its step
            raise StepFailed(s, e, resume_hint=self.resume_hint) from e

    def _plan(self, s: Step) -> list[Command]:
        try:
            return s.plan()
        except StepFailed:
            raise
        except Exception as e:
            raise StepFailed(s, e, resume_hint=self.resume_hint) from e

    @property
    def pending(self) -> list[StepReport]:
        return [r for r in self.reports.values() if r.state == "todo"]

    def show_plan(self) -> None:
        self.ui.heading("Plan")
        for i, s in enumerate(self.steps, 1):
            rep = self.reports[s.name]
            mark = "done" if rep.state == "done" else "todo"
            detail = f" ({rep.detail})" if rep.detail else ""
            self.ui.line(f"{i:2}. [{mark}] {s.shown()}{detail}")
            if rep.state != "done" and s.irreversible:
                self.ui.line(f"      ! cannot be undone: {s.irreversible}")
            for c in rep.commands:
                self.ui.line(f"      $ {c.shown()}")

    # -- execution -----------------------------------------------------------------------------------
    def execute(self) -> list[StepReport]:
        remaining = [s for s in self.steps]
        running: dict[Future[None], Step] = {}
        failure: StepFailed | None = None
        interrupted = False
        pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="step")
        try:
            while remaining or running:
                if failure is None:
                    for s in list(remaining):
                        deps = [self.reports[d].state for d in s.after]
                        if all(d in ("done", "ran", "skipped") for d in deps):
                            remaining.remove(s)
                            running[pool.submit(self._run_step, s)] = s
                elif not running:
                    break
                if not running:
                    if remaining:  # unreachable with a valid order; guard against a silent hang
                        raise RuntimeError(f"steps cannot start: {[s.name for s in remaining]}")
                    break
                try:
                    finished, _ = wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    # Ctrl-C: stop the children the running steps wait on, and do not wait for the steps.
                    interrupted = True
                    interrupt_all()
                    raise
                for fut in finished:
                    s = running.pop(fut)
                    exc = fut.exception()
                    if exc is not None and failure is None:
                        failure = exc if isinstance(exc, StepFailed) else StepFailed(s, exc,
                                                                                       resume_hint=self.resume_hint)
        finally:
            pool.shutdown(wait=not interrupted, cancel_futures=True)
            for s in remaining:
                if self.reports[s.name].state in ("todo", "pending"):
                    self.reports[s.name].state = "not-run"
        if failure is not None:
            raise failure
        return [self.reports[s.name] for s in self.steps]

    def _run_step(self, s: Step) -> None:
        rep = self.reports[s.name]
        rep.started = began = time.monotonic()
        try:
            with self._lock:
                upstream_changed = bool(set(s.after) & self._changed_upstream)
            if rep.state == "pending" or upstream_changed or rep.detail.startswith("after "):
                status = s.check()
                rep.state, rep.detail = ("done" if status.done else "todo"), status.detail
            if rep.state == "done":
                self.ui.ok(f"{s.name}: already done{' - ' + rep.detail if rep.detail else ''}")
                self._journal("step", step=s.name, state="done", detail=rep.detail)
                return
            if s.irreversible:
                self.ui.warn(f"{s.name}: cannot be undone: {s.irreversible}")
            self.ui.info(f"{s.name}: {s.description}")
            rep.acted = True
            changed = s.run() or {}
            rep.changed = changed
            rep.state = "skipped" if changed.get("skipped") else "ran"
            with self._lock:
                self._changed_upstream.add(s.name)
            self.ui.ok(f"{s.name}: {changed.get('summary') or rep.state}")
            self._journal("step", step=s.name, state=rep.state, changed=changed)
        except Exception as e:  # signals arrive in the main thread, never here
            rep.state = "failed"
            err = e if isinstance(e, StepFailed) else StepFailed(s, e, resume_hint=self.resume_hint)
            rep.error = err.message
            self._journal("step", step=s.name, state="failed", error=err.paragraph())
            raise err from None
        finally:
            rep.seconds += time.monotonic() - began

    def _journal(self, event: str, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.record(event, **fields)

    def as_json(self) -> list[dict[str, Any]]:
        return [self.reports[s.name].as_json() for s in self.steps]
