"""One set of ports everywhere: settings, the health controller's TCP probes and runtime.exs's PORT default
(fly.toml's ports are part of its spec, areas/fly_toml_spec.py; the Dockerfile's EXPOSE is its area's)."""

from __future__ import annotations

import re

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_of, strip_elixir_comments

_PROBE = re.compile(r"(?:check_tcp_service|check_tcp|probe)\(\s*(\d{2,5})\b|"
                    r":gen_tcp\.connect\([^,]+,\s*(\d{2,5})\b|"
                    r"\b(auth|realm|world|portal)\w*\s*(?::|=>|,|=)\s*(\d{2,5})\b")


def _expected(ctx: CheckContext) -> dict[int, str]:
    return {port: name for name, port in ctx.settings.ports.all().items()}


def check(ctx: CheckContext) -> list[Finding]:
    s = ctx.settings
    expected = _expected(ctx)
    out: list[Finding] = []
    settings_desc = ", ".join(f"{n} {p}" for n, p in s.ports.all().items())
    fix_tail = "keep them equal to the settings (BEZGELOR_*_PORT), or run `inv init` to regenerate"
    controller_rel = ctx.health_controller_rel()
    controller = ctx.text(controller_rel)
    if controller is not None:
        code = strip_elixir_comments(controller)
        named = s.ports.all()
        for m in _PROBE.finditer(code):
            name = m.group(3)
            port = int(m.group(4) if name else next(g for g in m.groups() if g))
            if name and port != named[name]:
                out.append(error(controller_rel, line_of(code, re.escape(m.group(0))),
                                 f"the health check probes {name} on port {port}, but {name} listens on "
                                 f"{named[name]} (settings: {settings_desc})", fix_tail))
            elif port not in expected:
                out.append(error(controller_rel, line_of(code, re.escape(m.group(0))),
                                 f"the health check probes port {port}, which no server uses "
                                 f"(settings: {settings_desc})", fix_tail))
    runtime = ctx.text("config/runtime.exs")
    if runtime is not None:
        code = strip_elixir_comments(runtime)
        pm = re.search(r"System\.get_env\(\s*\"PORT\"\s*(?:,\s*\"(\d+)\"\s*)?\)\s*(?:\|\|\s*\"(\d+)\")?", code)
        default = (pm.group(1) or pm.group(2)) if pm else None
        # fly.toml's [env] PORT (written from the same setting) wins on Fly: then the default never applies
        fly_port = str(((ctx.fly_toml or {}).get("env") or {}).get("PORT", ""))
        if pm and default and int(default) != s.portal_port and fly_port != str(s.portal_port):
            out.append(error("config/runtime.exs", line_of(code, re.escape(pm.group(0))),
                             f"PORT defaults to {default}, but the portal's port is {s.portal_port}", fix_tail))
    return out
