"""One set of ports everywhere: settings, fly.toml, the Dockerfile's EXPOSE, the health controller's
TCP probes and runtime.exs's PORT default."""

from __future__ import annotations

import re

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_of, warning


def _expected(ctx: CheckContext) -> dict[int, str]:
    return {port: name for name, port in ctx.settings.ports.all().items()}


def check(ctx: CheckContext) -> list[Finding]:
    s = ctx.settings
    expected = _expected(ctx)
    out: list[Finding] = []
    settings_desc = ", ".join(f"{n} {p}" for n, p in s.ports.all().items())
    fix_tail = "keep them equal to the settings (BEZGELOR_*_PORT), or run `inv init` to regenerate"
    fly_text = ctx.text("fly.toml")
    if ctx.fly_toml is not None and fly_text is not None:
        internal = {svc.get("internal_port") for svc in ctx.services()}
        for port, name in expected.items():
            if port not in internal:
                out.append(error("fly.toml", None, f"no service has internal_port {port} ({name}; settings: "
                                 f"{settings_desc})", f"add a [[services]] for {name} — {fix_tail}"))
        for svc in ctx.services():
            svc_port = svc.get("internal_port")
            if not isinstance(svc_port, int) or svc_port not in expected:
                port_text = str(svc_port)
                out.append(error("fly.toml", line_of(fly_text, rf"internal_port\s*=\s*{port_text}\b"),
                                 f"a service has internal_port {port_text}, on which nothing listens "
                                 f"(settings: {settings_desc})", fix_tail))
            elif svc_port != s.portal_port:
                public = {p.get("port") for p in svc.get("ports") or []}
                if public and svc_port not in public:
                    out.append(warning("fly.toml", line_of(fly_text, rf"internal_port\s*=\s*{svc_port}\b"),
                                       f"{expected[svc_port]} listens on {svc_port} but is published on "
                                       f"{sorted(map(str, public))}; game clients dial the port they are told",
                                       f"set the service's [[services.ports]] port = {svc_port} in fly.toml"))
        env_port = (ctx.fly_toml.get("env") or {}).get("PORT")
        if env_port is not None and str(env_port) != str(s.portal_port):
            out.append(error("fly.toml", line_of(fly_text, r"^[ \t]*PORT\s*=", re.M), f"[env] PORT = {env_port} "
                             f"but the portal's port is {s.portal_port}", fix_tail))
    if ctx.dockerfile is not None:
        exposed: dict[int, int] = {}
        for exp in ctx.dockerfile.exposes:
            for port in exp.ports:
                exposed[port] = exp.line
        if exposed:
            for port, name in expected.items():
                if port not in exposed:
                    out.append(error("Dockerfile", min(exposed.values()), f"EXPOSE lacks {port} ({name})",
                                     fix_tail))
            for port, line in exposed.items():
                if port not in expected:
                    out.append(error("Dockerfile", line, f"EXPOSE {port} is not a port of any server "
                                     f"(settings: {settings_desc})", fix_tail))
        else:
            out.append(warning("Dockerfile", None, "EXPOSE names no ports",
                               f"add `EXPOSE {' '.join(str(p) for p in expected)}`"))
    return out + _elixir_ports(ctx, fix_tail, settings_desc)


def _elixir_ports(ctx: CheckContext, fix_tail: str, settings_desc: str) -> list[Finding]:
    """The health controller's `@game_ports` and runtime.exs's PORT default, as Elixir reads them."""
    from bezgelor_tasks import elixir, elixir_source
    from bezgelor_tasks.areas.health import controller_path

    if not ctx.elixir_available:
        return []
    out: list[Finding] = []
    named, expected = ctx.settings.ports.all(), _expected(ctx)
    controller = controller_path(ctx.co)
    found = elixir_source.modules(ctx.co.path(controller)) if ctx.co.path(controller).is_file() else None
    for module in found or []:
        ports, line = module.attributes.get("game_ports", (None, None))
        for name, port in (ports.items() if isinstance(ports, dict) else ()):
            if name in named and port != named[name]:
                out.append(error(controller, line, f"the health check probes {name} on port {port}, but {name} "
                                 f"listens on {named[name]} (settings: {settings_desc})", fix_tail))
            elif name not in named and port not in expected:
                out.append(error(controller, line, f"the health check probes port {port}, which no server uses "
                                 f"(settings: {settings_desc})", fix_tail))
    runtime = ctx.co.path("config/runtime.exs")
    if "PORT" in ((ctx.fly_toml or {}).get("env") or {}):
        return out        # the machine gets PORT from fly.toml's [env] (checked above): a default is for local runs
    for read in (elixir.env_reads(runtime) or []) if runtime.is_file() else []:
        if read.var == "PORT" and read.default is not None and str(read.default) != str(ctx.settings.portal_port):
            out.append(error("config/runtime.exs", read.line, f"PORT defaults to {read.default}, but the portal's "
                             f"port is {ctx.settings.portal_port}", fix_tail))
    return out
