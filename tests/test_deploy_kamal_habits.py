"""What a Kamal user types first: `inv deploy`, `inv rollback`, `inv logs`, `inv audit`, `inv lock.status`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.deployrun import (
    commit_all,
    deployable_checkout,  # noqa: F401 (fixture)
    inv,
)

APP = "bezgelor"


def test_deploy_rollback_logs_audit_and_lock_status_after_two_deploys(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    root = str(deployable_checkout)
    plan = inv("deploy", "--root", root, "--dry-run")
    assert plan.returncode == 0 and "No idea what" not in plan.output and "Plan" in plan.stdout

    assert inv("deploy", "--root", root, "--yes").returncode == 0
    commit_all(deployable_checkout, "v0.2.0", tag="v0.2.0")
    assert inv("deploy", "--root", root, "--yes", "--skip-backup").returncode == 0

    world = inv("logs", "--root", root, "--service", "world")
    assert world.returncode == 0, world.output
    lines = [line for line in world.stdout.splitlines() if "app[" in line]
    assert lines and all("world" in line or "24000" in line for line in lines)
    assert any("v0.2.0" in line for line in lines)
    assert fake_fly.argvs("logs")[-1][:3] == ["fly", "logs", "--no-tail"]
    recent = json.loads(inv("logs", "--root", root, "--since", "1h", "--json").stdout)
    assert len(recent) >= len(lines)
    bad = inv("logs", "--root", root, "--since", "yesterday")
    assert bad.returncode != 0 and "is not a duration" in bad.stderr

    audit = json.loads(inv("audit", "--root", root, "--json").stdout)
    whats = [e["what"] for e in audit]
    assert "release v1 complete" in whats and "release v2 complete" in whats
    assert whats.count("deploy ok") == 2
    assert all(e["by"] for e in audit)

    free = json.loads(inv("lock.status", "--root", root, "--json").stdout)
    assert free["fly"] == [] and free["local"] is None

    back = inv("rollback", "--root", root, "--yes")
    assert back.returncode == 0, back.output
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.1.0")
    after = json.loads(inv("audit", "--root", root, "--json").stdout)
    assert any(e["what"] == "rollback" and "healthy" in e["detail"] for e in after)
