"""An operator talks to the players: `inv players`, `inv announce`, `inv maintenance.on/off`.

A real BEAM plays the game world (tests/support/world_node.exs) and the fake flyctl runs
`ssh console -C "/app/bin/bezgelor rpc EXPR"` on it, as Fly's SSH server and the release script do.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.flyctl_fake.commands.common import new_app, new_machine
from tests.support.deployrun import inv

APP = "bezgelor"
HOSTILE = 'Restart at 5 "sharp" #{System.halt()} C:\\temp\\ \\#{x}\nsecond line: it\'s fine'


def running_app(fake_fly: Any) -> None:
    """An app with one started machine (what `fly ssh console` needs)."""
    def go(state: dict[str, Any]) -> None:
        app = new_app(state, APP, "personal")
        app["status"] = "deployed"
        app["machines"].append(new_machine(app, "sjc"))
    fake_fly.update(go)


def rpc_calls(fake_fly: Any) -> list[str]:
    return [c["argv"][-1] for c in fake_fly.calls("ssh console")]


def test_players_shows_who_is_online(fake_fly, world) -> None:  # noqa: ANN001
    running_app(fake_fly)
    world.attach(fake_fly, APP)
    world.connect("Kira")
    world.connect("Dorian Walker")
    world.wait_count(2)

    ran = inv("players")
    assert ran.returncode == 0, ran.output
    assert "2 player(s) online on bezgelor (maintenance mode off)" in ran.stdout
    assert "Kira" in ran.stdout and "Dorian Walker" in ran.stdout

    as_json = json.loads(inv("players", "--json").stdout)
    assert as_json["count"] == 2 and as_json["maintenance"] is False
    assert sorted(p["character_name"] for p in as_json["players"]) == ["Dorian Walker", "Kira"]


def test_a_hostile_announcement_arrives_verbatim_and_halts_nothing(fake_fly, world) -> None:  # noqa: ANN001
    running_app(fake_fly)
    world.attach(fake_fly, APP)
    player = world.connect("Kira")
    world.wait_count(1)

    dry = inv("announce", HOSTILE, "--dry-run")
    assert dry.returncode == 0, dry.output
    assert "would run fly ssh console -a bezgelor -C" in dry.stdout and rpc_calls(fake_fly) == []

    ran = inv("announce", HOSTILE, "--json")
    assert ran.returncode == 0, ran.output
    assert json.loads(ran.stdout) == {"app": APP, "sent": True, "dry_run": False, "message": HOSTILE, "players": 1}
    assert player.next_message() == HOSTILE  # byte for byte: quotes, #{...}, backslashes, the line break
    assert world.alive and world.count() == 1  # System.halt() was text, not code
    assert not player.closed_by_server.is_set()


def test_maintenance_on_tells_players_and_off_clears_the_flag(fake_fly, world) -> None:  # noqa: ANN001
    running_app(fake_fly)
    world.attach(fake_fly, APP)
    player = world.connect("Kira")
    world.wait_count(1)

    assert inv("maintenance.on", "--dry-run").returncode == 0 and not world.maintenance()
    on = inv("maintenance.on")
    assert on.returncode == 0, on.output
    assert "maintenance mode is on on bezgelor (1 player(s) online)" in on.stdout
    assert player.next_message() == "Server entering maintenance mode. Please log out."  # Bezgelor's own text
    assert world.maintenance()

    off = inv("maintenance.off", "--json")
    assert off.returncode == 0, off.output
    assert json.loads(off.stdout)["maintenance"] is False and not world.maintenance()


def test_an_older_bezgelor_without_the_portal_api_is_named_plainly(fake_fly, old_world) -> None:  # noqa: ANN001
    running_app(fake_fly)
    old_world.attach(fake_fly, APP)
    ran = inv("players")
    assert ran.returncode == 1
    assert "has no BezgelorWorld.Portal with online_player_count/0 (an older Bezgelor)" in ran.stderr
    assert "Fix: update Bezgelor" in ran.stderr and "Traceback" not in ran.output


def test_when_the_remote_call_fails_it_says_so(fake_fly) -> None:  # noqa: ANN001
    running_app(fake_fly)  # no world node: the release's node cannot be reached
    ran = inv("announce", "hello")
    assert ran.returncode == 1
    assert "The remote console call to bezgelor failed" in ran.stderr and ":nodedown" in ran.stderr
    assert "Traceback" not in ran.output
