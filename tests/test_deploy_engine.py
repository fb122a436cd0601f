"""The deploy engine on its own: the lock that keeps two deploys apart, the journal that never holds a
secret, and the pipeline that runs independent steps side by side and names the failing step."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bezgelor_tasks import redact
from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.journal import Journal, deploys_by_version, read_entries
from bezgelor_tasks.lock import DeployLock, Holder
from bezgelor_tasks.pipeline import Pipeline, Step, StepFailed, done, todo
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI


def quiet_ui() -> UI:
    import io

    return UI(stream=io.StringIO(), color=False)


# --- lock ---------------------------------------------------------------------------------------------

def test_a_second_deploy_is_refused_with_the_holders_name_and_age(tmp_path: Path) -> None:
    first = DeployLock(tmp_path, "bz", Executor())
    with first.held(), pytest.raises(UserError) as refused:
        DeployLock(tmp_path, "bz", Executor()).acquire()
    text = str(refused.value)
    me = Holder.me("deploy")
    assert f"{me.user}@{me.host}" in text and f"pid {os.getpid()}" in text
    assert re.search(r"held by \S+ \(pid \d+\) for \d+s", text)
    assert not first.path.exists(), "leaving the block frees the lock"


def test_locks_of_different_apps_do_not_collide(tmp_path: Path) -> None:
    with DeployLock(tmp_path, "one", Executor()).held(), DeployLock(tmp_path, "two", Executor()).held():
        pass


def test_a_lock_whose_process_is_gone_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = DeployLock(tmp_path, "bz", Executor())
    lock.path.write_text(json.dumps({"user": "ci", "host": Holder.me("x").host, "pid": int(dead.stdout),
                                     "started": time.time(), "purpose": "deploy"}))
    with lock.held() as holder:
        assert holder.pid == os.getpid()


def test_a_lock_older_than_the_maximum_age_is_stale_even_from_another_host(tmp_path: Path) -> None:
    lock = DeployLock(tmp_path, "bz", Executor(), max_age=60)
    lock.path.write_text(json.dumps({"user": "ci", "host": "runner-7", "pid": 1, "started": time.time() - 3600}))
    with lock.held():
        pass
    lock.path.write_text(json.dumps({"user": "ci", "host": "runner-7", "pid": 1, "started": time.time()}))
    with pytest.raises(UserError, match=r"ci@runner-7 \(pid 1\)"):
        lock.acquire()


def test_the_lock_is_freed_when_the_deploy_fails(tmp_path: Path) -> None:
    lock = DeployLock(tmp_path, "bz", Executor())
    with pytest.raises(RuntimeError), lock.held():
        raise RuntimeError("boom")
    assert not lock.path.exists()


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_the_lock_is_freed_on_ctrl_c_and_sigterm(tmp_path: Path, signame: str) -> None:
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from pathlib import Path
from bezgelor_tasks.lock import DeployLock
from bezgelor_tasks.run import Executor
with DeployLock(Path({str(tmp_path)!r}), "bz", Executor()).held():
    print("held", flush=True)
    time.sleep(30)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    assert (tmp_path / "deploy-bz.lock").exists()
    import signal

    proc.send_signal(getattr(signal, signame))
    proc.wait(timeout=10)
    assert proc.returncode != 0
    assert not (tmp_path / "deploy-bz.lock").exists()


# --- journal ------------------------------------------------------------------------------------------

def test_the_journal_never_holds_a_registered_secret_value(tmp_path: Path) -> None:
    redact.register("s3cr3t-value-xyz")
    j = Journal(tmp_path, Executor())
    j.record("step", step="secrets", argv=["fly", "secrets", "import"], note="set s3cr3t-value-xyz",
             nested={"url": "postgres://postgres:hunter22@db.internal:5432/x"})
    text = (tmp_path / "journal.jsonl").read_text()
    assert "s3cr3t-value-xyz" not in text and "hunter22" not in text
    assert "***" in text


def test_the_journal_finds_the_last_deploy_of_each_release_and_survives_a_torn_line(tmp_path: Path) -> None:
    j = Journal(tmp_path, Executor())
    j.record("deployed", release_version=3, version="v0.1.0", image_ref="registry.fly.io/bz:v0.1.0")
    j.record("deployed", release_version=4, version="v0.2.0", image_ref="registry.fly.io/bz:v0.2.0")
    with (tmp_path / "journal.jsonl").open("a") as f:
        f.write('{"event": "deployed", "release_ver')
    assert len(list(read_entries(tmp_path / "journal.jsonl"))) == 2
    assert deploys_by_version(tmp_path / "journal.jsonl")["4"]["version"] == "v0.2.0"


# --- pipeline -----------------------------------------------------------------------------------------

def _step(name: str, log: list[str], *, after: tuple[str, ...] = (), is_done: bool = False, sleep: float = 0.0,
          fail: bool = False) -> Step:
    def run() -> dict[str, object]:
        log.append(f"start {name}")
        time.sleep(sleep)
        if fail:
            raise UserError(f"{name} broke", fix=f"repair {name}")
        log.append(f"end {name}")
        return {"summary": f"{name} ran"}

    return Step(name, f"the {name} step", lambda: done("there") if is_done else todo("missing"),
                lambda: [Command(("echo", name), purpose=name)], run, after=after, fix=f"default fix of {name}")


def test_independent_steps_run_side_by_side_and_dependants_wait() -> None:
    log: list[str] = []
    barrier = threading.Barrier(2, timeout=5)

    def meet() -> dict[str, object]:
        barrier.wait()  # both must be running at once, or this times out
        log.append("met")
        return {}

    steps = [_step("a", log),
             Step("b", "b", lambda: todo(), lambda: [], meet, after=("a",)),
             Step("c", "c", lambda: todo(), lambda: [], meet, after=("a",)),
             _step("d", log, after=("b", "c"))]
    Pipeline(steps, ui=quiet_ui()).execute()
    assert log == ["start a", "end a", "met", "met", "start d", "end d"]


def test_done_steps_are_skipped_and_reported_as_done() -> None:
    log: list[str] = []
    pipe = Pipeline([_step("a", log, is_done=True), _step("b", log, after=("a",))], ui=quiet_ui())
    reports = pipe.survey()
    assert [r.state for r in reports] == ["done", "todo"]
    assert reports[0].commands == [] and reports[1].commands[0].argv == ("echo", "b")
    pipe.execute()
    assert log == ["start b", "end b"]
    assert [r.state for r in pipe.reports.values()] == ["done", "ran"]


def test_a_failure_names_the_step_and_the_fix_and_stops_what_comes_after(tmp_path: Path) -> None:
    log: list[str] = []
    j = Journal(tmp_path, Executor())
    pipe = Pipeline([_step("a", log), _step("b", log, after=("a",), fail=True), _step("c", log, after=("b",))],
                    ui=quiet_ui(), journal=j, resume_hint="run it again")
    with pytest.raises(StepFailed) as failed:
        pipe.execute()
    text = failed.value.paragraph()
    assert "Step `b` failed: b broke" in text and "(step b: the b step)" in text
    assert "Fix: repair b; then run it again" in text
    assert pipe.reports["c"].state == "not-run"
    states = [(e["step"], e["state"]) for e in j.entries()]
    assert states == [("a", "ran"), ("b", "failed")]


def test_steps_running_beside_a_failure_finish_before_it_is_reported() -> None:
    log: list[str] = []
    steps = [_step("slow", log, sleep=0.3), _step("broken", log, fail=True)]
    with pytest.raises(StepFailed, match="broken"):
        Pipeline(steps, ui=quiet_ui()).execute()
    assert "end slow" in log


def test_a_step_that_cannot_be_undone_says_so_in_the_plan() -> None:
    import io

    out = io.StringIO()
    step = Step("db", "create the database", lambda: todo(), lambda: [], lambda: {},
                irreversible="prints a password once")
    pipe = Pipeline([step], ui=UI(stream=out, color=False))
    pipe.survey()
    pipe.show_plan()
    assert "cannot be undone: prints a password once" in out.getvalue()
    assert pipe.as_json()[0]["irreversible"] == "prints a password once"


def test_steps_must_come_after_what_they_need() -> None:
    log: list[str] = []
    with pytest.raises(ValueError):
        Pipeline([_step("b", log, after=("a",)), _step("a", log)], ui=quiet_ui())
