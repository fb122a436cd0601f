"""A real account has more than one deployer: a lock every checkout sees (kept on Fly), a no-op re-run
that only looks, a Ctrl-C that is heard at once, and bad input that is refused before anything is made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.deployrun import (
    REPO,
    commit_all,
    deployable_checkout,  # noqa: F401 (fixture)
    git,
    inv,
)
from tests.support.inv import INTERRUPTED

APP = "bezgelor"
LOCK_PREFIX = "BEZGELOR_DEPLOY_LOCK_"
CHANGING = {"apps create", "postgres create", "postgres attach", "ips allocate-v4", "secrets import", "deploy",
            "secrets unset", "machine destroy", "scale count"}


def deploy(root: Path, *extra: str, env: dict[str, str] | None = None):  # noqa: ANN201
    return inv("deploy.full", "--root", str(root), "--yes", "--skip-backup", *extra, env=env)


def start_deploy(root: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(REPO), "deploy.full", "--root", str(root),
                             "--yes", "--skip-backup", *extra], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def fly_locks(fake_fly) -> list[str]:  # noqa: ANN001
    return [n for n in fake_fly.app(APP)["secrets"] if n.startswith(LOCK_PREFIX)]


def wait_for(what: str, ready, proc: subprocess.Popen[str], limit: float = 90) -> None:  # noqa: ANN001
    deadline = time.monotonic() + limit
    while not ready():
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"never saw: {what}"
        time.sleep(0.1)


def test_two_checkouts_deploying_one_app_at_once_the_second_is_refused_by_the_lock_on_fly(
        deployable_checkout: Path, fake_fly, game_servers, tmp_path: Path) -> None:  # noqa: ANN001, F811
    laptop = deployable_checkout
    assert deploy(laptop).returncode == 0
    commit_all(laptop, "v0.2.0", tag="v0.2.0")
    ci = tmp_path / "ci-runner"  # a separate checkout with an empty .bezgelor/, as on a fresh runner
    git(laptop, "clone", "-q", str(laptop), str(ci))
    # The laptop's build takes a minute (only its own: times=1), so the CI runner starts while it runs.
    fake_fly.fault("deploy", "slow", latency=60, match="--build-only", times=1)

    first = start_deploy(laptop)
    try:
        wait_for("the lock on Fly", lambda: fly_locks(fake_fly), first)

        second = deploy(ci)

        assert second.returncode != 0
        assert "holds its lock on Fly" in second.stderr
        assert "deploy v0.2.0" in second.stderr and "@" in second.stderr and "ago" in second.stderr
        assert "Traceback" not in second.output
        status = inv("lock.status", "--root", str(ci), "--json")
        holders = json.loads(status.stdout)["fly"]
        assert len(holders) == 1 and holders[0]["purpose"] == "deploy" and holders[0]["message"] == "deploy v0.2.0"
        fake_fly.release_slow()  # the laptop's build finishes now
        out, err = first.communicate(timeout=240)
        assert first.returncode == 0, out + err
    finally:
        if first.poll() is None:
            first.kill()
    assert fly_locks(fake_fly) == [], "the lock on Fly is freed when the deploy ends"
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.2.0")
    assert not any(c.get("invalid") for c in fake_fly.calls()), "every flyctl call was valid grammar"


def test_a_stale_lock_left_on_fly_is_shown_and_freed_by_lock_release(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    root = deployable_checkout
    assert deploy(root).returncode == 0
    from bezgelor_tasks.deploy.fly_lock import FlyHolder, encode

    dead = FlyHolder("ci", "runner-7", time.time() - 60, "deploy", "deploy v9", "abc123")
    fake_fly.update(lambda s: s["apps"][APP]["secrets"].__setitem__(encode(dead), {"digest": "x", "status": "Staged"}))
    commit_all(root, "v0.2.0", tag="v0.2.0")

    refused = deploy(root)
    assert refused.returncode != 0 and "ci@runner-7" in refused.stderr and "deploy v9" in refused.stderr

    shown = inv("lock.status", "--root", str(root))
    assert shown.returncode == 0 and "ci@runner-7" in shown.stdout
    freed = inv("lock.release", "--root", str(root), "--yes")
    assert freed.returncode == 0, freed.output
    assert fly_locks(fake_fly) == []
    assert deploy(root).returncode == 0


def test_a_no_op_rerun_only_looks_at_most_six_questions_and_no_change(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    assert deploy(deployable_checkout).returncode == 0
    before = len(fake_fly.calls())

    again = deploy(deployable_checkout)

    assert again.returncode == 0, again.output
    calls = fake_fly.calls()[before:]
    assert [c["argv"] for c in calls if c["cmd"] in CHANGING] == []
    assert len(calls) <= 6, [c["cmd"] for c in calls]


def test_ctrl_c_during_the_health_gate_stops_at_once_frees_both_locks_and_a_rerun_resumes(
        deployable_checkout: Path, fake_fly, game_servers, monkeypatch) -> None:  # noqa: ANN001, F811
    root = deployable_checkout
    assert deploy(root).returncode == 0
    commit_all(root, "v0.2.0", tag="v0.2.0")
    monkeypatch.setenv("BEZGELOR_HEALTH_TIMEOUT", "300")
    game_servers.set_behavior("degraded")  # Fly's checks pass, our gate keeps waiting on the world port

    proc = start_deploy(root)
    try:
        wait_for("the v0.2.0 release", lambda: (fake_fly.live_release(APP) or {}).get("image_ref", "")
                 .endswith(":v0.2.0") and fake_fly.live_release(APP)["status"] == "complete", proc)
        time.sleep(1.0)  # inside the gate's polling now
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in INTERRUPTED, out + err
    assert waited < 30, "Ctrl-C waited for the gate's 300 s timeout"
    assert "interrupted" in err and "Traceback" not in err
    assert not (root / ".bezgelor" / f"deploy-{APP}.lock").exists()
    assert fly_locks(fake_fly) == []
    ends = [json.loads(line) for line in (root / ".bezgelor" / "journal.jsonl").read_text().splitlines()
            if '"deploy-end"' in line]
    assert ends[-1]["interrupted"] is True and ends[-1]["ok"] is False

    game_servers.set_behavior(None)
    resumed = deploy(root)
    assert resumed.returncode == 0, resumed.output
    assert "already done" in resumed.stdout


def test_ctrl_c_during_a_slow_build_stops_the_flyctl_child(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    fake_fly.fault("deploy", "slow", latency=120, match="--build-only")
    proc = start_deploy(deployable_checkout)
    try:
        wait_for("the build", lambda: _children(proc.pid, "--build-only"), proc)
        builds = _children(proc.pid, "--build-only")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in INTERRUPTED, out + err
    time.sleep(0.5)
    assert not [pid for pid in builds if _alive(pid)], "the flyctl child was left running"


def _children(parent: int, word: str) -> list[int]:
    """Pids of `parent`'s child processes with `word` in their argv."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        pid, ppid, args = (line.split(None, 2) + ["", ""])[:3]
        if ppid == str(parent) and word in args:
            found.append(int(pid))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# --- bad input ----------------------------------------------------------------------------------------

