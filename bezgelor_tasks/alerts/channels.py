"""Where alerts go: Discord, a generic JSON webhook, ntfy, mail over SMTP (STARTTLS or TLS). Standard library only.

Each channel's `send(event)` posts or mails one event and raises `ChannelFailed` (a short, redacted
reason) when it could not. The URLs carry tokens: they are secret settings, registered with redact when
the settings are read, and a channel is shown by its kind and host only.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from bezgelor_tasks import __version__
from bezgelor_tasks.alerts.events import Event
from bezgelor_tasks.redact import redact

TIMEOUT_S = 10.0
USER_AGENT = f"bezgelor-tasks/{__version__}"
DISCORD_COLORS = {"critical": 0xD93F0B, "warning": 0xFBCA04, "info": 0x1D76DB, "ok": 0x0E8A16}
NTFY_PRIORITY = {"critical": "5", "warning": "4", "info": "3", "ok": "3"}
NTFY_TAGS = {"critical": "rotating_light", "warning": "warning", "info": "information_source",
             "ok": "white_check_mark"}


class ChannelFailed(Exception):
    """A channel could not deliver; the message is already redacted."""


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or "?"


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_S) -> int:
    """POST and return the status; any failure becomes ChannelFailed with a redacted reason."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"User-Agent": USER_AGENT, **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) URLs only)
            response.read(4096)
            return int(response.status)
    except urllib.error.HTTPError as e:
        raise ChannelFailed(f"HTTP {e.code} from {_host(url)}") from None
    except urllib.error.URLError as e:
        raise ChannelFailed(redact(f"{_host(url)}: {e.reason}")) from None
    except (TimeoutError, OSError) as e:
        raise ChannelFailed(redact(f"{_host(url)}: {e or type(e).__name__}")) from None


def get(url: str, timeout: float = TIMEOUT_S) -> int:
    """A GET (a heartbeat ping); failures as ChannelFailed."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(4096)
            return int(response.status)
    except urllib.error.HTTPError as e:
        raise ChannelFailed(f"HTTP {e.code} from {_host(url)}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise ChannelFailed(redact(f"{_host(url)}: {reason}")) from None


@dataclass(frozen=True)
class Discord:
    url: str
    name: str = "discord"

    def shown(self) -> str:
        return f"Discord webhook at {_host(self.url)}"

    def body(self, event: Event) -> dict[str, Any]:
        fields = [{"name": k, "value": _text(v)[:1024], "inline": True} for k, v in list(event.details.items())[:10]]
        return {"username": "bezgelor-tasks", "content": f"**{event.title}**"[:2000],
                "embeds": [{"title": event.title[:256], "description": event.text[:4096],
                            "color": DISCORD_COLORS.get(event.severity, 0), "timestamp": event.payload()["at"],
                            "fields": fields, "footer": {"text": f"bezgelor-tasks · {event.kind}"}}]}

    def send(self, event: Event) -> None:
        post(self.url, json.dumps(self.body(event)).encode(), {"Content-Type": "application/json"})


@dataclass(frozen=True)
class Webhook:
    url: str
    name: str = "webhook"

    def shown(self) -> str:
        return f"JSON webhook at {_host(self.url)}"

    def send(self, event: Event) -> None:
        post(self.url, json.dumps(event.payload()).encode(), {"Content-Type": "application/json"})


@dataclass(frozen=True)
class Ntfy:
    url: str
    name: str = "ntfy"

    def shown(self) -> str:
        return f"ntfy topic at {_host(self.url)}"

    def send(self, event: Event) -> None:
        # Header values must be Latin-1: titles go as ASCII, the body carries the full UTF-8 text.
        title = event.title.encode("ascii", "replace").decode()
        post(self.url, event.text.encode("utf-8"), {"Title": title, "Priority": NTFY_PRIORITY[event.severity],
                                                    "Tags": NTFY_TAGS[event.severity],
                                                    "Content-Type": "text/plain; charset=utf-8"})


@dataclass(frozen=True)
class Email:
    """smtp://user:password@host:587 (STARTTLS, required: the password never travels in clear) or
    smtps://user:password@host:465 (TLS from the start)."""

    url: str
    to: tuple[str, ...]
    sender: str
    name: str = "email"

    def shown(self) -> str:
        return f"mail via {_host(self.url)} to {', '.join(self.to)}"

    def message(self, event: Event) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[{event.app}] {event.title}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        lines = [event.text, ""] + [f"{k}: {_text(v)}" for k, v in event.details.items()]
        msg.set_content("\n".join(lines) + f"\n\n-- bezgelor-tasks ({event.kind}, {event.payload()['at']})\n")
        return msg

    def send(self, event: Event) -> None:
        parts = urllib.parse.urlsplit(self.url)
        host, implicit = parts.hostname or "", parts.scheme == "smtps"
        port = parts.port or (465 if implicit else 587)
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        context = ssl.create_default_context()  # honours SSL_CERT_FILE
        try:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_S, context=context) if implicit \
                else smtplib.SMTP(host, port, timeout=TIMEOUT_S)
            with smtp:
                if not implicit:
                    smtp.ehlo()
                    if not smtp.has_extn("starttls"):
                        raise ChannelFailed(f"{host}:{port} offers no STARTTLS: not sending mail (nor a password) "
                                            "in clear; use smtps:// for a TLS port")
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if user:
                    smtp.login(user, password)
                smtp.send_message(self.message(event))
        except ChannelFailed:
            raise
        except (smtplib.SMTPException, ssl.SSLError, OSError) as e:
            raise ChannelFailed(redact(f"{host}:{port}: {type(e).__name__}: {e}")[:300]) from None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


Channel = Discord | Webhook | Ntfy | Email


def sender_of(smtp_url: str, explicit: str, app: str) -> str:
    if explicit:
        return explicit
    user = urllib.parse.unquote(urllib.parse.urlsplit(smtp_url).username or "")
    return user if "@" in user else f"bezgelor-tasks@{app}.fly.dev"
