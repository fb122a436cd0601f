"""A dry run judges like the real run: what `deploy.full` would refuse (verify errors, a folder that is not a
git repository, an app that is not an umbrella, a fly.toml that is not TOML), `deploy.full --dry-run` refuses
too, non-zero, with the same message. Validate, then lock: `rollback.app --version 99` finds there is nothing
to roll back to before it takes any lock."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.trustworld import run_task
from tests.support.umbrella import copy_fixture

pytestmark = pytest.mark.elixir


def _error(text: str) -> str:
    return text[text.index("error: "):] if "error: " in text else text


def _both(root: Path, fake_fly) -> tuple[str, str]:  # noqa: ANN001
    """deploy.full --dry-run, then the real thing: each must refuse, with the same words, and change nothing."""
    dry = run_task("deploy.full", "--root", str(root), "--dry-run")
    real = run_task("deploy.full", "--root", str(root), "--yes")
    assert dry.code == 1 and real.code == 1, (dry.output, real.output)
    assert _error(dry.stderr) == _error(real.stderr)
    assert not [c for c in fake_fly.calls() if c["cmd"] not in ("version", "auth whoami", "apps list")]
    return _error(dry.stderr), dry.stdout


def test_a_checkout_verify_rejects_is_refused_by_the_dry_run_too(bezgelor_checkout: Path, fake_fly) -> None:  # noqa: ANN001
    said, _ = _both(bezgelor_checkout, fake_fly)  # the fixture before `inv init`: the seed plan's bugs
    assert said.startswith("error: Step `preflight` failed: `inv verify` reports")
    assert "\n  - mix.exs:" in said and said.splitlines()[-1].startswith("Fix: run `inv init")


def test_a_folder_that_is_not_a_git_repository_is_refused_by_the_dry_run_too(tmp_path: Path, fake_fly) -> None:  # noqa: ANN001
    root = copy_fixture(tmp_path / "bezgelor")  # no `git init`: no version to deploy
    assert run_task("init", "--root", str(root), "--yes").code == 0
    said, plan = _both(root, fake_fly)  # the plan may follow (with a placeholder version); the refusal ends it
    assert said.startswith("error: Step `preflight` failed: The checkout has no git version")


def test_an_app_that_is_not_an_umbrella_is_refused_by_the_dry_run_too(bezgelor_checkout: Path, fake_fly) -> None:  # noqa: ANN001
    said, _ = _both(bezgelor_checkout / "apps" / "bezgelor_portal", fake_fly)
    assert "not an umbrella" in said


def test_a_fly_toml_that_is_not_toml_is_refused_by_the_dry_run_too(bezgelor_checkout: Path, fake_fly) -> None:  # noqa: ANN001
    assert run_task("init", "--root", str(bezgelor_checkout), "--yes").code == 0
    (bezgelor_checkout / "fly.toml").write_text('app = "bezgelor"\n[[services]\ninternal_port = 4000\n')
    said, _ = _both(bezgelor_checkout, fake_fly)
    assert "fly.toml" in said


def test_rollback_to_a_release_that_does_not_exist_is_refused_before_any_lock(bezgelor_checkout: Path,  # noqa: ANN001
                                                                               fake_fly) -> None:
    fake_fly.add_app("bezgelor")
    for extra in (["--dry-run"], ["--yes"]):
        ran = run_task("rollback.app", "--root", str(bezgelor_checkout), "--version", "99", *extra)
        assert ran.code == 1 and "has no release v99" in ran.stderr
    assert fake_fly.calls("secrets import") == [] and fake_fly.calls("secrets unset") == []  # the lock on Fly
    assert not (bezgelor_checkout / ".bezgelor" / "deploy-bezgelor.lock").exists()
    assert not shutil.which("git") or subprocess.run(["git", "status", "--porcelain"], cwd=bezgelor_checkout,
                                                     capture_output=True, text=True).stdout == ""
