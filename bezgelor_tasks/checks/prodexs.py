"""config/prod.exs: what `force_ssl` really receives (evaluated with Config.Reader), and whether
Fly's plain-HTTP health check would be redirected to https (a 301 the check counts as failing)."""

from __future__ import annotations

import re
from typing import Any

from bezgelor_tasks.checks.config import evaluation_problem
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, info, line_of, strip_elixir_comments, warning

REL = "config/prod.exs"


def check_header_sent(ctx: CheckContext) -> bool:
    """True when the portal's HTTP check sends `X-Forwarded-Proto: https` (so rewrite_on sees https)."""
    svc = ctx.portal_service()
    if not svc:
        return False
    for chk in svc.get("http_checks") or []:
        headers = {str(k).lower(): str(v).lower() for k, v in (chk.get("headers") or {}).items()}
        if headers.get("x-forwarded-proto") == "https":
            return True
    return False


def _textual_fallback(text: str) -> list[Finding]:
    code = strip_elixir_comments(text)
    m = re.search(r"force_ssl:\s*\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]\s*,\s*exclude:", code)
    if m:
        return [error(REL, line_of(code, r"exclude:", start=m.start()),
                      "`exclude:` sits outside `force_ssl` (a sibling endpoint option that Plug.SSL never sees)",
                      "move it inside force_ssl: `force_ssl: [rewrite_on: [...], "
                      "exclude: [paths: [...], hosts: [...]]]` (run `inv init`)")]
    return []


def check(ctx: CheckContext) -> list[Finding]:
    s, co = ctx.settings, ctx.co
    text = ctx.text(REL)
    if text is None:
        return [error(REL, None, "config/prod.exs is missing",
                      "restore it with `git checkout -- config/prod.exs`, then run `inv init`")]
    if not ctx.elixir_available:
        ctx.skipped.append("config/prod.exs was not evaluated with Config.Reader (Elixir is not installed): "
                           "only a textual check of force_ssl ran")
        return _textual_fallback(text)
    ev = ctx.evaluate(REL, "prod")
    if ev.config is None:
        if ev.needs_deps or ev.unreadable:  # said once by evaluation_problem; the text is still read
            return evaluation_problem(ctx, REL, ev, "evaluating config/prod.exs") + _textual_fallback(text)
        return evaluation_problem(ctx, REL, ev, "evaluating config/prod.exs with Config.Reader")
    cfg = ev.config
    app_cfg: Any = cfg.get(f":{s.portal_app}") or {}
    endpoint = app_cfg.get(f"Elixir.{co.portal_web_module}.Endpoint")
    if not isinstance(endpoint, dict):
        return [info(REL, None, f"sets no {co.portal_web_module}.Endpoint options, so nothing forces https",
                     "to force https, add `force_ssl: [rewrite_on: [:x_forwarded_proto], exclude: [paths: "
                     '["/health"]]]` to the endpoint in config/prod.exs (run `inv init`)')]
    out: list[Finding] = []
    if "exclude" in endpoint:
        out.append(error(REL, line_of(text, r"^[ \t]*exclude:", re.M) or line_of(text, r"exclude:"),
                         "`exclude:` sits outside `force_ssl`: it is an endpoint option Plug.SSL never sees, "
                         "so nothing is excluded from the https redirect",
                         "move it inside force_ssl: `force_ssl: [rewrite_on: [:x_forwarded_proto], "
                         "exclude: [paths: [\"/health\"], hosts: [...]]]` (run `inv init`)"))
    fs = endpoint.get("force_ssl")
    if not isinstance(fs, dict):
        return out
    fs_line = line_of(text, r"force_ssl:")
    excl = fs.get("exclude")
    paths: list[str] = []
    if isinstance(excl, dict):
        if not co.plug_has_exclude_keywords:
            out.append(error(REL, fs_line, f"force_ssl's exclude uses keywords, but Plug "
                             f"{co.lock.get('plug')} takes only a list of host strings",
                             "upgrade Plug to >= 1.19, or give exclude a plain list of hosts"))
        raw_paths = excl.get("paths") or []
        paths = [p for p in raw_paths if isinstance(p, str)] if isinstance(raw_paths, list) else []
    health = "/health"
    excluded = health in paths
    rewrite_on = fs.get("rewrite_on") or []
    header = check_header_sent(ctx)
    if not excluded and (not header or ":x_forwarded_proto" not in rewrite_on):
        why = ("Fly's HTTP check reaches the machine over plain HTTP without X-Forwarded-Proto, so "
               if not header else "force_ssl has no rewrite_on: [:x_forwarded_proto], so ")
        out.append(error(REL, fs_line, f"force_ssl redirects the health path {health}: {why}"
                         "the check gets a 301 and the machine never turns healthy",
                         f'add `paths: ["{health}", "/api/health", "/livez"]` to force_ssl\'s exclude '
                         "(and send X-Forwarded-Proto = \"https\" from the check) — run `inv init`"))
    elif not excluded:
        out.append(warning(REL, fs_line, f"the health path {health} is not excluded from force_ssl; only the "
                           "check's X-Forwarded-Proto header keeps it from a 301",
                           f'also add `paths: ["{health}"]` to force_ssl\'s exclude (run `inv init`)'))
    elif not header and ctx.fly_toml is not None:
        out.append(warning("fly.toml", line_of(ctx.text("fly.toml") or "", r"http_checks"),
                           "the portal's HTTP check sends no X-Forwarded-Proto header",
                           'add `[services.http_checks.headers]` with `X-Forwarded-Proto = "https"` (run `inv init`)'))
    runtime = strip_elixir_comments(ctx.text("config/runtime.exs") or "")
    if "force_ssl" in runtime:
        out.append(warning("config/runtime.exs", line_of(runtime, r"force_ssl"),
                           "force_ssl is also set in runtime.exs, which overrides prod.exs at boot",
                           "keep force_ssl in config/prod.exs only"))
    return out
