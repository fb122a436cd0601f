"""When Fly fails part-way: the error names the step and the fix, the exit is non-zero, the lock is freed,
and running `inv deploy.full` again finishes without regenerating a secret. Plus bad input."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.deployrun import (
    REPO,
    deployable_checkout,  # noqa: F401 (fixture)
    inv,
)

APP = "bezgelor"
KEPT = ("SECRET_KEY_BASE", "CLOAK_KEY")


def deploy(co: Path, *extra: str, env: dict[str, str] | None = None):  # noqa: ANN201
    return inv("deploy.full", "--root", str(co), "--yes", *extra, env=env)


def lock_file(co: Path) -> Path:
    return co / ".bezgelor" / f"deploy-{APP}.lock"


@pytest.mark.slow
@pytest.mark.parametrize(("command", "match", "step"), [
    ("apps create", None, "app"),
    ("postgres create", None, "database"),
    ("postgres attach", None, "database"),
    ("ips allocate-v4", None, "ipv4"),
    ("secrets import", None, "secrets"),
    ("deploy", "--build-only", "build"),
    ("release_command", None, "deploy"),
    ("deploy", ["--image"], "deploy"),
], ids=["apps-create", "postgres-create", "postgres-attach", "ips-allocate", "secrets-import", "image-build",
        "release-command", "deploy-image"])
def test_a_failure_at_each_external_step_names_the_step_and_the_rerun_finishes(
        deployable_checkout: Path, fake_fly, game_servers, command: str, match: str | list[str] | None,  # noqa: ANN001, F811
        step: str) -> None:
    fake_fly.fault(command, "fail_once", match=match)

    failed = deploy(deployable_checkout)

    assert failed.returncode != 0
    assert f"Step `{step}`" in failed.stderr + failed.stdout
    assert "Fix:" in failed.output and "run `inv deploy.full` again" in failed.output
    assert not lock_file(deployable_checkout).exists(), "the lock is freed on failure"
    kept = {n: fake_fly.secret_digest(APP, n) for n in KEPT} if APP in fake_fly.state()["apps"] else {}

    again = deploy(deployable_checkout)

    assert again.returncode == 0, again.output
    assert fake_fly.live_release(APP)["status"] == "complete"
    for name, digest in kept.items():
        if digest is not None:
            assert fake_fly.secret_digest(APP, name) == digest, f"{name} was regenerated"
    # At most one failed and one good import of the secrets, plus one for the deploy lock kept on Fly.
    assert len(fake_fly.calls("secrets import")) <= 3
    assert len(fake_fly.calls("postgres create")) <= 2


def test_a_second_deploy_at_the_same_time_is_refused_with_the_holders_name_and_age(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    fake_fly.fault("deploy", "slow", latency=20, match="--build-only")
    import os

    first = subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(REPO), "deploy.full", "--root",
                              str(deployable_checkout), "--yes"], env=dict(os.environ),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not lock_file(deployable_checkout).exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first deploy never took the lock"
            time.sleep(0.1)

        second = deploy(deployable_checkout)

        assert second.returncode != 0
        assert "Another deploy of bezgelor is running: held by" in second.stderr
        assert f"(pid {first.pid})" in second.stderr and "for " in second.stderr
        fake_fly.release_slow()  # the first deploy's build finishes now
        out, err = first.communicate(timeout=180)
        assert first.returncode == 0, out + err
    finally:
        if first.poll() is None:
            first.kill()
    assert not lock_file(deployable_checkout).exists()


# --- bad input ----------------------------------------------------------------------------------------

def test_an_app_name_fly_would_refuse_is_refused_before_anything_runs(bezgelor_checkout: Path, fake_fly) -> None:  # noqa: ANN001
    ran = deploy(bezgelor_checkout, env={"BEZGELOR_FLY_APP": "Bezgelor_Prod"})
    assert ran.returncode != 0
    assert "BEZGELOR_FLY_APP=Bezgelor_Prod" in ran.stderr and "not a name Fly accepts" in ran.stderr
    assert fake_fly.calls() == []


def test_without_flyctl_the_error_says_how_to_install_it(bezgelor_checkout: Path) -> None:
    ran = deploy(bezgelor_checkout, env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"})
    assert ran.returncode != 0
    assert "flyctl (`fly`) is not installed" in ran.stderr and "fly.io/install.sh" in ran.stderr
    assert "Step `preflight`" in ran.stderr


def test_when_not_logged_in_the_error_says_to_log_in(bezgelor_checkout: Path, fake_fly) -> None:  # noqa: ANN001
    fake_fly.logout()
    ran = deploy(bezgelor_checkout)
    assert ran.returncode != 0
    assert "not logged in" in ran.stderr and "fly auth login" in ran.stderr
    assert [c["cmd"] for c in fake_fly.calls()] == ["version", "auth whoami"]


def test_an_app_name_taken_by_someone_else_names_the_setting_to_change(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    fake_fly.take_name(APP)
    ran = deploy(deployable_checkout)
    assert ran.returncode != 0
    assert "Step `app`" in ran.stderr and "already taken" in ran.stderr and "BEZGELOR_FLY_APP" in ran.stderr
    assert not lock_file(deployable_checkout).exists()


def test_garbage_from_flyctl_is_a_clear_error_not_a_traceback(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    fake_fly.fault("apps list", "garbage", error="{\"Name\": \"bezgel")
    ran = deploy(deployable_checkout)
    assert ran.returncode != 0
    assert "Step `app`" in ran.stderr and "not JSON" in ran.stderr
    assert "Traceback" not in ran.output


def test_a_checkout_that_fails_verify_is_not_deployed(bezgelor_checkout: Path, fake_fly) -> None:  # noqa: ANN001
    ran = deploy(bezgelor_checkout)
    assert ran.returncode != 0
    assert "`inv verify` reports" in ran.stderr and "inv init --root" in ran.stderr
    assert [c["cmd"] for c in fake_fly.calls()] == ["version", "auth whoami"]