def test_a_root_that_does_not_exist_is_one_paragraph_and_nothing_is_created(fake_fly, tmp_path: Path) -> None:  # noqa: ANN001
    missing = tmp_path / "does" / "not" / "exist"
    for args in (["deploy.full", "--root", str(missing), "--yes"], ["deploy.full", "--root", str(missing), "--dry-run"],
                 ["rollback.app", "--root", str(missing), "--yes"]):
        ran = inv(*args)
        assert ran.returncode != 0, args
        assert "does not exist" in ran.stderr and "--root" in ran.stderr and "Traceback" not in ran.output
    assert not (tmp_path / "does").exists()


def test_a_checkout_where_bezgelor_state_cannot_be_written_is_an_error_not_a_traceback(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    state = deployable_checkout / ".bezgelor"
    if state.exists():
        import shutil
        shutil.rmtree(state)
    state.write_text("not a folder\n")  # as unwritable as a read-only checkout, even for root

    ran = deploy(deployable_checkout)

    assert ran.returncode != 0
    assert ".bezgelor is a file, not a folder" in ran.stderr and "Traceback" not in ran.output
    assert "read-only" not in ran.stderr  # a file where a folder must be is not a permission problem
    assert fake_fly.calls() == [] or all(c["cmd"] not in CHANGING for c in fake_fly.calls())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_checkout_is_an_error_not_a_traceback(deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    os.chmod(deployable_checkout, 0o555)
    try:
        ran = deploy(deployable_checkout)
    finally:
        os.chmod(deployable_checkout, 0o755)
    assert ran.returncode != 0 and "read-only" in ran.stderr and "Traceback" not in ran.output


@pytest.mark.parametrize("command", ["version", "auth whoami"])
def test_garbage_from_flyctl_is_an_error_not_a_plan_for_a_fresh_account(
        deployable_checkout: Path, fake_fly, command: str) -> None:  # noqa: ANN001, F811
    fake_fly.fault(command, "garbage", error="<html>502 Bad Gateway</html>")

    ran = inv("deploy.full", "--root", str(deployable_checkout), "--dry-run")

    assert ran.returncode != 0
    assert "is not JSON" in ran.stderr or "not JSON" in ran.stderr
    assert "fresh Fly account" not in ran.output and "Traceback" not in ran.output


def test_inv_list_into_head_ends_quietly() -> None:
    ran = subprocess.run(f"{sys.executable} -m invoke -r {REPO} --list | head -1", shell=True, capture_output=True,
                         text=True, timeout=60)
    assert ran.stdout.startswith("Available tasks")
    assert "BrokenPipeError" not in ran.stderr and "Traceback" not in ran.stderr
