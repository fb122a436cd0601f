"""`inv lock.status` / `inv lock.release`: the deploy lock on Fly (every deployer's) and this checkout's."""

from __future__ import annotations

from typing import Any

from invoke import Context, task

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={"root": ROOT_HELP, "json": "print the holders as JSON"})
@user_task
def status(c: Context, root: str | None = None, json: bool = False) -> None:
    """Who holds the deploy lock: on Fly (seen by every deployer) and in this checkout."""
    from bezgelor_tasks.deploy.fly_lock import FlyLock
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.lock import DeployLock, human_age

    sess = session(root, json_mode=json, echo=not json)
    s = sess.settings
    shared = FlyLock(FlyClient(s, sess.executor), s.app)
    on_fly = shared.read()
    local = DeployLock(s.state_dir, s.app, sess.executor)
    here = local.read()
    if json:
        data: dict[str, Any] = {"app": s.app, "fly": [h.as_json() for h in on_fly],
                                "local": None if here is None else {"holder": here.name, "purpose": here.purpose,
                                                                    "age_s": round(here.age(), 1),
                                                                    "stale": local.is_stale(here) or None}}
        sess.ui.emit_json(data)
        return
    if not on_fly:
        sess.ui.ok(f"{s.app}: no deploy lock on Fly")
    for h in on_fly:
        stale = h.age() > shared.max_age
        (sess.ui.warn if not stale else sess.ui.info)(
            f"{s.app}: locked on Fly - {h.describe()}" + (" (stale: the next deploy takes it over)" if stale else ""))
    if here is not None:
        why = local.is_stale(here)
        sess.ui.info(f"this checkout: {here.purpose} by {here.name} for {human_age(here.age())}"
                     + (f" (stale: {why})" if why else ""))


@task(help={"root": ROOT_HELP, "yes": "do not ask (scripts)", "dry_run": "show what would be freed; free nothing"})
@user_task
def release(c: Context, root: str | None = None, yes: bool = False, dry_run: bool = False) -> None:
    """Free the deploy lock (a deploy that died holding it): on Fly and in this checkout."""
    from bezgelor_tasks import files
    from bezgelor_tasks.deploy.fly_lock import FlyLock
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.lock import DeployLock
    from bezgelor_tasks.ui import confirm

    sess = session(root, dry_run=dry_run)
    s = sess.settings
    shared = FlyLock(FlyClient(s, sess.executor), s.app)
    found = shared.read()
    local = DeployLock(s.state_dir, s.app, sess.executor)
    here = local.read()
    if not found and here is None:
        sess.ui.ok(f"{s.app}: no deploy lock to free")
        return
    for h in found:
        sess.ui.warn(f"will free the lock on Fly: {h.describe()}")
    if here is not None:
        sess.ui.warn(f"will free this checkout's lock file {local.path}: {here.purpose} by {here.name}")
    if not yes and not dry_run and not confirm(
            "Free it? A deploy still running would then not be kept apart.",
            no_terminal=UserError("lock.release needs a confirmation and there is no terminal to ask on; the lock "
                                  "was left as it was.", fix="pass --yes (or --dry-run to see what it frees).")):
        raise UserError("Left the lock as it was.", fix="run again and answer y, or pass --yes.")
    shared.release_all()
    if here is not None:
        files.remove(sess.executor, local.path)
    sess.ui.ok(f"{s.app}: deploy lock freed" if not dry_run else "dry run: no lock was freed.")
