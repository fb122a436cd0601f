"""The seed's emergency procedures as tasks, against a real BEAM world behind the fake flyctl: restart (warned,
health-gated), stop (and the watcher leaves it stopped), start, the remote console, crash logs, and `inv status`."""

from __future__ import annotations

import json

from bezgelor_tasks.watch.state import decode
from tests.support.deployrun import inv

CHANGING = {"machine restart", "machine stop", "machine start", "secrets import", "secrets unset"}


def _changes(fake_fly):
    return [c["argv"] for c in fake_fly.calls() if c["cmd"] in CHANGING]


def test_a_dry_run_restart_shows_the_countdown_and_the_restart_and_changes_nothing(watched):
    watched.world.connect("Alice")
    ran = inv("restart", "--dry-run", "--root", str(watched.root), "--reason", "a new patch")
    assert ran.returncode == 0, ran.output
    assert "players: 1 online; a countdown of up to 10m would run before the restart" in ran.stdout
    assert f"would run fly machine restart {watched.machine} -a bezgelor --signal SIGTERM --time 60 " \
           "--skip-health-checks" in ran.stdout
    assert "p.set_maintenance_mode(true)" in ran.stdout and "Server restart in 10 minutes for a new patch" in ran.stdout
    assert _changes(watched.fake_fly) == [] and watched.restarts() == []
    assert not watched.world.maintenance()


def test_restart_with_nobody_online_restarts_and_gates_then_status_shows_one_screen(watched):
    ran = inv("restart", "--root", str(watched.root), "--drain", "0")
    assert ran.returncode == 0, ran.output
    assert "players: nobody online" in ran.stdout
    assert len(watched.restarts()) == 1 and watched.world.boots == 2
    assert "ok restarted " in ran.stdout and "healthy after" in ran.stdout
    assert watched.fake_fly.calls("secrets import")                  # it took the deploy lock on Fly, and freed it
    assert not [n for n in watched.fake_fly.app("bezgelor")["secrets"] if n.startswith("BEZGELOR_DEPLOY_LOCK_")]

    watched.world.connect("Alice")
    ran = inv("status", "--root", str(watched.root))
    assert ran.returncode == 0, ran.output
    text = ran.stdout
    assert "release      v1 registry.fly.io/bezgelor:v0.1.0" in text
    assert f"machine      {watched.machine} started in sjc" in text
    for probe in ("health endpoint", "auth hello 127.0.0.1:", "realm hello", "world hello"):
        assert f"probe        ok   {probe}" in text
    assert "players      1" in text and "maintenance  off" in text
    assert "lock         free" in text and "last alert   none" in text
    assert "watcher      no heartbeat seen" in text
    data = json.loads(inv("status", "--json", "--root", str(watched.root)).stdout)
    assert data["probes"]["players"] == 1 and data["probes"]["probes"][3]["latency_ms"] > 0
    assert data["release"]["version"] == 1 and data["errors"] == {}


def test_stop_leaves_the_world_stopped_for_the_watcher_until_start(watched):
    ran = inv("stop", "--root", str(watched.root), "--drain", "0", "--yes")
    assert ran.returncode == 0, ran.output
    assert not watched.world.alive
    assert watched.fake_fly.app("bezgelor")["machines"][0]["state"] == "stopped"

    ran = inv("watch", "--once", "--root", str(watched.root), env={"BEZGELOR_WATCH_FAILURES": "1"})
    assert ran.returncode == 1
    assert "no restart: maintenance mode, marked by" in ran.output
    assert watched.restarts() == [] and watched.receiver.events() == []

    ran = inv("start", "--root", str(watched.root))
    assert ran.returncode == 0, ran.output
    assert watched.world.alive and "healthy after" in ran.stdout
    ran = inv("watch", "--once", "--root", str(watched.root))
    assert ran.returncode == 0, ran.output
    assert "maintenance" not in ran.output

    # `inv maintenance.on` is a person at work too: the watcher leaves even a hung world alone meanwhile.
    assert inv("maintenance.on", "--root", str(watched.root)).returncode == 0
    watched.world.freeze()
    ran = inv("watch", "--once", "--root", str(watched.root), env={"BEZGELOR_WATCH_FAILURES": "1"})
    assert "no restart: maintenance mode, marked by" in ran.output and watched.restarts() == []
    watched.world.thaw()
    assert inv("maintenance.off", "--root", str(watched.root)).returncode == 0
    marks = [decode(n) for n in watched.fake_fly.app("bezgelor")["secrets"] if decode(n) is not None]
    assert marks and not any(m.maintenance_since for m in marks)


def test_console_gets_the_terminal_and_a_dry_run_only_shows_it(bezgelor_checkout, fake_fly):
    ran = inv("console", "--dry-run", "--root", str(bezgelor_checkout))
    assert ran.returncode == 0, ran.output
    assert "would run fly ssh console --pty -a bezgelor -C '/app/bin/bezgelor remote'" in ran.stdout
    assert fake_fly.calls() == []


def test_logs_errors_keeps_the_crashes(bezgelor_checkout, fake_fly):
    fake_fly.add_app("bezgelor")
    lines = ["[info] Running BezgelorPortalWeb.Endpoint with Bandit", "[error] GenServer BezgelorWorld.Zone "
             "terminating", "** (ArgumentError) argument error", "[info] [world] listening on port 24000",
             "Kernel pid terminated (application_controller)"]
    fake_fly.update(lambda s: s["apps"]["bezgelor"].__setitem__("logs", [
        {"timestamp": "2026-12-03T10:00:00Z", "instance": "m1", "region": "sjc", "level": "info", "message": m}
        for m in lines]))
    ran = inv("logs", "--errors", "--root", str(bezgelor_checkout))
    assert ran.returncode == 0, ran.output
    shown = [line for line in ran.stdout.splitlines() if "app[m1]" in line]
    assert len(shown) == 3 and all("listening" not in s and "Bandit" not in s for s in shown)
