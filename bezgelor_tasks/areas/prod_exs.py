"""config/prod.exs: `exclude` inside `force_ssl` (where Plug.SSL reads it), the health paths excluded, HSTS on.

Bezgelor's prod.exs passes `exclude:` next to `force_ssl:` as an *endpoint* option, which nothing reads:
every plain-HTTP request, Fly's health checks included, gets a 301. Plug >= 1.19 takes `exclude: [hosts:
[...], paths: [...]]` inside `force_ssl`; older Plug only a list of host strings (then fly.toml's check must
send `X-Forwarded-Proto: https`, which it does anyway). verify evaluates the file with Config.Reader and
judges what `force_ssl` really receives.
"""

from __future__ import annotations

from typing import Any

from bezgelor_tasks import elixir_source
from bezgelor_tasks.areas import splice
from bezgelor_tasks.areas.config_exs import evaluation_problem
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, info, warning
from bezgelor_tasks.elixir_source import ConfigCall, ConfigSource, Item
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text
from bezgelor_tasks.game.rpc import elixir_string as q

REL = "config/prod.exs"
FILES = (REL,)


def _not_patchable(line: int | None, what: str, fix: str) -> UserError:
    return UserError(f"{REL}:{line or 1}: {what}, so init cannot patch it safely and changed nothing.", fix=fix)


def _endpoint(co: Checkout, cs: ConfigSource) -> list[ConfigCall]:
    module = f"{co.portal_web_module}.Endpoint"
    return [c for c in cs.calls if c.app == co.settings.portal_app and c.key == module]


def _exclude_parts(item: Item) -> tuple[list[str], list[str]]:
    """(hosts, paths) of an `exclude:` value in either form (a keyword list, or host strings)."""
    value: Any = item.value.value
    if isinstance(value, dict):
        return ([h for h in value.get("hosts") or [] if isinstance(h, str)],
                [p for p in value.get("paths") or [] if isinstance(p, str)])
    if isinstance(value, list):
        return [h for h in value if isinstance(h, str)], []
    return [], []


def _exclude_source(co: Checkout, hosts: list[str], paths: list[str], indent: str) -> str:
    if co.plug_has_exclude_keywords:
        all_paths = list(dict.fromkeys([*paths, *co.settings.health_paths]))
        return (f"exclude: [\n{indent}  hosts: [{', '.join(q(h) for h in hosts)}],\n"
                f"{indent}  paths: [{', '.join(q(p) for p in all_paths)}]\n{indent}]")
    return f"exclude: [{', '.join(q(h) for h in hosts)}]"


def _remove_entry(cs: ConfigSource, call: ConfigCall, item: Item) -> splice.Edit:
    """Remove a stray `exclude:` from its config call."""
    edit = splice.remove_entry(cs.text, call.entries, call.entries.index(item), cs.comments)
    if edit is None:
        raise _not_patchable(item.line, f"`{item.key}:` is the only option of its config call (or not a list)",
                             "move it into force_ssl by hand, then run again.")
    return edit


def prod_exs_change(co: Checkout) -> FileChange:
    path = co.path(REL)
    old = read_text(path)
    if old is None:
        raise UserError(f"{REL} does not exist.", fix="restore it from git (git checkout -- config/prod.exs).")
    cs = elixir_source.config_source(path, old)
    why = "force_ssl: exclude inside it, HSTS on"
    if cs is None:   # no Elixir: init's apply refuses anyway; a dry run says what it skipped
        return FileChange(path, REL, old, old, why, advice=(f"{REL} was not read (Elixir is not installed)",))
    calls = _endpoint(co, cs)
    force = [(c, e) for c in calls for e in c.entries if e.key == "force_ssl"]
    stray = [(c, e) for c in calls for e in c.entries if e.key == "exclude"]
    if len(force) > 1:
        raise _not_patchable(force[1][1].line, "force_ssl is set more than once",
                             "keep one `force_ssl:` for the endpoint, then run again.")
    hosts, paths, keep, inner = _gather(cs, force, stray)
    notes: list[str] = []
    has_hsts = any(k.startswith("hsts") for k in keep)
    if not any(k.startswith("rewrite_on") for k in keep):
        keep.insert(0, "rewrite_on: [:x_forwarded_proto]")
        notes.append("force_ssl now trusts X-Forwarded-Proto (Fly terminates TLS)")
    if not has_hsts:
        keep.append("hsts: true")
        notes.append("force_ssl sends HSTS (hsts: true)")
    if force and not stray and inner is not None and has_hsts and len(notes) == 0 and _complete(co, inner):
        return FileChange(path, REL, old, old, why, mode="patch")
    hosts = list(dict.fromkeys(hosts or ["localhost", "127.0.0.1"]))
    edits = [_remove_entry(cs, c, e) for c, e in stray]
    if stray:
        notes.append("moved `exclude:` (an endpoint option nothing reads) inside force_ssl")
    if force:
        edits.append(_force_edit(co, old, force[0][1], keep, hosts, paths))
    else:
        body = ",\n".join(f"    {k}" for k in keep)
        edits.append(splice.at_end(old, (
            "# Fly terminates TLS: trust X-Forwarded-Proto, send HSTS, never redirect the health routes.\n"
            f"config :{co.settings.portal_app}, {co.portal_web_module}.Endpoint,\n  force_ssl: [\n{body},\n    "
            f"{_exclude_source(co, hosts, paths, '    ')}\n  ]\n")))
        notes.append("added force_ssl for the endpoint")
    new = splice.apply(old, edits)
    notes.append("force_ssl excludes the health paths " + ", ".join(co.settings.health_paths)
                 if co.plug_has_exclude_keywords else
                 "Plug < 1.19: exclude takes host strings only; the health check must send X-Forwarded-Proto")
    return FileChange(path, REL, old, new, why, mode="patch", notes=tuple(notes))


