"""`inv players`, `inv announce "text"`: the running world, through the release's remote console.

Thin: flags → game.portal → output. The commands are built in game/rpc.py.
"""

from __future__ import annotations

from typing import Any

from invoke import Context, task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={"root": ROOT_HELP, "json": "print the count and the players as JSON",
            "dry_run": "show the remote console command; the count is read anyway (it changes nothing)"})
@user_task
def players(c: Context, root: str | None = None, json: bool = False, dry_run: bool = False) -> None:
    """Who is online in the game world: the count, and the list where Bezgelor's Portal API gives one."""
    from bezgelor_tasks.game.portal import Portal

    sess = session(root, dry_run=dry_run, json_mode=json)
    status = Portal(sess.settings, sess.executor).read(players=True)
    assert status is not None  # a read runs under --dry-run too
    if json:
        sess.ui.emit_json({"app": sess.settings.app, **status.as_json()})
        return
    flag = {True: "on", False: "off", None: "unknown"}[status.maintenance]
    sess.ui.ok(f"{status.count} player(s) online on {sess.settings.app} (maintenance mode {flag})")
    if status.players is None:
        sess.ui.info("this Bezgelor gives no player list (BezgelorWorld.Portal.list_online_players/0)")
    for p in status.players or ():
        sess.ui.line(f"  {p.name or '?':<24} account {p.account:<8} zone {p.zone}")


@task(help={"text": "the message every online player gets (sent as an Elixir string: nothing in it is evaluated)",
            "root": ROOT_HELP, "json": "print the result as JSON", "dry_run": "show the command; send nothing"})
@user_task
def announce(c: Context, text: str, root: str | None = None, json: bool = False, dry_run: bool = False) -> None:
    """Send a system message to every player online (BezgelorWorld.Portal.broadcast_system_message/1)."""
    from bezgelor_tasks.game import rpc
    from bezgelor_tasks.game.portal import Portal

    sess = session(root, dry_run=dry_run, json_mode=json)
    rpc.check_message(text)
    status = Portal(sess.settings, sess.executor).announce(text)
    result: dict[str, Any] = {"app": sess.settings.app, "sent": status is not None, "dry_run": dry_run,
                              "message": text, "players": status.count if status else None}
    if json:
        sess.ui.emit_json(result)
    elif status is not None:
        sess.ui.ok(f"announced to {status.count} player(s) on {sess.settings.app}")
    else:
        sess.ui.info("dry run: nothing was sent.")
