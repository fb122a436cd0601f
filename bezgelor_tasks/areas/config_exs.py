"""config/config.exs (and the env file it imports) must evaluate for :prod, as `mix release` does.

Evaluated with Config.Reader by real Elixir, without deps: a config that calls into a dependency
cannot be evaluated here, which is said (info, "skipped (needs deps)") rather than guessed at.
"""

from __future__ import annotations

import re

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext, Evaluation
from bezgelor_tasks.checks.findings import Finding, error, info

REL = "config/config.exs"


def files(co: Checkout) -> list[str]:
    """config.exs and the files it imports for other environments (prod.exs and runtime.exs are areas of
    their own)."""
    return [f"config/{p.name}" for p in sorted(co.path("config").glob("*.exs"))
            if p.name not in ("prod.exs", "runtime.exs")]


# A file that does not parse is reported once, with its line, by the areas' framework (areas/framework.py).
_PARSE_ERROR = re.compile(r"\((?:TokenMissingError|SyntaxError|MismatchedDelimiterError)\)")


def evaluation_problem(ctx: CheckContext, rel: str, ev: Evaluation, what: str) -> list[Finding]:
    """The finding (or skipped note) for an evaluation that produced no config; [] when it did."""
    if ev.ok:
        return []
    if ev.needs_deps:
        return [info(rel, None, f"{what}: skipped (needs deps) — it calls into a dependency that is not "
                     f"compiled here ({ev.error})",
                     "check it with deps instead: run `MIX_ENV=prod mix compile` in the checkout (it evaluates "
                     "the config)")]
    if ev.unreadable:
        ctx.skipped.append(f"{rel} evaluated, but {ev.error}")
        return []
    if _PARSE_ERROR.search(ev.error or ""):
        return []
    where = ev.error_file or rel
    return [error(where, ev.line, f"{what} fails: {ev.error}",
                  f"edit {where}{f' at line {ev.line}' if ev.line else ''} to fix the Elixir error it names, "
                  "then run `inv verify` again")]


def check(ctx: CheckContext) -> list[Finding]:
    if ctx.text(REL) is None:
        return [error(REL, None, "config/config.exs is missing, so `mix release` has no configuration",
                      "restore it with `git checkout -- config/config.exs`")]
    if not ctx.elixir_available:
        ctx.skipped.append(f"{REL} was NOT evaluated for :prod (Elixir is not installed)")
        return []
    ev = ctx.evaluate(REL, "prod")
    if ev.error_file == "config/prod.exs":
        return []  # the prodexs check evaluates config/prod.exs itself and reports this
    return evaluation_problem(ctx, REL, ev, "evaluating config/config.exs for :prod")
