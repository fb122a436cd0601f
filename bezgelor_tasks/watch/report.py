"""What the watcher is doing, for `inv watch.status` and `inv status`: read from Fly, the cache as a fallback.

- its state on the game app (state.py): restarts this hour, an outage under way, "needs a human",
  a maintenance mark, the last alert;
- the watcher app (`<app>-watch`), when deployed: its machine, and its newest cycle line in `fly logs`
  (`watch <time> ok|FAIL ... | heartbeat ok`): the last probe pass and when the heartbeat was last pinged;
- a watcher running on this computer (`inv watch`): its cache `.bezgelor/watch.json`.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Any

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.game.countdown import short
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.watch.state import StateOnFly
from bezgelor_tasks.watch.watcher import read_cache

CYCLE = re.compile(r"watch (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (ok|FAIL)\b(.*?) \| heartbeat (\S+)")


def _epoch(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


def last_cycle_in_logs(lines: list[str]) -> dict[str, Any] | None:
    """The newest cycle line the watcher printed, and the newest one whose heartbeat went out."""
    cycles = [(m, line) for line in lines if (m := CYCLE.search(line))]
    if not cycles:
        return None
    newest = cycles[-1][0]
    pinged = [m for m, _ in cycles if m.group(4) == "ok"]
    return {"at": newest.group(1), "ok": newest.group(2) == "ok", "summary": newest.group(3).strip(),
            "heartbeat": newest.group(4), "heartbeat_at": pinged[-1].group(1) if pinged else None}


def collect(settings: Settings, fly: FlyClient) -> dict[str, Any]:
    """Everything known about the watcher; each part says where it came from."""
    now = time.time()
    out: dict[str, Any] = {"app": settings.watcher_app, "deployed": False, "machine": None, "last_cycle": None,
                           "source": None}
    try:
        out["state"] = StateOnFly(fly, settings.app).read().as_json()
    except UserError as e:
        out["state"], out["state_error"] = None, e.message
    if fly.find_app(settings.watcher_app) is not None:
        out["deployed"] = True
        machines = fly.status(settings.watcher_app).machines
        out["machine"] = {"id": machines[0].id, "state": machines[0].state} if machines else None
        lines = fly.run(commands.logs(settings, settings.watcher_app), app=settings.watcher_app).stdout.splitlines()
        out["last_cycle"], out["source"] = last_cycle_in_logs(lines), f"fly logs -a {settings.watcher_app}"
    if out["last_cycle"] is None:
        cached = read_cache(settings)
        if cached:
            out["last_cycle"] = {"at": cached.get("at"), "ok": cached.get("ok"), "summary": cached.get("action") or "",
                                 "heartbeat": cached.get("heartbeat"), "heartbeat_at": cached.get("heartbeat_at"),
                                 "probes": cached.get("probes")}
            out["source"] = "a watcher on this computer (.bezgelor/watch.json)"
    cycle = out["last_cycle"]
    out["last_cycle_age_s"] = round(now - _epoch(cycle["at"])) if cycle and cycle.get("at") else None
    out["heartbeat_age_s"] = round(now - _epoch(cycle["heartbeat_at"])) if cycle and cycle.get("heartbeat_at") \
        else None
    return out


def lines(data: dict[str, Any]) -> list[str]:
    """The report as text lines."""
    out = []
    where = data["app"] + (" (deployed" + (f", machine {data['machine']['id']} {data['machine']['state']}"
                                          if data["machine"] else "") + ")" if data["deployed"] else " (not deployed)")
    out.append(f"watcher app  {where}")
    cycle = data.get("last_cycle")
    if cycle:
        age = f"{short(data['last_cycle_age_s'])} ago" if data.get("last_cycle_age_s") is not None else "?"
        out.append(f"last probe   {cycle['at']} ({age}): {'ok' if cycle['ok'] else 'FAIL'} {cycle['summary']}".rstrip())
        beat = f"{short(data['heartbeat_age_s'])} ago" if data.get("heartbeat_age_s") is not None else "never"
        out.append(f"heartbeat    {beat} ({cycle['heartbeat']})")
        out.append(f"seen in      {data['source']}")
    else:
        out.append("last probe   none seen: no watcher runs (`inv watch`, or `inv watch.deploy` for one on Fly)")
    state = data.get("state") or {}
    out.append(f"restarts     {state.get('restarts_last_hour', 0)} in the last hour")
    if state.get("down_since"):
        out.append(f"down since   {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(state['down_since']))}")
    if state.get("needs_a_human_since"):
        out.append("NEEDS A HUMAN: the watcher stopped restarting (crash loop)")
    if state.get("maintenance_since"):
        out.append(f"maintenance  marked by {state.get('maintenance_by') or 'someone'} (`inv start` clears it)")
    if state.get("last_alert"):
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state["last_alert_at"] or 0))
        out.append(f"last alert   {state['last_alert']} at {at}")
    return out
