"""Fixtures `receiver` and `mailbox`: real loopback servers on the receiving end of alerts and heartbeats.

`receiver` is one HTTP server recording every request by path: `/discord` (Discord-shaped webhook bodies),
`/hook` (the generic JSON webhook), `/ntfy/<topic>` (ntfy posts: body and Title/Priority/Tags headers) and
`/heartbeat` (a dead man's switch counting pings). `receiver.fail(path)` makes a path answer 500.
`mailbox` is a real SMTP server (aiosmtpd) that requires STARTTLS with a self-signed certificate made by
`openssl` for this test, and a login; `SSL_CERT_FILE` makes our client trust exactly that certificate.
Both set the BEZGELOR_* settings that point at them.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bezgelor_tasks.backup.scratch import free_port

HOST = "127.0.0.1"


@dataclass
class Received:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.failing: set[str] = set()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((HOST, 0), self._handler())
        self.server.daemon_threads = True
        self.base = f"http://{HOST}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                with receiver.lock:
                    receiver.requests.append(Received(path, self.command, dict(self.headers), body))
                    failing = path in receiver.failing
                code = 500 if failing else 204 if path == "/discord" else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = _record  # noqa: N815
            do_GET = _record  # noqa: N815
            do_HEAD = _record  # noqa: N815

        return Handler

    def url(self, path: str) -> str:
        return self.base + path

    def fail(self, path: str, on: bool = True) -> None:
        with self.lock:
            (self.failing.add if on else self.failing.discard)(path)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def heartbeats(self) -> int:
        return len(self.at("/heartbeat"))

    def events(self) -> list[str]:
        """The `event` of every generic webhook post, in order (the webhook carries the documented payload)."""
        return [r.json()["event"] for r in self.at("/hook")]

    def wait_for(self, path: str, count: int = 1, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count:
            assert time.monotonic() < deadline, f"{path}: {len(self.at(path))} of {count} request(s) arrived"
            time.sleep(0.05)
        return self.at(path)

    def wait_for_event(self, event: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = [r.json() for r in self.at("/hook") if r.json()["event"] == event]
            if found:
                return found[0]  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"no {event!r} alert; got {self.events()}"
            time.sleep(0.05)

    def settings_env(self) -> dict[str, str]:
        return {"BEZGELOR_ALERT_DISCORD_URL": self.url("/discord"), "BEZGELOR_ALERT_WEBHOOK_URL": self.url("/hook"),
                "BEZGELOR_ALERT_NTFY_URL": self.url("/ntfy/bezgelor-alerts"),
                "BEZGELOR_HEARTBEAT_URL": self.url("/heartbeat")}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    r = Receiver()
    for key, value in r.settings_env().items():
        monkeypatch.setenv(key, value)
    try:
        yield r
    finally:
        r.close()


class Mailbox:
    """A real SMTP server on loopback: STARTTLS required, then AUTH LOGIN/PLAIN, then the message."""

    USER, PASSWORD = "alerts@example.com", "s3cret-smtp-pass"

    def __init__(self, tmp: Path) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.cert, key = tmp / "smtp-cert.pem", tmp / "smtp-key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}", "-keyout", str(key), "-out",
                        str(self.cert)], check=True, capture_output=True)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.messages: list[Message] = []
        self.logins: list[str] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                mailbox.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            ok = auth_data.login.decode() == self.USER and auth_data.password.decode() == self.PASSWORD
            if ok:
                self.logins.append(auth_data.login.decode())
            return AuthResult(success=ok)

        self.port = free_port()
        self.controller = Controller(Handler(), hostname=HOST, port=self.port, tls_context=context,
                                     require_starttls=True, authenticator=authenticator, auth_required=True,
                                     ready_timeout=10)
        self.controller.start()

    def settings_env(self) -> dict[str, str]:
        return {"BEZGELOR_ALERT_SMTP_URL": f"smtp://alerts%40example.com:{self.PASSWORD}@{HOST}:{self.port}",
                "BEZGELOR_ALERT_EMAIL_TO": "operator@example.com", "SSL_CERT_FILE": str(self.cert)}

    def wait_for(self, count: int = 1, timeout: float = 30) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} mail(s) arrived"
            time.sleep(0.05)
        return self.messages

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def mailbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    box = Mailbox(tmp_path)
    for key, value in box.settings_env().items():
        monkeypatch.setenv(key, value)
    try:
        yield box
    finally:
        box.close()