def _gather(cs: ConfigSource, force: list[tuple[ConfigCall, Item]], stray: list[tuple[ConfigCall, Item]]
            ) -> tuple[list[str], list[str], list[str], Item | None]:
    """(hosts, paths) from every exclude, force_ssl's other options as source text, force_ssl's own exclude."""
    hosts: list[str] = []
    paths: list[str] = []
    for _, e in stray:
        h, p = _exclude_parts(e)
        hosts, paths = hosts + h, paths + p
    keep: list[str] = []
    inner = None
    if force:
        fe = force[0][1].value
        if not fe.is_list or fe.items is None:
            raise _not_patchable(force[0][1].line, "force_ssl is not a keyword list literal",
                                 "write it as `force_ssl: [rewrite_on: [:x_forwarded_proto]]`, then run again.")
        for i, e in enumerate(fe.items):
            if e.key == "exclude":
                inner = e
                h, p = _exclude_parts(e)
                hosts, paths = hosts + h, paths + p
            else:
                keep.append(splice.item_source(cs.text, fe, i, cs.comments))
    return hosts, paths, keep, inner


def _complete(co: Checkout, inner: Item) -> bool:
    """force_ssl's own exclude already names every health path (or, before Plug 1.19, is a host list)."""
    value = inner.value.value
    if co.plug_has_exclude_keywords:
        return set(co.settings.health_paths) <= set(_exclude_parts(inner)[1])
    return isinstance(value, list)


def _force_edit(co: Checkout, text: str, force: Item, keep: list[str], hosts: list[str],
                paths: list[str]) -> splice.Edit:
    ind = splice.indent_at(text, force.start)
    body = ",\n".join(f"{ind}  {k}" for k in keep)
    comment = (f"{ind}  # Fly's HTTP checks arrive over plain HTTP: never redirect the health routes.\n"
               if co.plug_has_exclude_keywords else
               f"{ind}  # Plug < 1.19 can exclude hosts only: fly.toml's check sends X-Forwarded-Proto.\n")
    return splice.replace_node(force.value, f"[\n{body},\n{comment}{ind}  "
                               f"{_exclude_source(co, hosts, paths, ind + '  ')}\n{ind}]")


# -- verify ----------------------------------------------------------------------------------------------------

def check_header_sent(ctx: CheckContext) -> bool:
    """True when the portal's HTTP check sends `X-Forwarded-Proto: https` (so rewrite_on sees https)."""
    svc = ctx.portal_service()
    for chk in (svc or {}).get("http_checks") or []:
        headers = {str(k).lower(): str(v).lower() for k, v in (chk.get("headers") or {}).items()}
        if headers.get("x-forwarded-proto") == "https":
            return True
    return False


