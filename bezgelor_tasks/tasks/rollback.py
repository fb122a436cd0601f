"""`inv rollback.*` tasks (thin: flags → library calls → output)."""

from __future__ import annotations

import sys

from invoke import Context, task

from bezgelor_tasks import journal
from bezgelor_tasks.deploy import rollback as rb
from bezgelor_tasks.deploy.state import ensure_state_dir
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.lock import DeployLock
from bezgelor_tasks.tasks._common import session, user_task


@task(help={"root": "the Bezgelor checkout", "json": "print the releases as JSON"})
@user_task
def list(c: Context, root: str | None = None, json: bool = False) -> None:  # noqa: A001 (the task's name)
    """The app's releases, newest first: version, status, image, git version, which one runs now."""
    sess = session(root, json_mode=json)
    s = sess.settings
    releases = FlyClient(s, sess.executor).releases(s.app)
    running = rb.current(releases)
    deployed = journal.deploys_by_version(s.state_dir / "journal.jsonl")
    rows = [{"version": r.version, "status": r.status, "image_ref": r.image_ref, "created_at": r.created_at,
             "git_version": deployed.get(str(r.version), {}).get("version"),
             "current": running is not None and r.version == running.version} for r in releases]
    if json:
        sess.ui.emit_json(rows)
        return
    if not rows:
        sess.ui.info(f"{s.app} has no releases yet.")
    for row in rows:
        mark = "*" if row["current"] else " "
        sess.ui.line(f"{mark} v{row['version']!s:<5} {row['status']:<11} {row['created_at']:<22} "
                     f"{row['image_ref']}  {row['git_version'] or ''}".rstrip())


@task(help={"root": "the Bezgelor checkout", "version": "the release to go back to (default: the previous good one)",
            "yes": "do not ask", "json": "print the result as JSON"})
@user_task
def app(c: Context, root: str | None = None, version: str | None = None, yes: bool = False,
        json: bool = False) -> None:
    """Deploy an earlier good release's image again and health-gate it (database migrations are not undone)."""
    wanted = _release_number(version)
    sess = session(root, json_mode=json)
    s = sess.settings
    fly = FlyClient(s, sess.executor)
    ensure_state_dir(s)
    with DeployLock(s.state_dir, s.app).held("rollback"):
        releases = fly.releases(s.app)
        target = rb.choose_target(releases, version=wanted, app=s.app)
        running = rb.current(releases)
        if running is not None and wanted is not None and target.image_ref == running.image_ref:
            raise UserError(f"Release v{wanted} runs the image {target.image_ref}, which is already live.",
                            fix="pick another release from `inv rollback.list`.")
        sess.ui.info(f"will deploy {target.image_ref} (release v{target.version}) to {s.app}; database migrations "
                     "are not undone (`inv db.rollback` does that)")
        if not yes:
            if not sys.stdin.isatty():
                raise UserError("rollback.app needs confirmation but there is no terminal to ask on.",
                                fix="pass --yes.")
            if input("Roll back? [y/N] ").strip().lower() not in ("y", "yes"):
                raise UserError("Stopped before changing anything.", fix="run again and answer y, or pass --yes.")
        result = rb.roll_back(s, fly, sess.ui, journal.Journal(s.state_dir), target, reason="inv rollback.app")
    if json:
        sess.ui.emit_json(result.as_json())
    sess.ui.ok(f"{s.app} runs release v{target.version}'s image again ({target.image_ref}); "
               f"{result.health.summary()}")


def _release_number(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    digits = str(text).strip().lstrip("vV")
    if not digits.isdigit():
        raise UserError(f"--version {text!r} is not a release number.",
                        fix="pass a number from `inv rollback.list`, e.g. --version 12.")
    return int(digits)
