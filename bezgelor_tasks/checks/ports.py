"""One set of ports everywhere: settings, the health controller's TCP probes and runtime.exs's PORT default
(fly.toml's ports are part of its spec, areas/fly_toml_spec.py; the Dockerfile's EXPOSE is its area's)."""

from __future__ import annotations

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error


def _expected(ctx: CheckContext) -> dict[int, str]:
    return {port: name for name, port in ctx.settings.ports.all().items()}


def check(ctx: CheckContext) -> list[Finding]:
    s = ctx.settings
    settings_desc = ", ".join(f"{n} {p}" for n, p in s.ports.all().items())
    fix_tail = "keep them equal to the settings (BEZGELOR_*_PORT), or run `inv init` to regenerate"
    return _elixir_ports(ctx, fix_tail, settings_desc)


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
    # fly.toml's [env] PORT (written from the same setting) wins on Fly: then runtime.exs's default never applies
    fly_port = str(((ctx.fly_toml or {}).get("env") or {}).get("PORT", ""))
    runtime = ctx.co.path("config/runtime.exs")
    if "PORT" in ((ctx.fly_toml or {}).get("env") or {}):
        return out        # the machine gets PORT from fly.toml's [env] (checked above): a default is for local runs
    for read in (elixir.env_reads(runtime) or []) if runtime.is_file() else []:
        if read.var == "PORT" and read.default is not None and str(read.default) != str(ctx.settings.portal_port) \
                and fly_port != str(ctx.settings.portal_port):
            out.append(error("config/runtime.exs", read.line, f"PORT defaults to {read.default}, but the portal's "
                             f"port is {ctx.settings.portal_port}", fix_tail))
    return out