def _lines(ctx: CheckContext) -> dict[str, int | None]:
    """Where prod.exs sets the endpoint's force_ssl and a stray exclude, and runtime.exs any force_ssl."""
    found: dict[str, int | None] = {}
    cs = elixir_source.config_source(ctx.co.path(REL))
    for call in _endpoint(ctx.co, cs) if cs else []:
        for e in call.entries:
            found.setdefault(e.key or "", e.line)
    runtime = ctx.co.path("config/runtime.exs")
    rs = elixir_source.config_source(runtime) if runtime.is_file() else None
    found["runtime_force_ssl"] = next((e.line for c in (rs.calls if rs else ()) for e in c.entries
                                       if e.key == "force_ssl"), None)
    return found


def check(ctx: CheckContext) -> list[Finding]:
    s, co = ctx.settings, ctx.co
    if ctx.text(REL) is None:
        return [error(REL, None, "config/prod.exs is missing",
                      "restore it with `git checkout -- config/prod.exs`, then run `inv init`")]
    if not ctx.elixir_available:
        ctx.skipped.append(f"{REL} was NOT evaluated with Config.Reader (Elixir is not installed): force_ssl is "
                           "unchecked")
        return []
    ev = ctx.evaluate(REL, "prod")
    if ev.config is None:
        return evaluation_problem(ctx, REL, ev, "evaluating config/prod.exs with Config.Reader")
    endpoint = (ev.config.get(f":{s.portal_app}") or {}).get(f"Elixir.{co.portal_web_module}.Endpoint")
    if not isinstance(endpoint, dict):
        return [info(REL, None, f"sets no {co.portal_web_module}.Endpoint options, so nothing forces https",
                     "to force https, add `force_ssl: [rewrite_on: [:x_forwarded_proto], exclude: [paths: "
                     '["/health"]]]` to the endpoint in config/prod.exs (run `inv init`)')]
    lines = _lines(ctx)
    out: list[Finding] = []
    if "exclude" in endpoint:
        out.append(error(REL, lines.get("exclude"), "`exclude:` sits outside `force_ssl`: it is an endpoint option "
                         "Plug.SSL never sees, so nothing is excluded from the https redirect",
                         "move it inside force_ssl: `force_ssl: [rewrite_on: [:x_forwarded_proto], "
                         "exclude: [paths: [\"/health\"], hosts: [...]]]` (run `inv init`)"))
    fs = endpoint.get("force_ssl")
    if isinstance(fs, dict):
        out += _force_ssl_findings(ctx, fs, lines.get("force_ssl"))
    if lines.get("runtime_force_ssl"):
        out.append(warning("config/runtime.exs", lines["runtime_force_ssl"], "force_ssl is also set in runtime.exs, "
                           "which overrides prod.exs at boot", "keep force_ssl in config/prod.exs only"))
    return out


def _force_ssl_findings(ctx: CheckContext, fs: dict[str, Any], line: int | None) -> list[Finding]:
    co = ctx.co
    excl = fs.get("exclude")
    out: list[Finding] = []
    paths: list[str] = []
    if isinstance(excl, dict):
        if not co.plug_has_exclude_keywords:
            out.append(error(REL, line, f"force_ssl's exclude uses keywords, but Plug {co.lock.get('plug')} takes "
                             "only a list of host strings", "upgrade Plug to >= 1.19, or give exclude a plain list "
                             "of hosts"))
        raw = excl.get("paths") or []
        paths = [p for p in raw if isinstance(p, str)] if isinstance(raw, list) else []
    health, excluded = "/health", "/health" in paths
    header = check_header_sent(ctx)
    if not excluded and (not header or ":x_forwarded_proto" not in (fs.get("rewrite_on") or [])):
        why = ("Fly's HTTP check reaches the machine over plain HTTP without X-Forwarded-Proto, so "
               if not header else "force_ssl has no rewrite_on: [:x_forwarded_proto], so ")
        out.append(error(REL, line, f"force_ssl redirects the health path {health}: {why}the check gets a 301 "
                         "and the machine never turns healthy",
                         f'add `paths: ["{health}", "/api/health", "/livez"]` to force_ssl\'s exclude (and send '
                         'X-Forwarded-Proto = "https" from the check) — run `inv init`'))
    elif not excluded:
        out.append(warning(REL, line, f"the health path {health} is not excluded from force_ssl; only the check's "
                           "X-Forwarded-Proto header keeps it from a 301",
                           f'also add `paths: ["{health}"]` to force_ssl\'s exclude (run `inv init`)'))
    elif not header and ctx.fly_toml is not None:
        out.append(warning("fly.toml", None, "the portal's HTTP check sends no X-Forwarded-Proto header",
                           'add `[services.http_checks.headers]` with `X-Forwarded-Proto = "https"` (run `inv init`)'))
    return out
