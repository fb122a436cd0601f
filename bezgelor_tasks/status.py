"""`inv status`: one screen — the release that runs, machine state, each probe with its latency, players
online, maintenance mode, the newest backup's age, the last alert, the lock holder, the watcher's heartbeat.

Each part is a section function `(settings, fly, executor) -> dict`; a part that cannot be read says why
instead of stopping the others. Backups at each end (their age) come in through watch/backups.py's sources;
further parts (the last restore drill) are one line in `sections()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bezgelor_tasks.deploy import machines as machines_mod
from bezgelor_tasks.deploy.fly_lock import FlyLock
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.game.countdown import short
from bezgelor_tasks.probe import probe_pass
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.watch import backups, report, world

Section = Callable[[Settings, FlyClient, Executor], dict[str, Any]]


def release(s: Settings, fly: FlyClient, ex: Executor) -> dict[str, Any]:
    machine = machines_mod.assess(fly.status(s.app)).keep
    if machine is None:
        return {"release": None, "machine": None}
    return {"release": {"version": machine.release_version, "image_ref": machine.image_ref or None},
            "machine": {"id": machine.id, "state": machine.state, "region": machine.region,
                        "checks": {c.name: c.status for c in machine.checks}}}


def probes(s: Settings, fly: FlyClient, ex: Executor) -> dict[str, Any]:
    ipv4 = world.public_ipv4(fly, s) or None
    result = probe_pass(s, ipv4, executor=ex, players=True)
    return {"ipv4": ipv4, "probes": result.as_json()}


def backup_ages(s: Settings, fly: FlyClient, ex: Executor) -> dict[str, Any]:
    return {"backups": [a.as_json() for a in backups.ages(s)]}


def lock(s: Settings, fly: FlyClient, ex: Executor) -> dict[str, Any]:
    holders = FlyLock(fly, s.app).read()
    return {"lock": [h.as_json() for h in holders]}


def watcher(s: Settings, fly: FlyClient, ex: Executor) -> dict[str, Any]:
    return {"watcher": report.collect(s, fly)}


def last_drill(s: Settings, fly: FlyClient, ex: Executor) -> dict[str, Any]:
    """The newest restore drill's record, kept in the off-site bucket (no off-site store: nothing to say)."""
    if not s.offsite_url:
        return {}
    from bezgelor_tasks.backup import drill
    from bezgelor_tasks.backup.store import Store

    return {"last_drill": drill.last_drill(Store(s, ex))}


def sections() -> list[tuple[str, Section]]:
    return [("release", release), ("probes", probes), ("backups", backup_ages), ("drill", last_drill),
            ("lock", lock), ("watcher", watcher)]


def collect(settings: Settings, executor: Executor) -> dict[str, Any]:
    fly = FlyClient(settings, executor)
    data: dict[str, Any] = {"app": settings.app, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "errors": {}}
    for name, section in sections():
        try:
            data.update(section(settings, fly, executor))
        except UserError as e:
            data["errors"][name] = e.message
    return data


def lines(data: dict[str, Any]) -> list[str]:
    out = []
    rel, machine = data.get("release"), data.get("machine")
    shown = f"v{rel['version']} {rel['image_ref'] or ''}" if rel else "none"
    out.append(f"release      {shown}".rstrip())
    if machine:
        checks = ", ".join(f"{k}={v}" for k, v in machine["checks"].items()) or "no checks"
        out.append(f"machine      {machine['id']} {machine['state']} in {machine['region']} [{checks}]")
    pp = data.get("probes")
    if pp:
        for p in pp["probes"]:
            out.append(f"probe        {'ok  ' if p['ok'] else 'FAIL'} {p['name']:<32} {p['latency_ms']:>7.1f} ms  "
                       f"{p['detail']}")
        players = pp["players"] if pp["players"] is not None else f"unknown ({pp['players_error'] or 'not read'})"
        out.append(f"players      {players}")
        maint = {True: "ON", False: "off", None: "unknown"}[pp["maintenance"]]
        out.append(f"maintenance  {maint}")
    for b in data.get("backups", []):
        age = "none yet" if b["age_s"] is None else f"{short(b['age_s'])} old ({b['newest']})"
        out.append(f"backup       {b['where']}: {age}")
    if "backups" in data and not data["backups"]:
        out.append("backup       none here (`inv db.backup`)")
    if "last_drill" in data:
        d = data["last_drill"]
        out.append("last drill   " + (f"{'ok' if d['ok'] else 'FAILED'} {d['at'][:16].replace('T', ' ')} UTC, "
                                      f"{d['backup']}, restore took {d.get('restore_seconds') or 0:.1f}s"
                                      if d else "never (`inv db.drill`)"))
    held = data.get("lock")
    if held is not None:
        out.append("lock         " + ("; ".join(f"{h['purpose']} by {h['user']}@{h['host']} for {short(h['age_s'])}"
                                            for h in held) or "free"))
    w = data.get("watcher")
    if w:
        state = w.get("state") or {}
        alert = f"{state['last_alert']}" if state.get("last_alert") else "none"
        out.append(f"last alert   {alert}")
        beat = f"{short(w['heartbeat_age_s'])} ago" if w.get("heartbeat_age_s") is not None else "no heartbeat seen"
        out.append(f"watcher      {beat} ({w.get('source') or 'no watcher runs'})")
    for name, why in data.get("errors", {}).items():
        out.append(f"UNREADABLE   {name}: {why}")
    return out
