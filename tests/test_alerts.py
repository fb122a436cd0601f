"""Alerts reach the operator on every channel they configured — real loopback receivers, a real SMTP server
with STARTTLS — once per incident, and a channel that fails is reported on the others, never shown."""

from __future__ import annotations

import io

from bezgelor_tasks import settings_load
from bezgelor_tasks.alerts import Alerter, events
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI
from tests.support.deployrun import inv


def _alerter(tmp_path, dry_run=False):
    s = settings_load.load(tmp_path)
    out = io.StringIO()
    return Alerter(s, Executor(ui=UI(stream=out), dry_run=dry_run)), out


def test_alert_test_reaches_discord_the_webhook_ntfy_and_mail(bezgelor_checkout, receiver, mailbox):
    ran = inv("alert.test", "--root", str(bezgelor_checkout))
    assert ran.returncode == 0, ran.output
    for channel in ("discord", "webhook", "ntfy", "email"):
        assert f"ok {channel}: sent" in ran.stdout
    discord = receiver.at("/discord")[0].json()
    assert discord["embeds"][0]["title"] == "bezgelor: test alert from bezgelor-tasks"
    hook = receiver.at("/hook")[0].json()
    assert {k: hook[k] for k in ("source", "schema", "app", "event", "severity")} == \
        {"source": "bezgelor-tasks", "schema": 1, "app": "bezgelor", "event": "test", "severity": "info"}
    ntfy = receiver.at("/ntfy/bezgelor-alerts")[0]
    assert ntfy.headers["Title"] == "bezgelor: test alert from bezgelor-tasks" and b"alert.test" in ntfy.body
    mail = mailbox.wait_for(1)[0]
    assert mail["Subject"] == "[bezgelor] bezgelor: test alert from bezgelor-tasks"
    assert mail["To"] == "operator@example.com" and mailbox.logins == [mailbox.USER]
    # The URLs and the SMTP password are secrets: never shown.
    for secret in (receiver.url("/discord"), receiver.url("/hook"), mailbox.PASSWORD):
        assert secret not in ran.output


def test_a_dry_run_sends_nothing(bezgelor_checkout, receiver):
    ran = inv("alert.test", "--root", str(bezgelor_checkout), "--dry-run")
    assert ran.returncode == 0, ran.output
    assert "would send the alert" in ran.stdout and "dry run: nothing was sent" in ran.stdout
    assert receiver.requests == []


def test_no_channel_is_a_short_error_naming_the_settings(bezgelor_checkout):
    ran = inv("alert.test", "--root", str(bezgelor_checkout))
    assert ran.returncode == 1
    assert "No alert channel is configured" in ran.stderr and "BEZGELOR_ALERT_DISCORD_URL" in ran.stderr


def test_one_down_and_one_recovered_however_often_they_are_sent(tmp_path, receiver, monkeypatch):
    monkeypatch.delenv("BEZGELOR_ALERT_DISCORD_URL")
    monkeypatch.delenv("BEZGELOR_ALERT_NTFY_URL")
    alerter, _ = _alerter(tmp_path)
    failing = {"world hello 127.0.0.1:24000": "connected, but no ServerHello within 5s"}
    for _ in range(3):
        alerter.send(events.down("bezgelor", failing, since=1000.0, failures=3))
    for _ in range(2):
        alerter.send(events.recovered("bezgelor", since=1000.0, now=1094.0, how="restarted"))
    assert receiver.events() == ["down", "recovered"]
    recovered = receiver.at("/hook")[1].json()
    assert recovered["title"] == "bezgelor recovered after 1m34s"
    assert recovered["details"]["down_for_s"] == 94.0


def test_a_failing_channel_is_reported_on_the_others_once_and_never_stops_them(tmp_path, receiver, monkeypatch):
    receiver.fail("/discord")
    alerter, _ = _alerter(tmp_path)
    first = alerter.send(events.test("bezgelor"))
    second = alerter.send(events.restart_done("bezgelor", "m1", "probes failed", "healthy after 3s"))
    assert first.sent == ["webhook", "ntfy"] and first.failed == {"discord": "HTTP 500 from 127.0.0.1"}
    assert second.sent == ["webhook", "ntfy"]
    assert receiver.events() == ["test", "channel_failed", "restart_done"]  # reported once, not per alert
    receiver.fail("/discord", on=False)
    assert alerter.send(events.test("bezgelor")).sent == ["discord", "webhook", "ntfy"]
    receiver.fail("/discord")
    alerter.send(events.test("bezgelor"))
    assert receiver.events().count("channel_failed") == 2  # failing again after it worked: said again


def test_a_mail_server_without_starttls_gets_no_password(tmp_path, monkeypatch):
    """smtp:// means STARTTLS: a server that does not offer it is refused before AUTH."""
    import asyncio  # noqa: F401  (aiosmtpd runs its own loop thread)

    from aiosmtpd.controller import Controller

    from bezgelor_tasks.backup.scratch import free_port

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            return "250 OK"

    port = free_port()
    plain = Controller(Sink(), hostname="127.0.0.1", port=port, ready_timeout=10)
    plain.start()
    try:
        monkeypatch.setenv("BEZGELOR_ALERT_SMTP_URL", f"smtp://user:hunter22@127.0.0.1:{port}")
        monkeypatch.setenv("BEZGELOR_ALERT_EMAIL_TO", "operator@example.com")
        alerter, out = _alerter(tmp_path)
        delivery = alerter.send(events.test("bezgelor"))
    finally:
        plain.stop()
    assert "offers no STARTTLS" in delivery.failed["email"]
    assert "hunter22" not in out.getvalue() + str(delivery.failed)


def test_a_failed_backup_reaches_the_operator(bezgelor_checkout, fake_fly, receiver):
    fake_fly.add_app("bezgelor")   # no database app: the backup cannot reach it
    ran = inv("db.backup", "--root", str(bezgelor_checkout))
    assert ran.returncode == 1
    failed = receiver.wait_for_event("backup_failed")
    assert failed["title"] == "bezgelor: the backup of bezgelor-db failed" and failed["severity"] == "critical"
    assert failed["text"][:60] in ran.stderr      # the same paragraph the operator's terminal shows
