"""One machine, one world; a rollback that always has a way out. Stories against the fake flyctl (which
creates flyctl's HA spare exactly when flyctl does) and real loopback game servers."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from tests.support.deployrun import (
    commit_all,
    deployable_checkout,  # noqa: F401 (fixture)
    inv,
)

APP = "bezgelor"
MIGRATIONS = Path("apps/bezgelor_db/priv/repo/migrations")
A, B = "20240302093000", "20240410120000"
GUILDS = ("defmodule BezgelorDb.Repo.Migrations.CreateGuilds do\n  use Ecto.Migration\n\n  def change do\n"
          "    create table(:guilds) do\n      add :name, :string\n    end\n  end\nend\n")


def deploy(root: Path, *extra: str):  # noqa: ANN201
    return inv("deploy.full", "--root", str(root), "--yes", "--skip-backup", *extra)


def machines(fake_fly) -> list[dict[str, Any]]:  # noqa: ANN001
    return list(fake_fly.app(APP)["machines"])


def add_second_machine(fake_fly) -> str:  # noqa: ANN001
    """What `fly scale count 2` (or a deploy without --ha=false) leaves: a second machine, same image."""
    def go(state: dict[str, Any]) -> str:
        ms = state["apps"][APP]["machines"]
        twin = {**ms[0], "id": "e2860f11c0ffee", "name": f"{APP}-twin", "created_at": "2099-01-01T00:00:00Z"}
        ms.append(twin)
        return str(twin["id"])
    return fake_fly.update(go)  # type: ignore[no-any-return]


def test_a_first_deploy_makes_exactly_one_machine(deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    ran = deploy(deployable_checkout)

    assert ran.returncode == 0, ran.output
    assert len(machines(fake_fly)) == 1, "flyctl's HA spare would be a second game world"
    rollouts = [a for a in fake_fly.argvs("deploy") if "--image" in a]
    assert rollouts and all("--ha=false" in a for a in rollouts)
    assert "one machine" in ran.stdout


def test_an_app_that_already_has_two_machines_is_refused_with_the_machine_to_keep_and_the_command(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    root = deployable_checkout
    assert deploy(root).returncode == 0
    keep = machines(fake_fly)[0]["id"]
    extra = add_second_machine(fake_fly)
    commit_all(root, "next", tag="v0.2.0")
    deploys_before = len(fake_fly.argvs("deploy"))

    ran = deploy(root)

    assert ran.returncode != 0
    assert "2 machines" in ran.stderr and "2 separate game worlds" in ran.stderr
    assert f"Keep {keep}" in ran.stderr
    command = f"fly machine destroy {extra} --force -a {APP}"
    assert command in ran.stderr
    assert not [a for a in fake_fly.argvs("deploy")[deploys_before:] if "--image" in a], "nothing was deployed"

    status = inv("deploy.status", "--root", str(root), "--json")
    assert status.returncode == 0, status.output
    data = json.loads(status.stdout)
    assert data["one_machine"]["keep"] == keep and data["one_machine"]["extra"] == [extra]
    assert command in data["machines_problem"]

    # The printed way back, then the deploy goes through onto the one machine left.
    import subprocess

    subprocess.run(shlex.split(command), check=True, capture_output=True, cwd=root)
    again = deploy(root)
    assert again.returncode == 0, again.output
    assert [m["id"] for m in machines(fake_fly)] == [keep]
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.2.0")


def test_a_failed_rolling_deploy_with_a_migration_has_a_way_out_that_ends_healthy(
        deployable_checkout: Path, fake_fly, game_servers, monkeypatch) -> None:  # noqa: ANN001, F811
    root = deployable_checkout
    monkeypatch.setenv("BEZGELOR_HEALTH_TIMEOUT", "2")
    assert deploy(root).returncode == 0
    (root / MIGRATIONS / f"{B}_create_guilds.exs").write_text(GUILDS)
    commit_all(root, "guilds, broken", tag="v0.2.0")
    fake_fly.set_image_behavior("v0.2.0", "503")  # Fly's checks fail: rolling leaves the machine on it

    failed = deploy(root, "--json")

    assert failed.returncode != 0
    outcome = json.loads(failed.stdout)
    way_out = outcome["rollback"]["way_out"]
    assert way_out[0].startswith(f"inv db.rollback --to {A}")
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.2.0"), "the machines run the failed release"

    listed = json.loads(inv("rollback.list", "--root", str(root), "--json").stdout)
    current = next(r for r in listed if r["current"])
    assert current["status"] == "failed" and current["image_ref"].endswith(":v0.2.0")
    assert [r["version"] for r in listed if r["offered"]] == [1]

    # Run the printed commands in order (the user's answers to their prompts as flags).
    answers = {"db.rollback": ["--yes", "--confirm-app", APP, "--skip-backup"], "rollback.app": ["--yes"]}
    steps = [line for line in way_out if not line.startswith("or ")]  # the last line is the risky --force
    assert len(steps) == 2
    for line in steps:
        words = shlex.split(line.split("   (")[0].removeprefix("then "))
        assert words[0] == "inv", line
        ran = inv(*words[1:], "--root", str(root), *answers[words[1]])
        assert ran.returncode == 0, f"{line}\n{ran.output}"

    live = fake_fly.live_release(APP)
    assert live["image_ref"].endswith(":v0.1.0") and live["status"] == "complete" and live["behavior"] == "healthy"
    assert fake_fly.applied_migrations(APP)[-1] == int(A)
    status = json.loads(inv("deploy.status", "--root", str(root), "--json").stdout)
    assert status["health"]["ok"] is True and status["release"]["image_ref"].endswith(":v0.1.0")


def test_a_release_fly_calls_complete_but_our_gate_failed_is_not_offered() -> None:
    """Fly's checks can pass while our gate fails (a game port dead): the journal's verdict counts too."""
    import pytest

    from bezgelor_tasks.deploy import rollback
    from bezgelor_tasks.errors import UserError
    from bezgelor_tasks.fly.records import Release

    def rel(v: int, status: str = "complete") -> Release:
        return Release(v, status, f"registry.fly.io/{APP}:v0.{v}.0", "2026-12-01T00:00:0{v}Z", True, "")

    releases = [rel(4, "failed"), rel(3), rel(2), rel(1)]
    journal = [{"event": "deploy-end", "app": APP, "ok": True, "release_version": 1},
               {"event": "deploy-end", "app": APP, "ok": True, "release_version": 2},
               {"event": "deploy-end", "app": APP, "ok": False, "step": "health", "release_version": 3},
               {"event": "deploy-end", "app": "other", "ok": False, "step": "health", "release_version": 2}]
    verdicts = rollback.gate_verdicts(journal, APP)

    assert verdicts == {1: True, 2: True, 3: False}
    assert rollback.health_of(releases[1], verdicts) == "unhealthy: Fly complete, our health gate failed"
    assert rollback.health_of(releases[0], verdicts).startswith("unhealthy: Fly failed")
    assert [r.version for r in rollback.good(releases, verdicts)] == [2, 1]
    running = releases[0]  # the machines run the failed v4
    assert rollback.choose_target(releases, app=APP, running=running, verdicts=verdicts).version == 2
    with pytest.raises(UserError, match="not healthy"):
        rollback.choose_target(releases, version=3, app=APP, verdicts=verdicts)
