"""`inv rollback.list` and `inv rollback.app`: back to an earlier good image, health-gated; refused when
there is nothing earlier to go back to."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.deployrun import (
    commit_all,
    deployable_checkout,  # noqa: F401 (fixture)
    inv,
)

APP = "bezgelor"


def test_rollback_with_no_earlier_good_release_is_refused(deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    assert inv("deploy.full", "--root", str(deployable_checkout), "--yes").returncode == 0
    before = len(fake_fly.releases(APP))

    ran = inv("rollback.app", "--root", str(deployable_checkout), "--yes")

    assert ran.returncode != 0
    assert "no earlier good release" in ran.stderr
    assert len(fake_fly.releases(APP)) == before
    assert not (deployable_checkout / ".bezgelor" / f"deploy-{APP}.lock").exists()


def test_rollback_goes_back_to_the_previous_image_and_checks_its_health(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    assert inv("deploy.full", "--root", str(deployable_checkout), "--yes").returncode == 0
    commit_all(deployable_checkout, "second", tag="v0.2.0")
    assert inv("deploy.full", "--root", str(deployable_checkout), "--yes", "--skip-backup").returncode == 0
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.2.0")

    listed = inv("rollback.list", "--root", str(deployable_checkout), "--json")
    assert listed.returncode == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["version"], r["git_version"], r["current"]) for r in rows] == [(2, "v0.2.0", True), (1, "v0.1.0", False)]

    ran = inv("rollback.app", "--root", str(deployable_checkout), "--yes")

    assert ran.returncode == 0, ran.output
    live = fake_fly.live_release(APP)
    assert live["image_ref"].endswith(":v0.1.0") and live["version"] == 3
    assert "healthy" in ran.stdout


def test_rollback_to_a_named_release_that_failed_is_refused(deployable_checkout: Path, fake_fly, game_servers,  # noqa: ANN001, F811
                                                            monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("BEZGELOR_HEALTH_TIMEOUT", "1")
    assert inv("deploy.full", "--root", str(deployable_checkout), "--yes").returncode == 0
    commit_all(deployable_checkout, "broken", tag="v0.2.0")
    fake_fly.set_image_behavior("v0.2.0", "down")
    assert inv("deploy.full", "--root", str(deployable_checkout), "--yes", "--skip-backup").returncode != 0
    failed = next(r for r in fake_fly.releases(APP) if r["status"] == "failed")

    ran = inv("rollback.app", "--root", str(deployable_checkout), "--version", str(failed["version"]), "--yes")

    assert ran.returncode != 0
    assert "not complete" in ran.stderr
    bad = inv("rollback.app", "--root", str(deployable_checkout), "--version", "latest", "--yes")
    assert bad.returncode != 0 and "is not a release number" in bad.stderr
