"""config/prod.exs: put `exclude` inside `force_ssl` (where Plug.SSL reads it) and turn on HSTS.

Bezgelor's prod.exs passes `exclude:` next to `force_ssl:` as an *endpoint* option, which nothing
reads: every plain-HTTP request, Fly's health checks included, gets a 301. Plug >= 1.19 takes
`exclude: [hosts: [...], paths: [...]]` inside `force_ssl`; older Plug only a list of host strings
(then the fly.toml check must send `X-Forwarded-Proto: https`, which we do anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bezgelor_tasks.checkout import elixir_text as et
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text

REL = "config/prod.exs"
_STRING_RE = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class _Call:
    """A `config :app, Module, k: v, ...` call: where its keyword arguments are."""
    start: int
    args_open: int   # index just before the first keyword argument
    args_end: int    # one past the last one
    entries: list[et.Entry]


def _calls(text: str, masked: str, app: str, module: str) -> list[_Call]:
    calls = []
    pat = re.compile(rf"^[ \t]*config[ \t]*\(?[ \t]*:{re.escape(app)}[ \t]*,[ \t]*{re.escape(module)}[ \t]*,", re.M)
    for m in pat.finditer(masked):
        end = et.call_end(masked, m.end())
        calls.append(_Call(m.start(), m.end() - 1, end, et.split_elements(text, masked, m.end() - 1, end)))
    return calls


def _strings(value: str, masked_value: str) -> list[str]:
    """String literals of a value, skipping those inside comments (blanked in the masked text)."""
    out = []
    for m in _STRING_RE.finditer(value):
        if masked_value[m.start()] == '"':
            out.append(m.group(1))
    return out


def _exclude_parts(text: str, masked: str, entry: et.Entry) -> tuple[list[str], list[str]]:
    """(hosts, paths) of an `exclude:` value in either form."""
    vs = entry.value_start
    if masked[vs] != "[":
        return [], []
    close = et.matching(masked, vs)
    hosts: list[str] = []
    paths: list[str] = []
    for e in et.split_elements(text, masked, vs, close):
        value, mvalue = text[e.value_start:e.end], masked[e.value_start:e.end]
        if e.key == "hosts":
            hosts += _strings(value, mvalue)
        elif e.key == "paths":
            paths += _strings(value, mvalue)
        elif e.key is None:
            hosts += _strings(value, mvalue)
    return hosts, paths


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _exclude_source(co: Checkout, hosts: list[str], paths: list[str], indent: str) -> str:
    q = et.elixir_string
    if co.plug_has_exclude_keywords:
        all_paths = _dedupe([*paths, *co.settings.health_paths])
        return (f"exclude: [\n{indent}  hosts: [{', '.join(q(h) for h in hosts)}],\n"
                f"{indent}  paths: [{', '.join(q(p) for p in all_paths)}]\n{indent}]")
    return f"exclude: [{', '.join(q(h) for h in hosts)}]"


def prod_exs_change(co: Checkout) -> FileChange:
    path = co.path(REL)
    old = read_text(path)
    if old is None:
        raise UserError(f"{REL} does not exist.", fix="restore it from git (git checkout -- config/prod.exs).")
    from bezgelor_tasks.checkout.mixexs import check_syntax

    check_syntax(co, REL)
    text, masked = old, et.mask(old)
    app, module = co.settings.portal_app, f"{co.portal_web_module}.Endpoint"
    calls = _calls(text, masked, app, module)
    notes: list[str] = []
    force = [(c, e) for c in calls for e in c.entries if e.key == "force_ssl"]
    stray = [(c, e) for c in calls for e in c.entries if e.key == "exclude"]
    if len(force) > 1:
        raise et.not_patchable(REL, et.line_of(text, force[1][1].start), "force_ssl is set more than once",
                               "keep one `force_ssl:` for the endpoint, then run again.")
    hosts: list[str] = []
    paths: list[str] = []
    for _, e in stray:
        h, p = _exclude_parts(text, masked, e)
        hosts += h
        paths += p
    keep: list[str] = []
    has_hsts = False
    inner_exclude = None
    if force:
        _, fe = force[0]
        if masked[fe.value_start] != "[":
            raise et.not_patchable(REL, et.line_of(text, fe.start), "force_ssl is not a keyword list literal",
                                   "write it as `force_ssl: [rewrite_on: [:x_forwarded_proto]]`, then run again.")
        fclose = et.matching(masked, fe.value_start)
        for e in et.split_elements(text, masked, fe.value_start, fclose):
            if e.key == "exclude":
                inner_exclude = e
                h, p = _exclude_parts(text, masked, e)
                hosts += h
                paths += p
            else:
                has_hsts = has_hsts or e.key == "hsts"
                keep.append(text[e.start:e.end])
    if not hosts:
        hosts = ["localhost", "127.0.0.1"]
    hosts = _dedupe(hosts)
    if not any(k.startswith("rewrite_on") for k in keep):
        keep.insert(0, "rewrite_on: [:x_forwarded_proto]")
        notes.append("force_ssl now trusts X-Forwarded-Proto (Fly terminates TLS)")
    if not has_hsts:
        keep.append("hsts: true")
        notes.append("force_ssl sends HSTS (hsts: true)")

    # Already right? (exclude inside force_ssl with every health path, no stray exclude, hsts set)
    if force and not stray and inner_exclude is not None and has_hsts and "rewrite_on" in "".join(keep):
        _, have_paths = _exclude_parts(text, masked, inner_exclude)
        keyword_form = re.match(r"\[\s*(hosts|paths|conn):", masked[inner_exclude.value_start:]) is not None
        if (set(co.settings.health_paths) <= set(have_paths) if co.plug_has_exclude_keywords
                else not keyword_form):
            return FileChange(path, REL, old, old, "force_ssl exclude/hsts", mode="patch")

    if force:
        call, fe = force[0]
        ind = et.indent_at(text, fe.start)
        body = ",\n".join(f"{ind}  {k}" for k in keep)
        comment = (f"{ind}  # Fly's HTTP checks arrive over plain HTTP: never redirect the health routes.\n"
                   if co.plug_has_exclude_keywords else
                   f"{ind}  # Plug < 1.19 can exclude hosts only: fly.toml's check sends X-Forwarded-Proto.\n")
        new_force = (f"force_ssl: [\n{body},\n{comment}{ind}  "
                     f"{_exclude_source(co, hosts, paths, ind + '  ')}\n{ind}]")
        edits: list[tuple[int, int, str]] = [(fe.start, fe.end, new_force)]
    else:
        edits = []
    for c, e in stray:
        idx = c.entries.index(e)
        if idx + 1 < len(c.entries):
            edits.append((e.start, c.entries[idx + 1].start, ""))
        elif idx > 0:
            edits.append((c.entries[idx - 1].end, e.end, ""))
        else:
            raise et.not_patchable(REL, et.line_of(text, e.start), "`exclude:` is the only option of its config call",
                                   "move it into force_ssl by hand, then run again.")
    if stray:
        notes.append("moved `exclude:` (an endpoint option nothing reads) inside force_ssl")
    for start, end, repl in sorted(edits, reverse=True):
        text = text[:start] + repl + text[end:]
    if not force:
        ind = "  "
        body = ",\n".join(f"{ind}  {k}" for k in keep)
        text = text.rstrip("\n") + (
            f"\n\n# Fly terminates TLS: trust X-Forwarded-Proto, send HSTS, never redirect the health routes.\n"
            f"config :{app}, {module},\n{ind}force_ssl: [\n{body},\n{ind}  "
            f"{_exclude_source(co, hosts, paths, ind + '  ')}\n{ind}]\n")
        notes.append("added force_ssl for the endpoint")
    if co.plug_has_exclude_keywords:
        notes.append("force_ssl excludes the health paths " + ", ".join(co.settings.health_paths))
    else:
        notes.append("Plug < 1.19: exclude takes host strings only; the health check must send X-Forwarded-Proto")
    return FileChange(path, REL, old, text, "force_ssl: exclude inside it, HSTS on", mode="patch", notes=tuple(notes))
