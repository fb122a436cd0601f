"""Keeping the world up while nobody watches: the watcher against a real BEAM world on loopback, the fake
flyctl's machine restart restarting it, real alert and heartbeat receivers."""

from __future__ import annotations

import json
import re
import time

from bezgelor_tasks.deploy.fly_lock import FlyHolder, encode
from tests.support.deployrun import inv
from tests.support.inv import INTERRUPTED


def test_a_frozen_world_is_restarted_once_and_the_operator_gets_down_then_recovered(watched):
    watcher = watched.watcher()
    watcher.wait_for("heartbeat ok")
    beats_before = watched.receiver.heartbeats()
    watched.world.freeze()   # the BEAM stops; the kernel still accepts connections

    recovered = watched.receiver.wait_for_event("recovered")
    output = watcher.wait_for("| restarted ")
    assert "FAIL 3/3" in output and "FAIL 4/3" not in output          # detected within BEZGELOR_WATCH_FAILURES
    assert len(watched.restarts()) == 1                              # restarted once
    restart = watched.restarts()[0]
    assert restart["signal"] == "SIGTERM" and restart["time"] == "60" and restart["machine"] == watched.machine
    events = watched.receiver.events()
    assert events == ["down", "restart_done", "recovered"], events
    down = watched.receiver.wait_for_event("down")
    assert down["title"] == "bezgelor is down: health endpoint, auth, realm, world"
    assert "world hello 127.0.0.1:" in down["text"] and "no ServerHello within 0.5s" in down["text"]
    assert recovered["title"].startswith("bezgelor recovered after ") and recovered["details"]["down_for_s"] > 0
    discord = [r.json()["embeds"][0]["title"] for r in watched.receiver.at("/discord")]
    assert len(discord) == 3 and discord[0] == down["title"] and discord[2] == recovered["title"]
    assert discord[1].startswith("bezgelor restarted: every probe passes ")
    assert watched.receiver.heartbeats() > beats_before              # it pinged all along

    watcher.wait_for("| heartbeat ok", timeout=30)
    watcher.kill()                                                    # the watcher dies: heartbeats stop
    stopped_at = watched.receiver.heartbeats()
    time.sleep(1.0)   # five intervals of silence: nothing may arrive
    assert watched.receiver.heartbeats() == stopped_at
    # Nothing secret in what the watcher printed: the alert URLs are masked.
    assert watched.receiver.url("/hook") not in watcher.output


def test_a_world_that_dies_on_every_boot_is_restarted_restart_limit_times_then_needs_a_human(watched):
    """Even when the watcher itself is killed and started again in between: what it needs is on Fly."""
    watched.world.crash_on_boot = True
    watched.world.freeze()
    settings = {"BEZGELOR_RESTART_LIMIT": "2", "BEZGELOR_HEALTH_TIMEOUT": "1"}
    first = watched.watcher(**settings)
    first.wait_for("| restarted ")
    first.kill()                                                      # killed mid-outage
    second = watched.watcher(**settings)

    crash = watched.receiver.wait_for_event("crash_loop")
    assert crash["title"] == "bezgelor needs a human: 2 restarts in the last hour"
    # It goes on probing, and never restarts again (nor repeats an alert).
    deadline = time.monotonic() + 60
    while second.output.count("no restart: 2 restarts in the last hour") < 3:
        assert time.monotonic() < deadline, second.output
        time.sleep(0.05)
    assert len(watched.restarts()) == 2
    events = watched.receiver.events()
    assert events == ["down", "restart_failed", "restart_failed", "crash_loop"], events  # one "down" for both
    assert second.interrupt() in INTERRUPTED                                  # Ctrl-C stops it
    assert "interrupted" in second.output


