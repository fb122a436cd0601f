"""Alerts: events sent to every configured channel, deduplicated, a failing channel reported on the others.

`Alerter.send(event)`:
- an event that opens an incident already open (a second "down") is not sent; one that closes incidents
  none of which is open (a "recovered" with nothing down) is not sent either. `open_incidents` can be
  seeded from what the watcher keeps on Fly, so a restarted watcher does not repeat itself;
- every channel is tried, each post or mail passing through `Executor.change` (a dry run shows it and sends
  nothing); a channel that fails never stops the others or the caller: it is reported once on the channels
  that worked ("alerts to discord fail"), and again only after it worked in between.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bezgelor_tasks.alerts import events
from bezgelor_tasks.alerts.channels import Channel, ChannelFailed, Discord, Email, Ntfy, Webhook, sender_of
from bezgelor_tasks.alerts.events import Event

if TYPE_CHECKING:
    from bezgelor_tasks.run import Executor
    from bezgelor_tasks.settings import Settings

__all__ = ["Alerter", "Delivery", "Event", "channels_from", "events", "notify"]


def channels_from(settings: Settings) -> list[Channel]:
    """The channels the settings configure, in a fixed order (any combination, or none)."""
    out: list[Channel] = []
    if settings.alert_discord_url:
        out.append(Discord(settings.alert_discord_url))
    if settings.alert_webhook_url:
        out.append(Webhook(settings.alert_webhook_url))
    if settings.alert_ntfy_url:
        out.append(Ntfy(settings.alert_ntfy_url))
    if settings.alert_smtp_url and settings.alert_email_to:
        to = tuple(a.strip() for a in settings.alert_email_to.split(",") if a.strip())
        out.append(Email(settings.alert_smtp_url, to, sender_of(settings.alert_smtp_url, settings.alert_email_from,
                                                                settings.app)))
    return out


@dataclass
class Delivery:
    event: Event
    sent: list[str] = field(default_factory=list)          # channel names that took it
    failed: dict[str, str] = field(default_factory=dict)   # channel name -> why
    skipped: str = ""                                      # why it was not sent at all (deduplicated, no channel)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def _sending(channel: Channel, event: Event) -> Callable[[], bool]:
    def send() -> bool:
        channel.send(event)
        return True
    return send


class Alerter:
    def __init__(self, settings: Settings, executor: Executor, channels: list[Channel] | None = None,
                 on_sent: Callable[[Event], None] | None = None) -> None:
        self.settings = settings
        self.executor = executor
        self.channels = channels_from(settings) if channels is None else channels
        self.open_incidents: set[str] = set()
        self.on_sent = on_sent
        self.last: Event | None = None

    @property
    def configured(self) -> bool:
        return bool(self.channels)

    def is_open(self, incident: str) -> bool:
        return incident in self.open_incidents

    def resolve(self, incident: str) -> None:
        """Close an incident without telling anyone (e.g. the lock was released)."""
        self.open_incidents.discard(incident)

    def send(self, event: Event) -> Delivery:
        if event.opens and event.opens in self.open_incidents:
            return Delivery(event, skipped=f"already sent: {event.opens} is still open")
        if event.closes and not any(i in self.open_incidents for i in event.closes):
            return Delivery(event, skipped="nothing it closes is open")
        if event.opens:
            self.open_incidents.add(event.opens)
        self.open_incidents.difference_update(event.closes)
        delivery = self._deliver(event, self.channels)
        if delivery.sent or delivery.dry_run:
            self.last = event
            if self.on_sent is not None and not delivery.dry_run:
                self.on_sent(event)
        self._report_failures(delivery)
        return delivery

    def _deliver(self, event: Event, channels: list[Channel]) -> Delivery:
        delivery = Delivery(event, dry_run=self.executor.dry_run)
        if not channels:
            delivery.skipped = "no alert channel is configured (BEZGELOR_ALERT_*)"
            return delivery
        for channel in channels:
            try:
                done = self.executor.change(f"send the alert '{event.title}' to {channel.shown()}",
                                            _sending(channel, event))
            except ChannelFailed as e:
                delivery.failed[channel.name] = str(e)
                continue
            if done:
                delivery.sent.append(channel.name)
                self.open_incidents.discard(f"channel:{channel.name}")
        return delivery

    def _report_failures(self, delivery: Delivery) -> None:
        working = [c for c in self.channels if c.name in delivery.sent]
        for name, why in delivery.failed.items():
            notice = events.channel_failed(self.settings.app, name, why)
            if notice.opens in self.open_incidents or not working:
                continue
            self.open_incidents.add(notice.opens)
            self._deliver(notice, working)


def notify(settings: Settings, executor: Executor, event: Event) -> Delivery | None:
    """Send one event from a task (a failed backup): nothing without channels, never raises for a channel."""
    alerter = Alerter(settings, executor)
    return alerter.send(event) if alerter.configured else None
