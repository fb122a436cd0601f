"""The seed's emergency procedures: `inv restart`, `inv stop`, `inv start`, `inv console`, and `inv status`
(thin: flags → watch/world.py, status.py → output)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke import Context, task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task

if TYPE_CHECKING:
    from bezgelor_tasks.tasks._common import Session

DRAIN_HELP = ("warn the players first: in-game countdown of this long (5m, 30s; 0: none, ask instead); "
              "default BEZGELOR_DRAIN")
COMMON = {"root": ROOT_HELP, "dry_run": "show every command; change nothing", "json": "print the result as JSON",
          "yes": "go on without asking (players online without a countdown, or an unknown count)",
          "reason": "why, as announced in game"}


def _context(sess: Session) -> Any:
    from bezgelor_tasks.deploy.context import DeployContext
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.journal import Journal

    s = sess.settings
    return DeployContext(s, FlyClient(s, sess.executor), sess.ui, sess.executor, Journal(s.state_dir, sess.executor))


def _finish(sess: Session, change: Any, json: bool) -> None:
    from bezgelor_tasks.errors import UserError

    if json:
        sess.ui.emit_json(change.as_json())
    elif change.dry_run:
        sess.ui.info("dry run: nothing was changed.")
    elif change.ok:
        sess.ui.ok(change.summary)
    if not change.ok:
        raise UserError(f"{sess.settings.app}: {change.summary}.",
                        fix="read `inv logs --errors`; `inv status` shows every probe")


@task(help={**COMMON, "drain": DRAIN_HELP})
@user_task
def restart(c: Context, root: str | None = None, drain: str | None = None, reason: str = "maintenance",
            dry_run: bool = False, json: bool = False, yes: bool = False) -> None:
    """Restart the game world: players warned (countdown), the machine restarted, health-gated."""
    from bezgelor_tasks.watch import world

    sess = session(root, dry_run=dry_run, json_mode=json)
    _finish(sess, world.player_aware(_context(sess), "restart", drain=drain, reason=reason, yes=yes), json)


@task(help={**COMMON, "drain": DRAIN_HELP})
@user_task
def stop(c: Context, root: str | None = None, drain: str | None = None, reason: str = "maintenance",
         dry_run: bool = False, json: bool = False, yes: bool = False) -> None:
    """Stop all traffic: maintenance on, countdown, stop the machine (the watcher leaves it stopped)."""
    from bezgelor_tasks.watch import world

    sess = session(root, dry_run=dry_run, json_mode=json)
    _finish(sess, world.player_aware(_context(sess), "stop", drain=drain, reason=reason, yes=yes), json)


@task(help={"root": ROOT_HELP, "dry_run": "show every command; change nothing", "json": "print the result as JSON"})
@user_task
def start(c: Context, root: str | None = None, dry_run: bool = False, json: bool = False) -> None:
    """Start the stopped game machine, health-gated (and let the watcher watch it again)."""
    from bezgelor_tasks.watch import world

    sess = session(root, dry_run=dry_run, json_mode=json)
    _finish(sess, world.start(_context(sess)), json)


@task(help={"root": ROOT_HELP, "dry_run": "show the command; open nothing"})
@user_task
def console(c: Context, root: str | None = None, dry_run: bool = False) -> None:
    """A remote IEx shell on the running release (fly ssh console --pty ... remote): it takes the terminal."""
    from invoke.exceptions import Exit

    from bezgelor_tasks.fly import operator_commands

    sess = session(root, dry_run=dry_run)
    code = sess.executor.run(operator_commands.remote_console(sess.settings), check=False).returncode
    if code:
        raise Exit(code=code)


@task(help={"root": ROOT_HELP, "json": "print everything as JSON"})
@user_task
def status(c: Context, root: str | None = None, json: bool = False) -> None:
    """One screen: release, machine, each probe with latency, players, maintenance, backups, lock, alerts, watcher."""
    from bezgelor_tasks import status as status_mod

    sess = session(root, json_mode=json, echo=False)
    data = status_mod.collect(sess.settings, sess.executor)
    if json:
        sess.ui.emit_json(data)
        return
    sess.ui.heading(f"{sess.settings.app} at {data['at']}")
    for line in status_mod.lines(data):
        sess.ui.line(f"  {line}")
