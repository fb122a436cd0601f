"""config/runtime.exs: reads every variable the release needs at boot (and fails loudly without it)."""

from __future__ import annotations

import re

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_of, strip_elixir_comments, warning

REL = "config/runtime.exs"
_FALLBACK_REQUIRED = ("SECRET_KEY_BASE", "CLOAK_KEY", "DATABASE_URL", "WORLD_PUBLIC_ADDRESS")


def required_env() -> tuple[str, ...]:
    try:
        from bezgelor_tasks.checkout.runtime import REQUIRED_ENV
    except ImportError:
        return _FALLBACK_REQUIRED
    return tuple(REQUIRED_ENV)


def check(ctx: CheckContext) -> list[Finding]:
    text = ctx.text(REL)
    if text is None:
        return [error(REL, None, "config/runtime.exs is missing, so the release reads no secrets at boot",
                      "run `inv init` to write it")]
    code = strip_elixir_comments(text)
    out: list[Finding] = []
    prod_block = line_of(code, r"config_env\(\)\s*==\s*:prod")
    for var in required_env():
        if not re.search(rf"System\.(?:get_env|fetch_env!?)\(\s*\"{var}\"", code):
            out.append(error(REL, prod_block, f"never reads {var}, which the release needs in production",
                             f'read it with System.get_env("{var}") || raise "..." inside the :prod block '
                             "(run `inv init`)"))
    if prod_block is None:
        out.append(warning(REL, None, "has no `if config_env() == :prod do` block",
                           "put production-only settings inside one (run `inv init`)"))
    return out
