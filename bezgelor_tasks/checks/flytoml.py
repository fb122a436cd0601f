"""fly.toml: every service of the game machine stays up, has a health check with string durations,
and the machine's release command is the migrate overlay."""

from __future__ import annotations

import re
from typing import Any

from bezgelor_tasks.checkout.flytoml import FLY_MAX_KILL_TIMEOUT_S, KILL_SIGNAL
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_of, warning

REL = "fly.toml"
# Fly clamps check durations to 1s..60s.
FLY_MAX_CHECK_S = 60
_DURATION = re.compile(r"^\d+(\.\d+)?(ms|s|m|h)$")


def _service_line(text: str, index: int) -> int | None:
    starts = [m.start() for m in re.finditer(r"^[ \t]*\[\[services\]\]", text, re.M)]
    return text.count("\n", 0, starts[index]) + 1 if index < len(starts) else None


def _key_line(text: str, key: str, from_line: int | None) -> int | None:
    lines = text.splitlines()
    start = (from_line or 1) - 1
    for i in range(start, len(lines)):
        if i > start and lines[i].strip().startswith("[[services]]"):
            break
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
            return i + 1
    return from_line


def _durations(chk: dict[str, Any], where: str, text: str, line: int | None) -> list[Finding]:
    out: list[Finding] = []
    for key in ("interval", "timeout", "grace_period"):
        if key not in chk:
            continue
        value = chk[key]
        if isinstance(value, bool | int | float):
            out.append(error(REL, _key_line(text, key, line), f"{where} {key} = {value} is a bare number, "
                             "which Fly reads as milliseconds (nanoseconds under [http_service])",
                             f'write it as a duration string, e.g. {key} = "{_as_seconds_guess(value)}"'))
        elif isinstance(value, str) and not _DURATION.match(value.strip()):
            out.append(error(REL, _key_line(text, key, line), f"{where} {key} = {value!r} is not a duration",
                             f'write it as a duration string, e.g. {key} = "10s"'))
    return out


def _as_seconds_guess(value: float) -> str:
    """What a bare number most likely meant: milliseconds when large, seconds when small."""
    return f"{value / 1000:g}s" if value >= 1000 else f"{value:g}s"


