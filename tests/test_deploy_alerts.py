"""deploy.full tells the operator how it went, on the alert channels they configured."""

from __future__ import annotations

import io
from pathlib import Path

from bezgelor_tasks import settings_load
from bezgelor_tasks.alerts.deploys import deploy_alert
from bezgelor_tasks.deploy.context import DeployContext
from bezgelor_tasks.deploy.full import DeployOutcome
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.journal import Journal
from bezgelor_tasks.run import Executor
from bezgelor_tasks.tasks._common import Session
from bezgelor_tasks.ui import UI
from tests.support.deployrun import deployable_checkout, inv  # noqa: F401 (fixture)


def test_a_deploy_tells_the_operator_it_is_deployed(  # noqa: F811 (fixture)
        deployable_checkout: Path, fake_fly, game_servers, receiver) -> None:  # noqa: ANN001, F811
    ran = inv("deploy.full", "--root", str(deployable_checkout), "--yes")
    assert ran.returncode == 0, ran.output
    done = receiver.wait_for_event("deploy_done")
    assert done["title"] == "bezgelor: deployed v0.1.0" and done["details"]["release"] == 1
    assert receiver.url("/hook") not in ran.output


def test_a_failed_deploy_and_a_rolled_back_one_are_told_apart(tmp_path, receiver) -> None:  # noqa: ANN001
    s = settings_load.load(tmp_path)
    ui = UI(stream=io.StringIO())
    ex = Executor(ui=ui)
    sess = Session(s, ui, ex, dry_run=False, json_mode=False)
    ctx = DeployContext(s, FlyClient(s, ex), ui, ex, Journal(s.state_dir, ex), version="v0.2.0")
    failed = DeployOutcome(False, ctx, [], 42.0, error="the health gate failed", failed_step="health",
                           rollback={"done": False, "reason": "migrations are newer"})
    rolled = DeployOutcome(False, ctx, [], 42.0, error="the health gate failed", failed_step="health",
                           rollback={"done": True, "to_release": 1})
    deploy_alert(sess, failed)
    deploy_alert(sess, rolled)
    assert deploy_alert(Session(s, ui, ex, dry_run=True, json_mode=False),
                        DeployOutcome(True, ctx, [], 1.0, dry_run=True)) is None   # a dry run tells nobody
    assert receiver.events() == ["deploy_failed", "deploy_rolled_back"]
    first, second = (r.json() for r in receiver.at("/hook"))
    assert first["severity"] == "critical" and first["details"]["rollback"] == "migrations are newer"
    assert second["title"] == "bezgelor: the deploy of v0.2.0 failed and was rolled back"
    assert second["details"]["rolled_back_to"] == 1
