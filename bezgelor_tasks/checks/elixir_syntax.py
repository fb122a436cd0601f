"""Every .ex/.exs init writes or patches must parse with real Elixir (`Code.string_to_quoted`)."""

from __future__ import annotations

from pathlib import Path

from bezgelor_tasks import elixir
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error


def elixir_files(ctx: CheckContext) -> list[Path]:
    """The Elixir files init touches (and the config files next to them), those that exist."""
    co = ctx.co
    candidates = [co.path("mix.exs"), *sorted(co.path("config").glob("*.exs")),
                  co.path(ctx.router_rel()), co.path(ctx.health_controller_rel()),
                  co.path(ctx.release_module_rel())]
    return [p for p in candidates if p.is_file()]


def check(ctx: CheckContext) -> list[Finding]:
    files = elixir_files(ctx)
    if not ctx.elixir_available:
        ctx.skipped.append(f"{len(files)} .ex/.exs file(s) were NOT syntax-checked: Elixir is not installed "
                           "(apt-get install elixir)")
        return []
    return [error(p.file, p.line or None, f"does not parse: {p.message}", f"edit {p.file}"
            + (f" at line {p.line}" if p.line else "") + " to fix the syntax error it names")
            for p in elixir.parse_files(files, ctx.co.root)]