def test_no_restart_while_a_deploy_holds_the_lock(watched):
    holder = FlyHolder("ci", "runner-7", time.time(), "deploy", "deploy v0.2.0", "abc123")
    watched.fake_fly.update(lambda s: s["apps"]["bezgelor"]["secrets"].__setitem__(
        encode(holder), {"digest": "0" * 16, "status": "Staged"}))
    watched.world.freeze()
    ran = inv("watch", "--once", "--root", str(watched.root), env={"BEZGELOR_WATCH_FAILURES": "1"})
    assert ran.returncode == 1, ran.output
    assert "no restart: a deploy holds the lock (deploy by ci@runner-7" in ran.output
    assert watched.restarts() == []
    assert watched.receiver.events() == []        # a deploy restarting the world is not an outage


def test_a_scheduled_restart_waits_for_the_players_then_restarts_and_alerts(watched):
    alice, bob = watched.world.connect("Alice"), watched.world.connect("Bob")
    fire = time.gmtime(time.time() + 8)   # after the watcher has started, even on a loaded machine
    cron = f"{fire.tm_sec} {fire.tm_min} {fire.tm_hour} * * *"   # once a day, at that second (UTC)
    watcher = watched.watcher(BEZGELOR_RESTART_SCHEDULE=cron, BEZGELOR_DRAIN="60s", BEZGELOR_DRAIN_MARKS="30s")
    announced = alice.wait_for("Server restart in 1 minute for a scheduled restart", timeout=60)
    assert "Please finish what you are doing" in announced
    assert bob.wait_for("Server restart in 1 minute")
    assert watched.world.maintenance()
    assert watched.restarts() == []                # not while they play
    alice.leave()
    bob.leave()                                    # the world is empty: no need to wait out the minute

    done = watched.receiver.wait_for_event("job_done")
    assert done["title"] == "bezgelor: scheduled restart done"
    assert done["details"]["countdown"]["players_at_start"] == 2
    assert done["details"]["countdown"]["emptied"] is True
    assert len(watched.restarts()) == 1
    output = watcher.wait_for("job scheduled restart done")
    assert "down" not in watched.receiver.events()  # a restart on purpose is not an outage
    during = output.split("job scheduled restart started")[1].split("job scheduled restart done")[0]
    assert not re.search(r"FAIL [1-9]/3", during)   # the world went down on purpose: failures not counted


def test_watch_once_passes_a_healthy_world_and_fails_a_frozen_one(watched):
    ran = inv("watch", "--once", "--json", "--root", str(watched.root))
    assert ran.returncode == 0, ran.output
    result = json.loads(ran.stdout)
    assert result["ok"] and [p["name"].split()[0] for p in result["probes"]["probes"]] == \
        ["health", "auth", "realm", "world"]
    assert all(p["latency_ms"] > 0 for p in result["probes"]["probes"])
    watched.world.freeze()
    ran = inv("watch", "--once", "--json", "--root", str(watched.root))
    assert ran.returncode == 1
    failing = [p for p in json.loads(ran.stdout)["probes"]["probes"] if not p["ok"]]
    assert {p["name"].split()[0] for p in failing} == {"health", "auth", "realm", "world"}
    assert re.search(r"FAIL 1/3 ", ran.stderr)


def test_a_listener_that_accepts_but_never_greets_fails_watch_once(tmp_path, game_servers, fake_fly):
    """What a frozen world looks like to a TCP connect: accepted. The game-level probe fails it."""
    from tests.fakes.flyctl_fake.commands.common import new_app
    from tests.fakes.flyctl_fake.commands.ips import add_ip

    fake_fly.update(lambda s: add_ip(new_app(s, "bezgelor", "personal"), "v4", "127.0.0.1"))
    game_servers.set_behavior("healthy")
    game_servers.mute()
    ran = inv("watch", "--once", "--json", "--root", str(tmp_path))
    assert ran.returncode == 1, ran.output
    failing = {p["name"].split()[0]: p["detail"] for p in json.loads(ran.stdout)["probes"]["probes"] if not p["ok"]}
    assert set(failing) == {"auth", "realm", "world"}
    assert all("no ServerHello within 2s" in d for d in failing.values())
