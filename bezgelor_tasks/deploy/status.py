"""`inv deploy.status`: the app, its machines and their checks, the release they run, one health poll,
and more than one machine (more than one game world) reported with the way back to one."""

from __future__ import annotations

from typing import Any

from bezgelor_tasks.deploy import machines, rollback
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.health import health_gate
from bezgelor_tasks.tasks._common import Session

STATUS_HEALTH_TIMEOUT_S = 10.0  # one look, not a wait


def collect(sess: Session) -> dict[str, Any]:
    s = sess.settings
    fly = FlyClient(s, sess.executor)
    app = fly.status(s.app)
    releases = fly.releases(s.app)
    running = rollback.live(app, releases)  # what the machines run
    count = machines.assess(app)
    ipv4 = rollback.public_ipv4(fly, s.app)
    report = health_gate(s, sess.ui, ipv4, timeout=min(STATUS_HEALTH_TIMEOUT_S, s.health_timeout_s))
    return {
        "app": {"name": app.name or s.app, "status": app.status, "hostname": app.hostname, "version": app.version},
        "machines": [{"id": m.id, "state": m.state, "region": m.region, "image_ref": m.image_ref,
                      "release_version": m.release_version,
                      "checks": [{"name": c.name, "status": c.status} for c in m.checks]} for m in app.machines],
        "release": None if running is None else {"version": running.version, "status": running.status,
                                                 "image_ref": running.image_ref, "created_at": running.created_at},
        "ipv4": ipv4 or None,
        "one_machine": count.as_json(s), "machines_problem": count.problem(s) or None,
        "health": report.as_json(),
    }


def show(sess: Session, data: dict[str, Any]) -> None:
    ui = sess.ui
    app = data["app"]
    ui.heading(f"{app['name']}: {app['status'] or 'unknown'} ({app['hostname'] or '-'})")
    rel = data["release"]
    shown = f"v{rel['version']} {rel['image_ref']} ({rel['status']})" if rel else "none running"
    ui.line(f"  release   {shown}")
    ui.line(f"  ipv4      {data['ipv4'] or 'none (run inv deploy.full)'}")
    for m in data["machines"]:
        checks = ", ".join(f"{c['name']}={c['status']}" for c in m["checks"]) or "no checks"
        ui.line(f"  machine   {m['id']} {m['state']} {m['region']} v{m['release_version']} [{checks}]")
    if data["machines_problem"]:
        ui.warn(f"one machine, one world: {data['machines_problem']}")
    h = data["health"]
    (ui.ok if h["ok"] else ui.warn)(f"health: {'all ok' if h['ok'] else h['last_error'] or 'not ok'}")
    for name, st in sorted(h["services"].items()):
        ui.line(f"    {'ok  ' if st == 'ok' else 'FAIL'} {name}: {st}")
