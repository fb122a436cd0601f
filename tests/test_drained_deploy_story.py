"""Deploys players can live with: `inv deploy.full --drain` empties the world with an in-game countdown.

A real BEAM plays the running release's world (tests/support/world_node.exs); test clients are players.
Version v0.1.0 is live; v0.2.0 is deployed with a countdown whose marks and poll are seconds here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.deployrun import (
    REPO,
    Ran,
    commit_all,
    deployable_checkout,  # noqa: F401 (fixture)
    inv,
)
from tests.support.inv import INTERRUPTED

APP = "bezgelor"
MAINTENANCE = "Server entering maintenance mode. Please log out."


@pytest.fixture
def live_world(deployable_checkout: Path, fake_fly, game_servers, world, monkeypatch) -> Path:  # noqa: ANN001, F811
    """v0.1.0 deployed and its world running (the BEAM), v0.2.0 committed and ready to deploy."""
    first = inv("deploy.full", "--root", str(deployable_checkout), "--yes")
    assert first.returncode == 0, first.output
    assert "no live world to restart" in first.stdout  # a first deploy has nobody to warn
    world.attach(fake_fly, APP)
    (deployable_checkout / "CHANGELOG.md").write_text("v0.2.0\n")
    commit_all(deployable_checkout, "v0.2.0", tag="v0.2.0")
    monkeypatch.setenv("BEZGELOR_DRAIN_POLL", "0.2")
    return deployable_checkout


def deploy(root: Path, *extra: str) -> Ran:
    # The backup slot has its own tests (tests/test_deploy_backup.py); here the world is what matters.
    return inv("deploy.full", "--root", str(root), "--skip-backup", *extra)


def image_deploys(fake_fly: Any, label: str = "v0.2.0") -> list[dict[str, Any]]:
    """The `fly deploy --image ...:<label>` calls: the new release going out."""
    return [c for c in fake_fly.calls("deploy") if "--image" in c["argv"]
            and c["argv"][c["argv"].index("--image") + 1].endswith(f":{label}")]


def countdown_of(messages: list[str]) -> list[str]:
    return [m for m in messages if m.startswith(("Server restart in", "Server restarting now"))]


def leave_on(player: Any, needle: str, left: dict[str, float], times: int = 1) -> threading.Thread:
    """The player logs out on the `times`-th message containing `needle`."""
    def go() -> None:
        for _ in range(times):
            player.wait_for(needle)
        player.leave()
        left[player.name] = time.time()
    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def test_players_see_the_countdown_and_the_deploy_starts_when_the_last_one_leaves(
        live_world: Path, fake_fly, world, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("BEZGELOR_DRAIN_MARKS", "10s,8s,6s")
    kira, dorian = world.connect("Kira"), world.connect("Dorian")
    world.wait_count(2)
    left: dict[str, float] = {}
    # Kira logs out at the first reminder, Dorian at the second. (Which marks those are depends on how fast
    # the machine is: a mark already passed when the countdown looks is folded into the next one.)
    threads = [leave_on(kira, "Server restart in", left, times=2), leave_on(dorian, "Server restart in", left, times=3)]

    ran = deploy(live_world, "--yes", "--drain", "12s", "--reason", "v0.2.0 (new dungeons)")

    assert ran.returncode == 0, ran.output
    for t in threads:
        t.join(timeout=5)
    assert kira.messages[0] == MAINTENANCE  # what Bezgelor itself says when maintenance mode goes on
    reminder = "Server restart in {} seconds for v0.2.0 (new dungeons). Please finish what you are doing and log out."
    first, *reminders = countdown_of(dorian.messages)
    assert first == reminder.format(12)
    assert len(reminders) == 2 and all(r in [reminder.format(n) for n in (10, 8, 6)] for r in reminders)
    assert reminders[0] != reminders[1]
    assert countdown_of(kira.messages) == [first, reminders[0]]
    # The new release went out only once the last player had left, and nobody was cut off.
    (new_release,) = image_deploys(fake_fly)
    assert new_release["t"] > max(left.values())
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.2.0")
    assert "0 online at cut-over (everyone left" in ran.stdout
    assert "waited" in ran.stdout and "of 12s" in ran.stdout
    assert not world.maintenance()  # off again on the new release


def test_at_the_deadline_the_deploy_goes_on_and_counts_who_was_still_online(
        live_world: Path, fake_fly, world, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("BEZGELOR_DRAIN_MARKS", "2s,1s")
    stayer = world.connect("AFK Annie")
    world.wait_count(1)

    ran = deploy(live_world, "--yes", "--drain", "3s")

    assert ran.returncode == 0, ran.output
    assert image_deploys(fake_fly)
    messages = countdown_of(stayer.messages)
    assert messages[0].startswith("Server restart in 3 seconds for a server update.")
    assert messages[-1] == "Server restarting now for a server update."
    lefts = [m.split(" for ")[0] for m in messages[:-1]]
    assert lefts == sorted(lefts, key=lambda m: -int(m.split()[3]))  # counting down, never up
    assert "1 online at cut-over (deadline reached with 1 online" in ran.stdout
    assert not world.maintenance()


def test_ctrl_c_during_the_countdown_turns_maintenance_off_and_announces_the_cancellation(
        live_world: Path, fake_fly, world, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("BEZGELOR_DRAIN_MARKS", "1m")
    player = world.connect("Kira")
    world.wait_count(1)
    releases = len(fake_fly.releases(APP))
    log = live_world / "deploy.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(REPO), "deploy.full", "--root",
                                 str(live_world), "--skip-backup", "--yes", "--drain", "2m"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ), start_new_session=True)
        try:
            player.wait_for("Server restart in 2 minutes")
            assert world.maintenance()
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
            code = proc.wait(timeout=90)  # long before the 2 minutes are up
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    output = log.read_text()
    assert code in INTERRUPTED, output
    cancelled = player.wait_for("is cancelled")
    assert cancelled == ("The server restart for a server update is cancelled (the deploy was interrupted): "
                         "the server stays up, maintenance is over.")
    assert not world.maintenance()
    assert image_deploys(fake_fly) == [] and len(fake_fly.releases(APP)) == releases  # nothing was deployed
    assert "maintenance mode is off again" in output


def test_a_failed_deploy_after_the_countdown_cancels_it_in_game(
        live_world: Path, fake_fly, world, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("BEZGELOR_DRAIN_MARKS", "1s")
    player = world.connect("Kira")
    world.wait_count(1)
    fake_fly.fault("deploy", "fail_always", error="release command failed - aborting deployment",
                   match=["--strategy"])  # the deploy of the new image, not its build

    ran = deploy(live_world, "--yes", "--drain", "2s")

    assert ran.returncode != 0, ran.output
    assert countdown_of(player.messages)[-1] == "Server restarting now for a server update."
    assert "is cancelled (step deploy failed" in player.wait_for("is cancelled")
    assert not world.maintenance()
    assert "turned off, cancellation announced" in ran.stdout


def test_without_a_drain_players_online_need_a_yes_and_the_summary_says_they_were_cut_off(
        live_world: Path, fake_fly, world) -> None:  # noqa: ANN001
    player = world.connect("Kira")
    world.wait_count(1)

    refused = inv("deploy.full", "--root", str(live_world), "--skip-backup", "--drain", "0")
    assert refused.returncode != 0 and image_deploys(fake_fly) == []  # no terminal to ask on: nothing changed

    ran = deploy(live_world, "--yes", "--drain", "0")
    assert ran.returncode == 0, ran.output
    assert "1 online; the deploy disconnects them without warning" in ran.stdout
    assert "1 online at cut-over, disconnected without a countdown (--drain 0, --yes)" in ran.stdout
    assert countdown_of(player.messages) == [] and not world.maintenance()


def test_an_older_bezgelor_is_deployed_without_a_countdown_only_with_yes(
        deployable_checkout: Path, fake_fly, game_servers, old_world) -> None:  # noqa: ANN001, F811
    assert inv("deploy.full", "--root", str(deployable_checkout), "--yes").returncode == 0
    old_world.attach(fake_fly, APP)
    commit_all(deployable_checkout, "v0.2.0", tag="v0.2.0")

    ran = deploy(deployable_checkout, "--yes", "--drain", "10m")

    assert ran.returncode == 0, ran.output
    assert "has no BezgelorWorld.Portal" in ran.stdout and "(an older Bezgelor)" in ran.stdout
    assert "count unknown" in ran.stdout and "no countdown (--yes)" in ran.stdout
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.2.0")


def test_rollback_app_with_players_online_asks_or_needs_yes(live_world: Path, fake_fly, world) -> None:  # noqa: ANN001
    assert deploy(live_world, "--yes", "--drain", "0").returncode == 0  # v0.2.0 live, nobody online
    world.connect("Kira")
    world.wait_count(1)

    refused = inv("rollback.app", "--root", str(live_world), "--version", "1")
    assert refused.returncode != 0
    assert "1 player(s) are online and the rollback would disconnect them" in refused.stderr
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.2.0")

    ran = inv("rollback.app", "--root", str(live_world), "--version", "1", "--yes")
    assert ran.returncode == 0, ran.output
    assert "players    1 online were disconnected (--yes)" in ran.stdout


@pytest.mark.postgres
def test_the_backup_is_taken_after_the_world_has_emptied_and_before_the_deploy(
        deployable_checkout: Path, fake_fly, game_servers, world, pg_server, game_db, monkeypatch) -> None:  # noqa: ANN001, F811
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    monkeypatch.setenv("BEZGELOR_DB_NAME", game_db)
    monkeypatch.setenv("BEZGELOR_DB_USER", pg_server.user)
    assert inv("deploy.full", "--root", str(deployable_checkout), "--yes").returncode == 0
    fake_fly.set_pg_proxy_target("bezgelor-db", "127.0.0.1", pg_server.port)
    world.attach(fake_fly, APP)
    commit_all(deployable_checkout, "v0.2.0", tag="v0.2.0")
    monkeypatch.setenv("BEZGELOR_DRAIN_MARKS", "5s")
    monkeypatch.setenv("BEZGELOR_DRAIN_POLL", "0.2")
    player = world.connect("Kira")
    world.wait_count(1)
    left: dict[str, float] = {}
    leaver = leave_on(player, "restart in 5 seconds", left)

    ran = inv("deploy.full", "--root", str(deployable_checkout), "--yes", "--drain", "8s")

    assert ran.returncode == 0, ran.output
    leaver.join(timeout=5)
    backup_proxies = fake_fly.calls("proxy")  # the pre-deploy backup reaches the database through fly proxy
    (new_release,) = image_deploys(fake_fly)
    assert backup_proxies and all(left["Kira"] < c["t"] < new_release["t"] for c in backup_proxies)
    assert "backed up to" in ran.stdout
