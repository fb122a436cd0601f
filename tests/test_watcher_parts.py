"""The watcher's smaller promises, one cycle at a time in-process (real loopback servers, the fake flyctl):
its state survives garbage on Fly, a dead heartbeat receiver never stops it, a lock held too long and an old
backup are alerted once, cron schedules fire in order, and bookkeeping secrets never count as "to deploy"."""

from __future__ import annotations

import io
import json
import os
import time
from datetime import UTC, datetime

from bezgelor_tasks import settings_load
from bezgelor_tasks.deploy.fly_lock import FlyHolder, encode, is_bookkeeping_name
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI
from bezgelor_tasks.watch import jobs, state
from bezgelor_tasks.watch.watcher import Watcher
from tests.fakes.flyctl_fake.commands.common import new_app
from tests.fakes.flyctl_fake.commands.ips import add_ip


def test_the_state_name_round_trips_and_garbage_starts_afresh():
    s = state.WatchState(down_since=1_800_000_000.0, down_what="world", restarts=(1.0, 2.0), human_since=3.0,
                         maintenance_since=4.0, maintenance_by="kira@laptop", last_alert="down", last_alert_at=5.0)
    name = state.encode(s)
    assert name.startswith("BEZGELOR_WATCH_STATE_") and name.replace("_", "").isalnum() and len(name) < 220
    assert state.decode(name) == s
    assert state.decode("BEZGELOR_WATCH_STATE_!!!notbase32") == state.WatchState()
    assert state.decode("CLOAK_KEY") is None
    assert is_bookkeeping_name(name) and not is_bookkeeping_name("CLOAK_KEY")
    recent = s.with_restart(10_000.0, limit=3)
    assert recent.restarts == (10_000.0,)              # restarts older than an hour are forgotten


def test_cron_schedules_fire_in_order_and_an_empty_one_is_off(tmp_path, monkeypatch):
    monkeypatch.setenv("BEZGELOR_RESTART_SCHEDULE", "0 4 * * *")
    s = settings_load.load(tmp_path)
    noon = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()
    schedule = jobs.Schedule(s, jobs.registry(), noon)
    assert schedule.as_json() == {"scheduled restart": {"cron": "0 4 * * *", "next": "2026-12-04T04:00:00Z"}}
    assert schedule.due(noon) == []
    fire = schedule.next_at()
    assert fire is not None and [j.name for j in schedule.due(fire)] == ["scheduled restart"]
    schedule.done(schedule.jobs[0], fire)
    assert schedule.as_json()["scheduled restart"]["next"] == "2026-12-05T04:00:00Z"
    monkeypatch.setenv("BEZGELOR_RESTART_SCHEDULE", "")
    assert jobs.Schedule(settings_load.load(tmp_path), jobs.registry(), noon).jobs == []


def _watcher(tmp_path, fake_fly, **env):
    fake_fly.update(lambda s: add_ip(new_app(s, "bezgelor", "personal"), "v4", "127.0.0.1"))
    root = tmp_path / "checkout"
    root.mkdir(exist_ok=True)
    s = settings_load.load(root, environ={**os.environ, **env})
    out = io.StringIO()
    return Watcher(s, Executor(ui=UI(stream=out)), UI(stream=out), jobs=[]), out


def test_a_dead_heartbeat_receiver_never_stops_the_watcher(tmp_path, fake_fly, game_servers, receiver):
    game_servers.set_behavior("healthy")
    receiver.fail("/heartbeat")
    watcher, out = _watcher(tmp_path, fake_fly)
    watcher.begin()
    first, second = watcher.cycle(), watcher.cycle()
    assert first.probes.ok and second.probes.ok
    assert first.heartbeat == "failed (HTTP 500 from 127.0.0.1)" and receiver.heartbeats() == 2
    cache = json.loads((watcher.s.state_dir / "watch.json").read_text())
    assert cache["ok"] is True and cache["heartbeat_at"] is None


def test_a_lock_held_too_long_and_an_old_backup_are_alerted_once(tmp_path, fake_fly, game_servers, receiver):
    game_servers.set_behavior("healthy")
    watcher, _ = _watcher(tmp_path, fake_fly, BEZGELOR_ALERT_LOCK_AGE="1h", BEZGELOR_BACKUP_MAX_AGE="36h")
    stale = FlyHolder("ci", "runner-3", time.time() - 3 * 3600 + 60, "deploy", "deploy v0.3.0", "ffee00")
    fake_fly.update(lambda s: s["apps"]["bezgelor"]["secrets"].__setitem__(
        encode(stale), {"digest": "0" * 16, "status": "Staged"}))
    backup = watcher.s.backups_path / "20261130T040000Z_bezgelor-db_bezgelor"
    backup.mkdir(parents=True)
    (backup / "manifest.json").write_text(json.dumps({"created_at": "2026-11-30T04:00:00+00:00", "archive": "x",
                                                      "verifications": [{"tier": "standard", "ok": True}]}))
    watcher.begin()
    watcher.cycle()
    watcher.last_slow = 0.0     # the slow checks again (they run every ten minutes)
    watcher.cycle()
    assert receiver.events() == ["lock_held", "backup_old"]
    lock = receiver.wait_for_event("lock_held")
    assert "deploy by ci@runner-3" in lock["text"] and "inv lock.release" in lock["text"]
    assert receiver.wait_for_event("backup_old")["details"]["where"].startswith("local backups")
