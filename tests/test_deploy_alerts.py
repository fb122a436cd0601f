"""deploy.full tells the operator how it went, on the alert channels they configured."""

from __future__ import annotations

from pathlib import Path

from tests.support.deployrun import commit_all, deployable_checkout, inv  # noqa: F401 (fixture)


def test_a_deploy_alerts_deployed_and_a_failed_one_rolled_back(  # noqa: F811 (fixture)
        deployable_checkout: Path, fake_fly, game_servers, receiver, monkeypatch) -> None:  # noqa: ANN001, F811
    monkeypatch.setenv("BEZGELOR_HEALTH_TIMEOUT", "2")
    ran = inv("deploy.full", "--root", str(deployable_checkout), "--yes")
    assert ran.returncode == 0, ran.output
    done = receiver.wait_for_event("deploy_done")
    assert done["title"] == "bezgelor: deployed v0.1.0" and done["details"]["release"] == 1

    (deployable_checkout / "CHANGELOG.md").write_text("v0.2.0\n")
    commit_all(deployable_checkout, "v0.2.0", tag="v0.2.0")
    fake_fly.set_image_behavior("v0.2.0", "503")
    ran = inv("deploy.full", "--root", str(deployable_checkout), "--yes", "--skip-backup")
    assert ran.returncode != 0
    rolled = receiver.wait_for_event("deploy_rolled_back")
    assert rolled["severity"] == "warning" and rolled["details"]["rolled_back_to"] == 1
    assert receiver.events() == ["deploy_done", "deploy_rolled_back"]
    assert receiver.url("/hook") not in ran.output
