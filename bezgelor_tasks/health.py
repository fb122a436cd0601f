"""The health gate: a deploy counts only when players could connect.

Two views must agree: the portal's `/health` (JSON `{status, services{...}, version}`, where the
portal checks the database and its own game listeners from inside the machine) and the game-level
probe from here to the three game ports on the app's public IPv4, as a game client reaches them: each
must send its greeting (ServerHello) within BEZGELOR_PROBE_TIMEOUT (probe.py) — a TCP connect alone
passes for a frozen world. Polls until both are all-ok or the time is up, then reports per service.
Never raises for an unhealthy app: the caller decides (roll back, or print the report).
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from bezgelor_tasks.probe import ProbeResult, game_probes, side_by_side
from bezgelor_tasks.processes import interruptible_sleep
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI

OK = "ok"
HEALTH_KEY = "health endpoint"
VERSION_KEY = "version"
_OK_WORDS = {"ok", "healthy", "up", "true", "passing", "alive"}


@dataclass
class HealthReport:
    ok: bool
    services: dict[str, str] = field(default_factory=dict)
    last_error: str = ""
    waited: float = 0.0
    version: str = ""
    polls: int = 0

    @property
    def failing(self) -> dict[str, str]:
        return {name: state for name, state in self.services.items() if state != OK}

    def summary(self) -> str:
        if self.ok:
            return f"healthy after {self.waited:.0f}s: " + ", ".join(sorted(self.services))
        failing = "; ".join(f"{name}: {state}" for name, state in sorted(self.failing.items()))
        return f"not healthy after {self.waited:.0f}s ({failing or self.last_error})"

    def lines(self) -> list[str]:
        """One line per service, for the report printed when the gate gives up."""
        return [f"{'ok  ' if state == OK else 'FAIL'} {name}: {state}" for name, state in sorted(self.services.items())]

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "services": self.services, "last_error": self.last_error,
                "waited": round(self.waited, 1), "version": self.version, "polls": self.polls}


def _service_ok(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, dict):
        value = value.get("status", value.get("Status"))
    return str(value).strip().lower() in _OK_WORDS


def check_http(url: str, timeout: float, expect_version: str | None = None) -> tuple[dict[str, str], str, str]:
    """({service: state}, version, error) from one GET of the health URL."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "bezgelor-tasks"})
    code: int
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http for tests)
            code, body, ctype = response.status, response.read(65536), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:  # 503 still carries the per-service JSON
        code, body = e.code, e.read(65536) if e.fp else b""
        ctype = e.headers.get("Content-Type", "") if e.headers else ""
    except TimeoutError:
        return {HEALTH_KEY: f"no answer within {timeout:g}s"}, "", f"{url} did not answer within {timeout:g}s"
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, ConnectionRefusedError):
            why = "connection refused"
        elif isinstance(reason, TimeoutError):
            why = f"no answer within {timeout:g}s"
        elif isinstance(reason, socket.gaierror):
            why = "host name not found (is the app deployed?)"
        else:
            why = str(reason)
        return {HEALTH_KEY: why}, "", f"{url}: {why}"
    except (ConnectionError, OSError) as e:
        return {HEALTH_KEY: str(e) or type(e).__name__}, "", f"{url}: {e}"
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        looks_html = "html" in ctype.lower() or text.lstrip().startswith("<")
        what = "an HTML page" if looks_html else "something that is not JSON"
        hint = " (force_ssl redirect, a proxy error page, or the wrong route?)" if looks_html else ""
        return {HEALTH_KEY: f"HTTP {code} with {what}"}, "", f"{url} answered HTTP {code} with {what}{hint}"
    if not isinstance(data, dict):
        return {HEALTH_KEY: f"HTTP {code} with JSON that is not an object"}, "", f"{url}: unexpected JSON"
    data = {str(k).lower(): v for k, v in data.items()}
    services: dict[str, str] = {}
    overall = str(data.get("status", "")).lower()
    services[HEALTH_KEY] = OK if code == 200 and overall in _OK_WORDS else f"HTTP {code}, status {overall or '?'}"
    reported = data.get("services")
    if isinstance(reported, dict):
        for name, value in reported.items():
            services[str(name)] = OK if _service_ok(value) else str(value if not isinstance(value, dict) else
                                                                       value.get("status", value))
    version = str(data.get("version") or "")
    if expect_version is not None:
        services[VERSION_KEY] = OK if version == expect_version else \
            f"running {version or 'an unknown version'}, expected {expect_version}"
    error = "" if all(v == OK for v in services.values()) else f"{url} answered HTTP {code} ({overall or 'no status'})"
    return services, version, error


def _poll(settings: Settings, url: str, ipv4: str | None, expect_version: str | None,
          timeout: float) -> tuple[dict[str, str], str, str]:
    """One poll: /health and (with an IPv4) every game port's greeting, side by side (probe.py)."""
    answer: list[tuple[dict[str, str], str, str]] = []

    def http() -> ProbeResult:
        answer.append(check_http(url, timeout=timeout, expect_version=expect_version))
        return ProbeResult(HEALTH_KEY, True, 0.0, "")

    results = side_by_side([http, *(game_probes(settings, ipv4, timeout) if ipv4 else [])], timeout)
    services, version, error = answer[0] if answer else ({HEALTH_KEY: "did not finish"}, "", f"{url}: no answer")
    services.update({r.name: r.state for r in results[1:]})
    return services, version, error


def health_gate(settings: Settings, ui: UI, ipv4: str | None, expect_version: str | None = None,
                timeout: float | None = None) -> HealthReport:
    """Poll /health and the public game ports until all are ok or `timeout` (default BEZGELOR_HEALTH_TIMEOUT)."""
    limit = float(settings.health_timeout_s if timeout is None else timeout)
    interval = max(0.05, float(settings.health_interval_s))
    url = settings.public_health_url
    started = time.monotonic()
    deadline = started + limit
    report = HealthReport(ok=False)
    with ui.progress(f"waiting for {url} and the game ports' ServerHello") as progress:
        while True:
            left = max(0.0, deadline - time.monotonic())
            services, version, error = _poll(settings, url, ipv4, expect_version,
                                             timeout=max(0.5, min(settings.probe_timeout_s, left)))
            report.polls += 1
            report.services, report.version = services, version or report.version
            failing = {k: v for k, v in services.items() if v != OK}
            report.last_error = error or ("; ".join(f"{k}: {v}" for k, v in failing.items()) if failing else "")
            report.waited = time.monotonic() - started
            if not failing:
                report.ok = True
                progress.note("all services ok")
                return report
            progress.note("waiting on " + ", ".join(f"{k} ({v})" for k, v in sorted(failing.items())))
            left = deadline - time.monotonic()
            if left <= 0:
                return report
            if interruptible_sleep(min(interval, left)):  # Ctrl-C: stop waiting at once
                report.last_error = "interrupted"
                return report
