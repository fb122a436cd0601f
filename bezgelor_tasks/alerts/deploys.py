"""Deploy results as alerts: `inv deploy.full` sends "deployed", "failed" or "rolled back" when channels are set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bezgelor_tasks.alerts import Alerter, Delivery, events

if TYPE_CHECKING:
    from bezgelor_tasks.deploy.full import DeployOutcome
    from bezgelor_tasks.tasks._common import Session


def deploy_alert(sess: Session, outcome: DeployOutcome) -> Delivery | None:
    """One alert for a deploy that ran (not a dry run); None when no channel is configured."""
    alerter = Alerter(sess.settings, sess.executor)
    if outcome.dry_run or not alerter.configured:
        return None
    ctx, app = outcome.ctx, sess.settings.app
    version = ctx.version or "?"
    rollback = outcome.rollback or {}
    details = {"version": version, "release": ctx.release_version, "image": ctx.image_ref or None,
               "seconds": round(outcome.seconds, 1)}
    if outcome.ok:
        event = events.deploy_result(app, "done", version, f"Release v{ctx.release_version} runs {ctx.image_ref}, "
                                     "health-gated.", details)
    elif rollback.get("done"):
        event = events.deploy_result(app, "rolled_back", version,
                                     f"Step {outcome.failed_step} failed; rolled back to release "
                                     f"v{rollback.get('to_release')}: {outcome.error}",
                                     {**details, "failed_step": outcome.failed_step,
                                      "rolled_back_to": rollback.get("to_release")})
    else:
        event = events.deploy_result(app, "failed", version, f"Step {outcome.failed_step} failed: {outcome.error}",
                                     {**details, "failed_step": outcome.failed_step,
                                      "rollback": rollback.get("reason")})
    delivery = alerter.send(event)
    for name, why in delivery.failed.items():
        sess.ui.warn(f"alert to {name} failed: {why}")
    return delivery
