"""The health endpoint Fly checks: a controller the tool owns, and routes for every health path.

The routes go before every other route of the router (Phoenix uses the first that matches) in a scope
without a pipeline: a pipeline would fetch sessions, check CSRF or ask for a login, and Fly's checks have
none of those. The user's routes are not touched. The controller (probing the database and the game ports
at once, 200 or 503) is rendered from the settings, so verify diffs it against what it should be.
"""

from __future__ import annotations

from bezgelor_tasks import elixir_source
from bezgelor_tasks.areas import splice
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, warning
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, generated_change, read_text
from bezgelor_tasks.render import render

MARKER = "# bezgelor-tasks: health routes"
ROUTES = (("/health", "index"), ("/api/health", "index"), ("/livez", "liveness"))
# Each check of /health gets this long; all run at once, so /health answers in about this time even when a
# service hangs (Fly's check timeout in fly.toml is 5s).
CHECK_TIMEOUT_MS = 1500


def router_path(co: Checkout) -> str:
    return co.rel(co.portal_web_dir / "router.ex")


def controller_path(co: Checkout) -> str:
    return co.rel(co.portal_web_dir / "controllers" / "health_controller.ex")


def files(co: Checkout) -> tuple[str, ...]:
    return router_path(co), controller_path(co)


def controller_change(co: Checkout) -> FileChange:
    s, rel = co.settings, controller_path(co)
    body = render("elixir/health_controller.ex", web_module=co.portal_web_module, db_module=co.db_module,
                  portal_app=s.portal_app, auth_port=s.auth_port, realm_port=s.realm_port, world_port=s.world_port,
                  check_timeout_ms=CHECK_TIMEOUT_MS)
    return generated_change(co.path(rel), rel, body, "health controller: database and game ports checked at once, "
                            "200/503")


def owned(co: Checkout) -> list[FileChange]:
    return [controller_change(co)]


def router_change(co: Checkout) -> FileChange:
    rel = router_path(co)
    path = co.path(rel)
    old = read_text(path)
    if old is None:
        raise UserError(f"{rel} does not exist, so the health routes cannot be added.",
                        fix="set BEZGELOR_PORTAL_APP to the app whose lib/<app>_web/router.ex holds the router.")
    facts = elixir_source.router(path, old)
    if facts is None:   # no Elixir: init's apply refuses anyway; a dry run says what it skipped
        return FileChange(path, rel, old, old, "health routes", advice=(f"{rel} was not read (Elixir is not "
                                                                        "installed)",))
    have = {r.path for r in facts.routes if r.verb == "get"}
    missing = [(p, a) for p, a in ROUTES if p not in have]
    if not missing:
        return FileChange(path, rel, old, old, "health routes", mode="patch")
    if facts.module is None or facts.module_end is None:
        raise UserError(f"{rel}:1: it defines no module, so init cannot add the health routes and changed nothing.",
                        fix="check that the file is the Phoenix router.")
    at = facts.first_route if facts.first_route is not None else splice.line_start(old, facts.module_end)
    ind = splice.indent_at(old, at) if facts.first_route is not None else "  "
    routes = "\n".join(f'{ind}  get "{p}", HealthController, :{a}' for p, a in missing)
    block = (f"{ind}{MARKER} (Fly checks: no pipeline, so no session, CSRF or login)\n"
             f'{ind}scope "/", {co.portal_web_module} do\n{routes}\n{ind}end\n\n')
    new = splice.apply(old, [splice.lines_before(old, at, block, facts.comments)])
    return FileChange(path, rel, old, new, "health routes before every other route, outside any pipeline",
                      mode="patch", notes=("added " + ", ".join(p for p, _ in missing),))


def changes(co: Checkout) -> list[FileChange]:
    return [router_change(co), controller_change(co)]


def check(ctx: CheckContext) -> list[Finding]:
    co = ctx.co
    rel = router_path(co)
    text = ctx.text(rel)
    if text is None:
        return [error(rel, None, "the portal router is missing",
                      f"restore it with `git checkout -- {rel}` (or set BEZGELOR_PORTAL_APP)")]
    if not ctx.elixir_available:
        ctx.skipped.append(f"{rel} was NOT read (Elixir is not installed): its health routes are unchecked")
        return []
    facts = elixir_source.router(co.path(rel), text)
    if facts is None:
        return []     # it does not parse: reported once by the framework
    first_line = splice.line_of(text, facts.first_route) if facts.first_route is not None else None
    out: list[Finding] = []
    for path in ctx.settings.health_paths:
        first = next((r for r in facts.routes if r.path == path and r.verb == "get"), None)
        if first is None or not first.controller.endswith("HealthController"):
            out.append(error(rel, first.line if first else first_line, f"has no route for {path} to the "
                             "HealthController", f'add `get "{path}", HealthController, :index` in a scope without '
                             "auth (run `inv init`)"))
        elif first.pipelines:
            pipes = ", ".join(f":{p}" for p in first.pipelines)
            out.append(warning(rel, first.line, f"{path} is routed through the pipeline(s) {pipes} (the first route "
                               "for it wins): sessions, CSRF, login or format checks may redirect or refuse Fly's "
                               "health check, which sends none of them", f'move `get "{path}", HealthController, ...` '
                               f"to a scope with no pipe_through, above every other scope in {rel} (run `inv init`)"))
    return out
