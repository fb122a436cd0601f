"""`inv alert.test`: a test alert through every configured channel (thin: flags → alerts → output)."""

from __future__ import annotations

from invoke import Context, task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={"root": ROOT_HELP, "json": "print what each channel did as JSON",
            "dry_run": "show where it would send; send nothing"})
@user_task
def test(c: Context, root: str | None = None, json: bool = False, dry_run: bool = False) -> None:
    """Send a test alert to every configured channel (Discord, webhook, ntfy, mail) and say which worked."""
    from bezgelor_tasks.alerts import Alerter, events
    from bezgelor_tasks.errors import UserError

    sess = session(root, dry_run=dry_run, json_mode=json)
    alerter = Alerter(sess.settings, sess.executor)
    if not alerter.configured:
        raise UserError("No alert channel is configured, so nothing can be tested.",
                        fix="set one or more of BEZGELOR_ALERT_DISCORD_URL, BEZGELOR_ALERT_WEBHOOK_URL, "
                            "BEZGELOR_ALERT_NTFY_URL, BEZGELOR_ALERT_SMTP_URL with BEZGELOR_ALERT_EMAIL_TO")
    delivery = alerter.send(events.test(sess.settings.app))
    shown = {ch.name: ch.shown() for ch in alerter.channels}
    if json:
        sess.ui.emit_json({"dry_run": dry_run, "sent": delivery.sent, "failed": delivery.failed,
                           "channels": shown})
    else:
        for name in delivery.sent:
            sess.ui.ok(f"{name}: sent ({shown[name]})")
        for name, why in delivery.failed.items():
            sess.ui.error(f"{name}: FAILED ({shown[name]}): {why}")
        if dry_run:
            sess.ui.info("dry run: nothing was sent.")
    if delivery.failed:
        raise UserError(f"{len(delivery.failed)} of {len(alerter.channels)} alert channel(s) failed: "
                        + "; ".join(f"{n}: {w}" for n, w in delivery.failed.items()) + ".",
                        fix="check the URL (or mail settings) of each failed channel; the others work")
