"""`inv deploy.*` tasks (thin: flags → library calls → output)."""

from __future__ import annotations

from typing import Any

from invoke import Context, task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(default=True,  # `inv deploy` runs it (as `kamal deploy` does)
      help={"root": ROOT_HELP,
            "dry_run": "print the plan with every command's argv; change nothing",
            "json": "print the plan or the result as JSON on stdout",
            "yes": "do not ask before changing anything (CI)",
            "skip_backup": "do not back up the database before the release command migrates it",
            "drain": "wait up to this long for players to leave, with an in-game countdown (10m, 30s; "
                     "0: do not wait); default BEZGELOR_DRAIN",
            "reason": "why the server restarts, as announced in game; default BEZGELOR_DRAIN_REASON"})
@user_task
def full(c: Context, root: str | None = None, dry_run: bool = False, json: bool = False, yes: bool = False,
         skip_backup: bool = False, drain: str | None = None, reason: str | None = None) -> None:
    """Provision and deploy: app, database, IPv4, secrets, drain, backup, image, release, health gate; resumable."""
    from bezgelor_tasks.deploy import full as full_deploy

    sess = session(root, dry_run=dry_run, json_mode=json)
    outcome = full_deploy.deploy_full(sess, yes=yes, skip_backup=skip_backup, drain=drain, reason=reason)
    if json:
        sess.ui.emit_json(outcome.as_json())
    if not dry_run and any(r.state != "pending" for r in outcome.reports):
        full_deploy.show_summary(sess, outcome)
        from bezgelor_tasks.alerts.deploys import deploy_alert

        deploy_alert(sess, outcome)   # "deployed", "failed" or "rolled back", when alert channels are set
    if not outcome.ok:
        raise full_deploy.final_error(outcome)


@task(help={"root": ROOT_HELP, "json": "print the status as JSON"})
@user_task
def status(c: Context, root: str | None = None, json: bool = False) -> None:
    """The app, its machines and checks, the current release, and one health poll."""
    from bezgelor_tasks.deploy import status as deploy_status

    sess = session(root, json_mode=json)
    data: dict[str, Any] = deploy_status.collect(sess)
    if json:
        sess.ui.emit_json(data)
    else:
        deploy_status.show(sess, data)

