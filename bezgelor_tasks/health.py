"""The health gate: a deploy counts only when players could connect.

Two views must agree: the portal's `/health` (JSON `{status, services{...}, version}`, where the
portal checks the database and its own game listeners from inside the machine) and the game-level
probe from here to the three game ports on the app's public IPv4, as a game client reaches them: each
must send its greeting (ServerHello) within BEZGELOR_PROBE_TIMEOUT (probe.py) — a TCP connect alone
passes for a frozen world. Polls until both are all-ok or the time is up, then reports per service.
Never raises for an unhealthy app: the caller decides (roll back, or print the report).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bezgelor_tasks.probe import HEALTH_PROBE, OK, ProbeResult, check_http, game_probes, side_by_side
from bezgelor_tasks.processes import interruptible_sleep
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI


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


def _poll(settings: Settings, url: str, ipv4: str | None, expect_version: str | None,
          timeout: float) -> tuple[dict[str, str], str, str]:
    """One poll: /health and (with an IPv4) every game port's greeting, side by side (probe.py)."""
    answer: list[tuple[dict[str, str], str, str]] = []

    def http() -> ProbeResult:
        answer.append(check_http(url, timeout=timeout, expect_version=expect_version))
        return ProbeResult(HEALTH_PROBE, True, 0.0, "")

    results = side_by_side([http, *(game_probes(settings, ipv4, timeout) if ipv4 else [])], timeout)
    services, version, error = answer[0] if answer else ({HEALTH_PROBE: "did not finish"}, "", f"{url}: no answer")
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
