"""The portal router: /health, /api/health and /livez, before every other route, in no pipeline.

A pipeline would fetch sessions, check CSRF or require a login, and Fly's checks have none of
those. Phoenix matches routes in order, so the health scope goes before the first scope (or route)
of the router; the user's routes are not touched.
"""

from __future__ import annotations

import re

from bezgelor_tasks.checkout import elixir_text as et
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checkout.mixexs import check_syntax
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text

MARKER = "# bezgelor-tasks: health routes"
ROUTES = (("/health", "index"), ("/api/health", "index"), ("/livez", "liveness"))
_FIRST_ROUTE = re.compile(r"^([ \t]+)(scope|get|post|put|patch|delete|live|forward|resources|live_session)\b", re.M)


def routed_paths(text: str) -> set[str]:
    """Paths the router already sends to some GET route (ignores comments)."""
    masked = et.mask(text)
    found = set()
    for m in re.finditer(r'^[ \t]*get[ \t(]+"([^"]*)"', text, re.M):
        if masked[m.start():m.end()].lstrip().startswith("get"):
            found.add(m.group(1))
    return found


def router_path(co: Checkout) -> str:
    return co.rel(co.portal_web_dir / "router.ex")


def router_change(co: Checkout) -> FileChange:
    path = co.portal_web_dir / "router.ex"
    rel = co.rel(path)
    old = read_text(path)
    if old is None:
        raise UserError(f"{rel} does not exist, so the health routes cannot be added.",
                        fix="set BEZGELOR_PORTAL_APP to the app whose lib/<app>_web/router.ex holds the router.")
    check_syntax(co, rel)
    have = routed_paths(old)
    missing = [(p, a) for p, a in ROUTES if p not in have]
    if not missing:
        return FileChange(path, rel, old, old, "health routes", mode="patch")
    masked = et.mask(old)
    mod = re.search(r"^defmodule\s+([\w.]+)\s+do\b", masked, re.M)
    if mod is None:
        raise et.not_patchable(rel, 1, "it has no `defmodule ... do`", "check the file is the Phoenix router.")
    first = _FIRST_ROUTE.search(masked, mod.end())
    web = co.portal_web_module
    lines = [f'{p!r}'.replace("'", '"') for p, _ in missing]
    if first is not None:
        ind = first.group(1)
        at = et.line_start(old, first.start())
        # keep a comment block directly above the first scope attached to it
        while at > 0:
            prev_start = et.line_start(old, at - 1)
            if old[prev_start:at].strip().startswith("#"):
                at = prev_start
            else:
                break
    else:
        ind = "  "
        at = et.line_start(old, et.module_end(masked))
    routes = "\n".join(f"{ind}  get {path_lit}, HealthController, :{action}"
                       for path_lit, (_, action) in zip(lines, missing, strict=True))
    block = (f"{ind}{MARKER} (Fly checks: no pipeline, so no session, CSRF or login)\n"
             f"{ind}scope \"/\", {web} do\n{routes}\n{ind}end\n\n")
    new = old[:at] + block + old[at:]
    return FileChange(path, rel, old, new, "health routes before every other route, outside any pipeline",
                      mode="patch", notes=("added " + ", ".join(p for p, _ in missing),))
