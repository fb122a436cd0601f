"""`inv logs` and `inv audit`: what Kamal users reach for first (thin: flags → library calls → output)."""

from __future__ import annotations

from invoke import Context, task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={"root": ROOT_HELP,
            "service": "only lines that name this service: portal, auth, realm or world (by name or port)",
            "since": "only lines newer than this, e.g. 10m, 2h, 1d (filtered here: `fly logs` has no --since)",
            "machine": "only this machine's lines",
            "errors": "only errors and crashes (error levels, exceptions, exits, OOM kills)",
            "json": "print the lines as JSON"})
@user_task
def logs(c: Context, root: str | None = None, service: str | None = None, since: str | None = None,
         machine: str | None = None, errors: bool = False, json: bool = False) -> None:
    """The app's recent log lines (`fly logs --no-tail`), filtered by game service and age."""
    from bezgelor_tasks.deploy import ops
    from bezgelor_tasks.fly.client import FlyClient

    sess = session(root, json_mode=json, echo=not json)
    s = sess.settings
    cutoff = ops.since_cutoff(since)
    keep = ops.service_filter(s, service)
    lines = ops.read_logs(FlyClient(s, sess.executor), s.app, machine=machine)
    shown = [line for line in lines
             if keep(line) and ops.newer_than(line, cutoff) and (not errors or ops.is_error(line))]
    if json:
        sess.ui.emit_json([{"line": line, "timestamp": ops.timestamp(line)} for line in shown])
        return
    for line in shown:
        sess.ui.line(line)
    if not shown:
        sess.ui.info(f"no {'error ' if errors else ''}log lines{' for ' + service if service else ''}"
                     f"{' since ' + since if since else ''} in {s.app}'s recent logs")


@task(help={"root": ROOT_HELP, "json": "print the events as JSON"})
@user_task
def audit(c: Context, root: str | None = None, json: bool = False) -> None:
    """What was deployed, rolled back and backed up, by whom and when: this checkout's journal and Fly's releases."""
    from bezgelor_tasks.deploy import ops
    from bezgelor_tasks.fly.client import FlyClient

    sess = session(root, json_mode=json, echo=not json)
    s = sess.settings
    events = ops.audit_events(s, FlyClient(s, sess.executor))
    if json:
        sess.ui.emit_json(events)
        return
    sess.ui.line(f"  {'when':<25} {'source':<8} {'what':<18} {'by':<28} detail")
    for e in events:
        sess.ui.line(f"  {e['at']:<25} {e['source']:<8} {e['what']:<18} {e['by'][:28]:<28} {e['detail']}".rstrip())
