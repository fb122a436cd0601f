"""`inv watch` (the watcher, in the foreground), `inv watch --once`, and the watcher on Fly:
`inv watch.deploy`, `watch.status`, `watch.logs`, `watch.remove` (thin: flags → watch/ → output)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Context, task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task

if TYPE_CHECKING:
    from bezgelor_tasks.fly.client import FlyClient


@task(default=True,
      help={"root": ROOT_HELP, "once": "one probe pass, then exit 0 when every probe passes, 1 otherwise",
            "json": "with --once: the probe pass as JSON on stdout",
            "dry_run": "show what the watcher would change (restarts, alerts, heartbeat); change nothing"})
@user_task
def run(c: Context, root: str | None = None, once: bool = False, json: bool = False, dry_run: bool = False) -> None:
    """Watch the world: probe every BEZGELOR_WATCH_INTERVAL, restart it when it hangs, alert; --once for cron/CI."""
    from invoke.exceptions import Exit

    from bezgelor_tasks.watch.watcher import Watcher

    sess = session(root, dry_run=dry_run, json_mode=json)
    watcher = Watcher(sess.settings, sess.executor, sess.ui, jobs=[] if once else None)
    if not once:
        s = sess.settings
        sess.ui.info(f"watching {s.app} every {s.watch_interval_s:g}s: {s.watch_failures} failed passes in a row "
                     f"restart it (at most {s.restart_limit} an hour); Ctrl-C stops")
    cycle = watcher.run(once=once)
    if json:
        sess.ui.emit_json(cycle.as_json())
    if not cycle.probes.ok:
        raise Exit(code=1)


@task(help={"root": ROOT_HELP, "dry_run": "show every flyctl command; change nothing",
            "json": "print the result as JSON", "yes": "do not ask before creating the app and its token"})
@user_task
def deploy(c: Context, root: str | None = None, dry_run: bool = False, json: bool = False, yes: bool = False) -> None:
    """Run the watcher on Fly: its own small always-on app (<app>-watch) with a token scoped to the game app."""
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.game.portal import ask
    from bezgelor_tasks.watch import app as watch_app

    sess = session(root, dry_run=dry_run, json_mode=json)
    s, ui = sess.settings, sess.ui
    fly = FlyClient(s, sess.executor)
    cost, as_of = watch_app.monthly_cost(s)
    ui.info(f"watcher app {s.watcher_app}: one shared-cpu-1x machine with {s.watch_memory_mb} MB, always on: "
            f"about ${cost} a month (prices as of {as_of})")
    ui.info(watch_app.TOKEN_CAN.format(app=s.app, db=s.db_app, watch=s.watcher_app))
    exists = _exists(fly, s.watcher_app, dry_run)
    if not dry_run and not yes:
        from bezgelor_tasks.errors import UserError

        ask(f"Deploy the watcher as {s.watcher_app} (${cost}/month) with a new deploy token for {s.app}?",
            UserError("watch.deploy creates a Fly app and a token, and needs confirmation, but there is no terminal "
                      "to ask on.", fix="pass --yes, or --dry-run to see the commands"))
    result = watch_app.deploy(s, fly, exists=exists)
    if json:
        sess.ui.emit_json({**result, "dry_run": dry_run, "monthly_cost": float(cost)})
    elif dry_run:
        ui.info("dry run: nothing was changed.")
    else:
        ui.ok(f"the watcher runs as {s.watcher_app}: `inv watch.status` shows its last probe and heartbeat")


def _exists(fly: FlyClient, app: str, dry_run: bool) -> bool:
    from bezgelor_tasks.errors import UserError

    try:
        return fly.find_app(app) is not None
    except UserError:
        if dry_run:  # without flyctl or a login, plan for an account without the app
            return False
        raise


@task(help={"root": ROOT_HELP, "json": "print the report as JSON"})
@user_task
def status(c: Context, root: str | None = None, json: bool = False) -> None:
    """The watcher: its last probe pass, restarts this hour, heartbeat age, last alert (read from Fly)."""
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.watch import report

    sess = session(root, json_mode=json, echo=not json)
    data = report.collect(sess.settings, FlyClient(sess.settings, sess.executor))
    if json:
        sess.ui.emit_json(data)
        return
    for line in report.lines(data):
        sess.ui.line(line)


@task(help={"root": ROOT_HELP})
@user_task
def logs(c: Context, root: str | None = None) -> None:
    """The watcher app's recent log lines (one per probe pass)."""
    from bezgelor_tasks.deploy import ops
    from bezgelor_tasks.fly.client import FlyClient

    sess = session(root)
    s = sess.settings
    for line in ops.read_logs(FlyClient(s, sess.executor), s.watcher_app):
        sess.ui.line(line)


@task(help={"root": ROOT_HELP, "dry_run": "show the command; change nothing", "yes": "do not ask"})
@user_task
def remove(c: Context, root: str | None = None, dry_run: bool = False, yes: bool = False) -> None:
    """Remove the watcher app from Fly (its token expires by itself; the game app is not touched)."""
    from bezgelor_tasks.errors import UserError
    from bezgelor_tasks.fly import commands
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.game.portal import ask

    sess = session(root, dry_run=dry_run)
    s = sess.settings
    fly = FlyClient(s, sess.executor)
    if not _exists(fly, s.watcher_app, dry_run) and not dry_run:
        sess.ui.info(f"there is no watcher app {s.watcher_app}: nothing to remove")
        return
    if not dry_run and not yes:
        ask(f"Destroy the Fly app {s.watcher_app}?",
            UserError(f"watch.remove destroys {s.watcher_app} and needs confirmation, but there is no terminal.",
                      fix="pass --yes"))
    fly.run(commands.apps_destroy(s, s.watcher_app), app=s.watcher_app)
    sess.ui.info("dry run: nothing was changed." if dry_run else f"removed {s.watcher_app}")
