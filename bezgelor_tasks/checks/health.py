"""The health endpoint: a controller, routes for every health path, and the release module that
bin/migrate calls."""

from __future__ import annotations

import re

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_of, strip_elixir_comments


def check(ctx: CheckContext) -> list[Finding]:
    co, s = ctx.co, ctx.settings
    out: list[Finding] = []
    controller_rel = ctx.health_controller_rel()
    controller = ctx.text(controller_rel)
    if controller is None:
        out.append(error(controller_rel, None, "there is no health controller, so Fly's check of "
                         f"{s.health_paths[0]} gets a 404", "run `inv init` to write it"))
    elif f"defmodule {co.portal_web_module}.HealthController" not in controller:
        out.append(error(controller_rel, 1, f"does not define {co.portal_web_module}.HealthController",
                         "restore the module name the router points at"))
    router_rel = ctx.router_rel()
    router = ctx.text(router_rel)
    if router is None:
        out.append(error(router_rel, None, "the portal router is missing", "restore it from git"))
    else:
        code = strip_elixir_comments(router)
        for path in s.health_paths:
            if not re.search(rf"\bget\s*\(?\s*\"{re.escape(path)}\"\s*,\s*[\w.]*HealthController", code):
                out.append(error(router_rel, line_of(code, r"\bscope\b") or line_of(code, r"defmodule"),
                                 f"has no route for {path} to the HealthController",
                                 f'add `get "{path}", HealthController, :index` in a scope without auth '
                                 "(run `inv init`)"))
    release_rel = ctx.release_module_rel()
    release = ctx.text(release_rel)
    if release is None:
        out.append(error(release_rel, None, f"{co.db_module}.Release is missing, so bin/migrate has nothing "
                         "to call", "run `inv init` to write it (inside the db app: the umbrella's lib/ is not "
                         "part of the release)"))
    else:
        for fun in ("migrate", "rollback"):
            if not re.search(rf"\bdef\s+{fun}\b", release):
                out.append(error(release_rel, 1, f"{co.db_module}.Release has no {fun} function",
                                 "run `inv init --force` to rewrite it (a .orig copy is kept)"))
    return out
