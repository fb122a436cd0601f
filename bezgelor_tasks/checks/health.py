"""The health endpoint: a controller, routes for every health path, and the release module that
bin/migrate calls."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bezgelor_tasks.checkout import elixir_text as et
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_at, line_of, strip_elixir_comments, warning

_TOKEN = re.compile(r"\b(scope|pipe_through|get|do|end|fn)\b(?!:)(?![?!])")
_STRING = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class Route:
    """A GET route as Phoenix sees it: the full path (scope prefixes joined) and the pipelines it
    runs through (those its scopes piped through before it was defined)."""
    path: str
    pipelines: tuple[str, ...]
    line: int


def _join(prefix: str, path: str) -> str:
    parts = [p for p in (prefix + "/" + path).split("/") if p]
    return "/" + "/".join(parts)


def get_routes(text: str) -> list[Route]:
    """The router's GET routes in definition order (the first one matching a path is the one used).

    Only literal paths count; `do ... end` blocks are followed to know which scope (and so which
    `pipe_through`) each route is in."""
    masked = et.mask(text)
    stack: list[tuple[bool, str, list[str]]] = [(False, "", [])]   # (is_scope, prefix, pipelines so far)
    pending_scope: str | None = None
    routes: list[Route] = []
    for m in _TOKEN.finditer(masked):
        word = m.group(1)
        _, prefix, pipes = stack[-1]
        if word == "scope":
            args = text[m.end():masked.find("\n", m.end())]
            lit = re.match(r'[ \t(]*"([^"]*)"', args)
            pending_scope = lit.group(1) if lit else ""
            if re.search(r"\bdo:", masked[m.end():masked.find("\n", m.end())]):
                pending_scope = None     # a one-line `scope ..., do: ...`: no block to follow
        elif word == "do":
            if pending_scope is not None:
                stack.append((True, _join(prefix, pending_scope), list(pipes)))
            else:
                stack.append((False, prefix, list(pipes)))
            pending_scope = None
        elif word == "fn":
            stack.append((False, prefix, list(pipes)))
        elif word == "end":
            if len(stack) > 1:
                stack.pop()
        elif word == "pipe_through":
            line_end = masked.find("\n", m.end())
            stack[-1][2].extend(re.findall(r":([a-z_][a-zA-Z0-9_]*)", text[m.end():line_end]))
        elif word == "get":
            lit = re.match(r'[ \t(]*"([^"]*)"', text[m.end():])
            if lit:
                routes.append(Route(_join(prefix, lit.group(1)), tuple(pipes), line_at(text, m.start())))
    return routes


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
                         f"rename the module in {controller_rel} to "
                         f"{co.portal_web_module}.HealthController (or delete the file and run `inv init`)"))
    router_rel = ctx.router_rel()
    router = ctx.text(router_rel)
    if router is None:
        out.append(error(router_rel, None, "the portal router is missing",
                         f"restore it with `git checkout -- {router_rel}` (or set BEZGELOR_PORTAL_APP)"))
    else:
        code = strip_elixir_comments(router)
        for path in s.health_paths:
            if not re.search(rf"\bget\s*\(?\s*\"{re.escape(path)}\"\s*,\s*[\w.]*HealthController", code):
                out.append(error(router_rel, line_of(code, r"\bscope\b") or line_of(code, r"defmodule"),
                                 f"has no route for {path} to the HealthController",
                                 f'add `get "{path}", HealthController, :index` in a scope without auth '
                                 "(run `inv init`)"))
        routes = get_routes(router)
        for path in s.health_paths:
            first = next((r for r in routes if r.path == path), None)
            if first is not None and first.pipelines:
                pipes = ", ".join(f":{p}" for p in first.pipelines)
                out.append(warning(router_rel, first.line,
                                   f"{path} is routed through the pipeline(s) {pipes} (the first route for it "
                                   "wins): sessions, CSRF, login or format checks may redirect or refuse "
                                   "Fly's health check, which sends none of them",
                                   f"move `get \"{path}\", HealthController, ...` to a scope with no pipe_through, "
                                   f"above every other scope in {router_rel} (run `inv init`)"))
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
