"""`inv rollback.*` tasks (thin: flags → library calls → output)."""

from __future__ import annotations

from invoke import Context, task

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={"root": ROOT_HELP, "json": "print the releases as JSON"})
@user_task
def list(c: Context, root: str | None = None, json: bool = False) -> None:  # noqa: A001 (the task's name)
    """The app's releases, newest first: status, health (Fly's and our gate's), newest migration, safe now."""
    from bezgelor_tasks.deploy import rollback as rb
    from bezgelor_tasks.fly.client import FlyClient

    sess = session(root, json_mode=json)
    s = sess.settings
    fly = FlyClient(s, sess.executor)
    releases = fly.releases(s.app)
    rows, database = rb.release_rows(s, fly, releases)
    if json:
        sess.ui.emit_json(rows)  # each row's migration_check names the database's current migration
        return
    if not rows:
        sess.ui.info(f"{s.app} has no releases yet.")
        return
    sess.ui.info(f"database: newest applied migration {database.current or 'none'}" if database.applied is not None
                 else f"database: migrations unreadable ({database.error})")
    sess.ui.line(f"  {'release':<8} {'status':<11} {'date':<22} {'health':<30} {'newest migration':<17} "
                 f"{'safe now':<30} image  (git version)")
    for row in rows:
        mark = "*" if row["current"] else ("+" if row["offered"] else " ")
        newest = row["newest_migration"] or ("none" if row["migrations_recorded"] else "?")
        sess.ui.line(f"{mark} v{row['version']!s:<7} {row['status']:<11} {row['created_at']:<22} "
                     f"{row['health'][:30]:<30} {newest:<17} {row['safe_now']:<30} {row['image_ref']}  "
                     f"{row['git_version'] or ''}".rstrip())
    offered = [f"v{r['version']}" for r in rows if r["offered"]]
    sess.ui.line(f"  * what the machines run; + offered as a rollback target (healthy): {', '.join(offered) or 'none'}")


@task(default=True,  # `inv rollback` runs it
      help={"root": ROOT_HELP, "version": "the release to go back to (default: the previous good one)",
            "yes": "do not ask", "json": "print the result as JSON",
            "force": "roll back even when the database is ahead of the release's code or its migrations are "
                     "unknown (you accept that the old code runs on a schema it may not know)",
            "dry_run": "judge the rollback (target, migrations, players) and show the deploy; change nothing"})
@user_task
def app(c: Context, root: str | None = None, version: str | None = None, yes: bool = False,
        json: bool = False, force: bool = False, dry_run: bool = False) -> None:
    """Deploy an earlier good release's image again and health-gate it; refused when the database is ahead
    of that release's migrations (`inv db.rollback --to V` first, or --force)."""
    from bezgelor_tasks.deploy import rollback as rb
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.game.portal import Portal, confirm_disconnect
    from bezgelor_tasks.journal import Journal

    wanted = _release_number(version)
    sess = session(root, dry_run=dry_run, json_mode=json)
    s, ui = sess.settings, sess.ui
    fly = FlyClient(s, sess.executor)
    plan = rb.plan_rollback(s, fly, ui, Journal(s.state_dir, sess.executor), wanted, force=force)
    players = confirm_disconnect(Portal(s, sess.executor), ui, yes=yes, action="the rollback",
                                 hint=" (warn them first: inv announce \"...\")", dry_run=dry_run)
    result = rb.rollback_app(s, fly, ui, plan, yes=yes)
    target, check = plan.target, plan.check
    if result is None:  # dry run
        if json:
            ui.emit_json({"dry_run": True, "to_release": target.version, "image_ref": target.image_ref,
                          "migration_check": check.as_json(), "forced": plan.forced, "players": players.as_json()})
        return
    if json:
        ui.emit_json({**result.as_json(), "players": players.as_json()})
    ui.heading("Summary")
    ui.line(f"  players    {players.summary()}")
    ui.line(f"  release    v{target.version} ({target.image_ref}), now release v{result.release_version}")
    ui.line(f"  migrations target newest {check.target_newest or ('none' if check.record else 'unknown')}, "
            f"database {check.database.current or ('unknown' if check.database.applied is None else 'none')}")
    if plan.forced:
        ui.warn(f"  FORCED past the migration check: {check.safety.reason} (recorded in the journal)")
    ui.ok(f"{s.app} runs release v{target.version}'s image again ({target.image_ref}); "
          f"{result.health.summary()}")


def _release_number(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    digits = str(text).strip().lstrip("vV")
    if not digits.isdigit():
        raise UserError(f"--version {text!r} is not a release number.",
                        fix="pass a number from `inv rollback.list`, e.g. --version 12.")
    return int(digits)
