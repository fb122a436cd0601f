"""`inv maintenance.on` / `inv maintenance.off`: Bezgelor's maintenance flag (BezgelorWorld.Portal).

In Bezgelor, maintenance mode broadcasts "Server entering maintenance mode. Please log out." and flags
the server (the portal shows it); it does not itself refuse new logins at the auth server. The watcher is
told too (a mark kept on Fly, watch/state.py): it restarts nothing while the mark is there.
"""

from __future__ import annotations

from invoke import Context, task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task

HELP = {"root": ROOT_HELP, "json": "print the result as JSON", "dry_run": "show the command; change nothing"}


def _set(root: str | None, on: bool, json: bool, dry_run: bool) -> None:
    from bezgelor_tasks.game.portal import Portal

    sess = session(root, dry_run=dry_run, json_mode=json)
    status = Portal(sess.settings, sess.executor).set_maintenance(on)
    if status is not None:  # tell the watcher: no automatic restart while a person has the world in maintenance
        from bezgelor_tasks.watch.world import mark_maintenance

        mark_maintenance(sess.settings, sess.executor, on)
    word = "on" if on else "off"
    if json:
        sess.ui.emit_json({"app": sess.settings.app, "maintenance": on if status else None, "dry_run": dry_run,
                           "players": status.count if status else None})
    elif status is not None:
        sess.ui.ok(f"maintenance mode is {word} on {sess.settings.app} ({status.count} player(s) online)")
    else:
        sess.ui.info("dry run: nothing was changed.")


@task(help=HELP)
@user_task
def on(c: Context, root: str | None = None, json: bool = False, dry_run: bool = False) -> None:
    """Turn Bezgelor's maintenance mode on (players are told to log out; logins are not refused)."""
    _set(root, True, json, dry_run)


@task(help=HELP)
@user_task
def off(c: Context, root: str | None = None, json: bool = False, dry_run: bool = False) -> None:
    """Turn Bezgelor's maintenance mode off."""
    _set(root, False, json, dry_run)