def _seconds(value: object) -> float | None:
    if isinstance(value, str) and (m := re.match(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$", value.strip())):
        return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    return None


def _shutdown(data: dict[str, Any], text: str) -> list[Finding]:
    """kill_signal SIGTERM (the BEAM's clean stop) and a kill_timeout within Fly's limit."""
    out: list[Finding] = []
    signal = data.get("kill_signal")
    if signal != KILL_SIGNAL:
        out.append(warning(REL, line_of(text, r"^kill_signal\s*=", re.M),
                           (f"kill_signal = {signal!r}" if signal else "kill_signal is not set, so Fly stops the "
                            "machine with SIGINT") + ": the BEAM stops cleanly (game sessions saved, "
                           "connections closed) on SIGTERM", f'set kill_signal = "{KILL_SIGNAL}" (run `inv init`)'))
    timeout = data.get("kill_timeout")
    seconds = _seconds(timeout) if isinstance(timeout, str) else float(timeout) if isinstance(timeout, int) \
        and not isinstance(timeout, bool) else None
    if timeout is None:
        out.append(warning(REL, None, "kill_timeout is not set, so Fly kills the machine 5 s after the signal",
                           "set BEZGELOR_KILL_TIMEOUT (default 60) and run `inv init`"))
    elif seconds is None or seconds > FLY_MAX_KILL_TIMEOUT_S or seconds <= 0:
        out.append(error(REL, line_of(text, r"^kill_timeout\s*=", re.M), f"kill_timeout = {timeout!r} is not a "
                         f"duration between 1s and Fly's limit of {FLY_MAX_KILL_TIMEOUT_S}s",
                         "set BEZGELOR_KILL_TIMEOUT to at most 300 and run `inv init`"))
    return out


def check(ctx: CheckContext) -> list[Finding]:
    s = ctx.settings
    text = ctx.text(REL)
    if text is None:
        return [error(REL, None, "fly.toml is missing", "run `inv init` to write it")]
    if ctx.fly_toml_error:
        return [error(REL, None, f"is not valid TOML: {ctx.fly_toml_error}",
                      "edit fly.toml to fix the TOML syntax (or delete it and run `inv init`)")]
    data = ctx.fly_toml or {}
    out: list[Finding] = []
    if data.get("app") and data["app"] != s.app:
        out.append(warning(REL, line_of(text, r"^app\s*=", re.M), f"app = {data['app']!r} but the settings say "
                           f"{s.app!r}", "set BEZGELOR_FLY_APP (or fix fly.toml) so both agree"))
    if "http_service" in data:
        http = data["http_service"] if isinstance(data["http_service"], dict) else {}
        stop, mmr = http.get("auto_stop_machines"), http.get("min_machines_running")
        stops = (stop is not None and stop != "off" and stop is not False) or not isinstance(mmr, int) or mmr < 1
        say = error if stops else warning
        out.append(say(REL, line_of(text, r"^\[http_service\]", re.M),
                       "[http_service] is set (as `fly launch` writes it)"
                       + (f" with auto_stop_machines = {stop!r} and min_machines_running = {mmr!r}: Fly would stop "
                          "the one machine when the portal idles, taking the game servers down with it"
                          if stops else "; it has its own auto-stop and check settings besides [[services]]"),
                       "run `inv init`: it converts [http_service] into the portal's [[services]] (keeping its "
                       'concurrency and force_https) with auto_stop_machines = "off" and min_machines_running = 1'))
    out.extend(_shutdown(data, text))
    services = ctx.services()
    if not services:
        out.append(error(REL, None, "defines no [[services]], so no port of the game machine is public",
                         "run `inv init` to write the four services"))
    for i, svc in enumerate(services):
        line = _service_line(text, i)
        port = svc.get("internal_port")
        name = next((n for n, p in s.ports.all().items() if p == port), f"port {port}")
        where = f"service {name} (internal_port {port})"
        stop = svc.get("auto_stop_machines")
        if stop is None:
            out.append(warning(REL, line, f"{where} does not set auto_stop_machines",
                               'set auto_stop_machines = "off": every service shares the one game machine'))
        elif stop != "off" and stop is not False:
            out.append(error(REL, _key_line(text, "auto_stop_machines", line),
                             f"{where} has auto_stop_machines = {stop!r}: Fly would stop the machine when this "
                             "service idles, taking the portal and all game servers down with it",
                             'set auto_stop_machines = "off" on every service'))
        elif stop is False:
            out.append(warning(REL, _key_line(text, "auto_stop_machines", line),
                               f"{where} uses auto_stop_machines = false", 'write auto_stop_machines = "off"'))
        mmr = svc.get("min_machines_running")
        if mmr is None or (isinstance(mmr, int) and mmr < 1):
            out.append(error(REL, _key_line(text, "min_machines_running", line),
                             f"{where} has min_machines_running = {mmr if mmr is not None else 'unset (0)'}: "
                             "game clients cannot wake a stopped machine",
                             "set min_machines_running = 1"))
        http_checks = svc.get("http_checks") or []
        tcp_checks = svc.get("tcp_checks") or []
        if not http_checks and not tcp_checks:
            out.append(error(REL, line, f"{where} has no health check, so Fly routes to it before it listens "
                             "and deploys cannot tell a dead server", "add [[services.tcp_checks]] (or "
                             "[[services.http_checks]] for the portal) — run `inv init`"))
        if port == s.portal_port and not http_checks:
            out.append(error(REL, line, f"{where} has no HTTP check of {s.health_paths[0]}",
                             f'add [[services.http_checks]] with path = "{s.health_paths[0]}" (run `inv init`)'))
        for chk in [*http_checks, *tcp_checks]:
            out.extend(_durations(chk, where, text, line))
            grace = _seconds(chk.get("grace_period"))
            wanted = min(s.health_grace_period_s, FLY_MAX_CHECK_S)
            if grace is not None and grace > FLY_MAX_CHECK_S:
                out.append(warning(REL, _key_line(text, "grace_period", line),
                                   f"{where} grace_period {chk.get('grace_period')} is above Fly's "
                                   f"{FLY_MAX_CHECK_S}s limit and acts as {FLY_MAX_CHECK_S}s",
                                   f'write grace_period = "{FLY_MAX_CHECK_S}s" (a slow boot is covered by the '
                                   "deploy's wait timeout and the health gate)"))
            elif grace is not None and grace < wanted:
                out.append(warning(REL, _key_line(text, "grace_period", line),
                                   f"{where} grace_period {chk.get('grace_period')} is shorter than the "
                                   f"{wanted}s the game data needs to load",
                                   f'set grace_period = "{wanted}s"'))
        for chk in http_checks:
            path = chk.get("path")
            if path and path not in s.health_paths:
                out.append(warning(REL, _key_line(text, "path", line), f"{where} checks {path}, which the "
                                   "health controller does not serve", f'use path = "{s.health_paths[0]}"'))
    deploy = data.get("deploy") or {}
    rc = deploy.get("release_command")
    if rc != "/app/bin/migrate":
        out.append(warning(REL, line_of(text, r"release_command") or line_of(text, r"^\[deploy\]", re.M),
                           f"the release command is {rc!r}, not /app/bin/migrate: migrations will not run "
                           "before new machines start", 'set [deploy] release_command = "/app/bin/migrate"'))
    return out
