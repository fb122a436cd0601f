"""The umbrella's mix.exs: the release (`releases/0`) and the asset aliases the Docker build needs.

Patched in place (the file is the user's): comments, other project keys and deps are kept. What we
add: `releases: releases()` and `aliases: aliases()` in project/0, a release named
`settings.release_name` with every non-dev app `:permanent`, and umbrella aliases that delegate
`assets.setup` / `assets.deploy` to the portal app (they are defined only there, so an umbrella-level
`mix assets.deploy` in the Dockerfile fails without them).

Note on overlays: Mix has no `overlay:` release option (it is ignored silently). `rel/overlays` is
copied into the release because it is the "overlays" folder of the default `rel_templates_path`
("rel"). A release with another `rel_templates_path` needs `overlays: ["rel/overlays"]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bezgelor_tasks import elixir
from bezgelor_tasks.checkout import elixir_text as et
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text

OVERLAYS_DIR = "rel/overlays"
MANAGED_KEYS = ("applications", "include_executables_for", "overlay", "overlays", "rel_templates_path")
_ATOM_RE = re.compile(r":([a-z_][a-zA-Z0-9_]*)")
_STRING_RE = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class ReleaseSpec:
    name: str
    applications: tuple[str, ...]
    overlay: str | None        # the overlays folder that is really copied (rel/overlays by default)
    include_executables_for: tuple[str, ...]
    line: int
    modes: dict[str, str] = field(default_factory=dict, compare=False)
    overlays: tuple[str, ...] = ()          # explicit `overlays:` entries
    rel_templates_path: str | None = None
    ignored_keys: tuple[str, ...] = ()      # keys Mix does not know (e.g. `overlay:`)


@dataclass(frozen=True)
class _Located:
    """Where the releases keyword list is, and its entries."""
    open_at: int
    close_at: int
    entries: list[et.Entry]


def _project_list(text: str, masked: str) -> et.FunctionBody:
    body = et.find_function_list(text, masked, "project")
    if body is None or body.open_at < 0:
        line = et.line_of(text, body.def_at) if body else 1
        raise et.not_patchable("mix.exs", line, "project/0 does not return a keyword list literal",
                               "make `def project` return `[apps_path: \"apps\", ...]` directly, then run again.")
    return body


def _value_list(text: str, masked: str, entry: et.Entry, key: str) -> tuple[int, int] | None:
    """The list literal a project key points at: inline `[...]` or the body of `name()`."""
    vs = entry.value_start
    if masked[vs] == "[":
        return vs, et.matching(masked, vs)
    m = re.match(r"([a-z_][a-zA-Z0-9_]*)(\(\))?$", masked[vs:entry.end].strip())
    if m:
        fn = et.find_function_list(text, masked, m.group(1))
        if fn and fn.open_at >= 0:
            return fn.open_at, fn.close_at
    raise et.not_patchable("mix.exs", et.line_of(text, vs),
                           f"`{key}:` is not a list or a zero-arity function returning one",
                           f"make `{key}:` point at a `defp {key} do [...] end` function, then run again.")


def _locate_releases(text: str, masked: str) -> _Located | None:
    project = _project_list(text, masked)
    for e in et.split_elements(text, masked, project.open_at, project.close_at):
        if e.key == "releases":
            span = _value_list(text, masked, e, "releases")
            assert span is not None
            return _Located(span[0], span[1], et.split_elements(text, masked, *span))
    return None


def _atoms(s: str) -> tuple[str, ...]:
    return tuple(_ATOM_RE.findall(s))


def _spec(text: str, masked: str, entry: et.Entry) -> ReleaseSpec:
    name = entry.key or "?"
    apps: list[str] = []
    modes: dict[str, str] = {}
    execs: tuple[str, ...] = ()
    overlays: tuple[str, ...] = ()
    overlay: str | None = None
    rtp: str | None = None
    ignored: list[str] = []
    if masked[entry.value_start] == "[":
        close = et.matching(masked, entry.value_start)
        for kv in et.split_elements(text, masked, entry.value_start, close):
            value = text[kv.value_start:kv.end]
            if kv.key == "applications" and masked[kv.value_start] == "[":
                vclose = et.matching(masked, kv.value_start)
                for app_e in et.split_elements(text, masked, kv.value_start, vclose):
                    if app_e.key:
                        apps.append(app_e.key)
                        mode = _atoms(text[app_e.value_start:app_e.end])
                        modes[app_e.key] = mode[0] if mode else "?"
                    else:
                        atom = _atoms(text[app_e.start:app_e.end])
                        if atom:
                            apps.append(atom[0])
                            modes[atom[0]] = "permanent"
            elif kv.key == "include_executables_for":
                execs = _atoms(value)
            elif kv.key == "overlays":
                overlays = tuple(_STRING_RE.findall(value))
            elif kv.key == "rel_templates_path":
                found = _STRING_RE.findall(value)
                rtp = found[0] if found else value.strip()
            elif kv.key == "overlay":
                ignored.append("overlay")
    effective = f"{(rtp or 'rel').rstrip('/')}/overlays"
    overlay = OVERLAYS_DIR if OVERLAYS_DIR in (effective, *overlays) else (overlays[0] if overlays else effective)
    return ReleaseSpec(name, tuple(apps), overlay, execs, et.line_of(text, entry.start), modes, overlays, rtp,
                       tuple(ignored))


def parse_releases(text: str) -> dict[str, ReleaseSpec]:
    """The releases mix.exs defines, by name (empty when there is no `releases:` in project/0)."""
    masked = et.mask(text)
    try:
        located = _locate_releases(text, masked)
    except (ValueError, IndexError):
        return {}
    if located is None:
        return {}
    return {e.key: _spec(text, masked, e) for e in located.entries if e.key}


# ------------------------------------------------------------------------------------------------

def _release_source(co: Checkout, extra: list[str], indent: str) -> str:
    """One `name: [...]` release entry, indented for a list whose elements sit at `indent`."""
    i1, i2 = indent + "  ", indent + "    "
    apps = ",\n".join(f"{i2}{a}: :permanent" for a in co.release_apps)
    dev = ", ".join(co.settings.dev_only_apps)
    lines = [f"{co.settings.release_name}: ["]
    lines.append(f"{i1}applications: [")
    lines.append(apps)
    lines.append(f"{i2}# Left out (development only): {dev}" if dev else f"{i2}# every umbrella app")
    lines.append(f"{i1}],")
    lines.append(f"{i1}include_executables_for: [:unix],")
    for e in extra:
        lines.append(f"{i1}{e},")
    lines[-1] = lines[-1].rstrip(",")
    lines.append(f"{indent}]")
    return "\n".join(lines)


def _release_ok(co: Checkout, spec: ReleaseSpec) -> bool:
    return (set(spec.applications) == set(co.release_apps)
            and all(spec.modes.get(a) == "permanent" for a in co.release_apps)
            and "unix" in spec.include_executables_for
            and spec.overlay == OVERLAYS_DIR
            and not spec.ignored_keys)


def _kept_keys(text: str, masked: str, entry: et.Entry) -> list[str]:
    if masked[entry.value_start] != "[":
        return []
    close = et.matching(masked, entry.value_start)
    return [text[kv.start:kv.end] for kv in et.split_elements(text, masked, entry.value_start, close)
            if kv.key not in MANAGED_KEYS]


def _patch_releases(co: Checkout, text: str, notes: list[str]) -> str:
    masked = et.mask(text)
    name = co.settings.release_name
    located = _locate_releases(text, masked)
    releases_code = (
        "  # The release Fly runs (built by the Dockerfile with `mix release " + name + "`).\n"
        "  # rel/overlays (bin/migrate, bin/server) is copied in because rel_templates_path defaults to \"rel\".\n"
        "  defp releases do\n    [\n      " + _release_source(co, [], "      ") + "\n    ]\n  end\n")
    if located is None:
        project = _project_list(text, masked)
        text = et.insert_elements(text, masked, project.open_at, project.close_at, ["releases: releases()"])
        masked = et.mask(text)
        clash = et.find_function_list(text, masked, "releases")
        if clash is not None:
            raise et.not_patchable("mix.exs", et.line_of(text, clash.def_at),
                                   "a releases function exists but project/0 does not use it",
                                   "add `releases: releases()` to project/0 or rename that function, then run again.")
        notes.append(f"added the release {name} ({len(co.release_apps)} apps)")
        return et.append_before_module_end(text, masked, releases_code)
    specs = {e.key: (e, _spec(text, masked, e)) for e in located.entries if e.key}
    if name in specs:
        entry, spec = specs[name]
        if _release_ok(co, spec):
            return text
        target = entry
        notes.append(f"updated the release {name}: applications, include_executables_for, overlays")
    elif len(specs) == 1:
        (old_name, (target, spec)), = specs.items()
        notes.append(f"renamed the release {old_name} to {name} (build it with `mix release {name}`) and set "
                     "its applications to every non-dev umbrella app")
    else:
        ind = et.indent_at(text, located.entries[0].start) if located.entries else "      "
        notes.append(f"added the release {name} next to the existing ones")
        return et.insert_elements(text, masked, located.open_at, located.close_at, [_release_source(co, [], ind)])
    extra = _kept_keys(text, masked, target)
    if spec.rel_templates_path:
        if (co.root / spec.rel_templates_path).is_dir():
            extra += [f"rel_templates_path: {et.elixir_string(spec.rel_templates_path)}",
                      f"overlays: [{et.elixir_string(OVERLAYS_DIR)}]"]
            notes.append(f"kept rel_templates_path {spec.rel_templates_path} and added overlays: [\"{OVERLAYS_DIR}\"] "
                         "so bin/migrate and bin/server are in the release")
        else:
            notes.append(f"dropped rel_templates_path {spec.rel_templates_path!r} (that folder does not exist; the "
                         f"default \"rel\" makes {OVERLAYS_DIR} part of the release)")
    elif spec.overlays and OVERLAYS_DIR not in spec.overlays:
        extra.append("overlays: [" + ", ".join(et.elixir_string(o) for o in (*spec.overlays,)) + "]")
    elif spec.overlays:
        extra.append("overlays: [" + ", ".join(et.elixir_string(o) for o in spec.overlays) + "]")
    if spec.ignored_keys:
        notes.append("removed `overlay:` (not a Mix release option; it was ignored)")
    ind = et.indent_at(text, target.start)
    return text[:target.start] + _release_source(co, extra, ind) + text[target.end:]


def _alias_entries(co: Checkout) -> dict[str, str]:
    portal = co.settings.portal_app
    return {task: f'"{task}": ["cmd --app {portal} mix {task}"]' for task in ("assets.setup", "assets.deploy")}


def _patch_aliases(co: Checkout, text: str, notes: list[str]) -> str:
    masked = et.mask(text)
    project = _project_list(text, masked)
    wanted = _alias_entries(co)
    entry = next((e for e in et.split_elements(text, masked, project.open_at, project.close_at)
                  if e.key == "aliases"), None)
    if entry is None:
        existing = et.find_function_list(text, masked, "aliases")
        text = et.insert_elements(text, masked, project.open_at, project.close_at, ["aliases: aliases()"])
        masked = et.mask(text)
        if existing is None:
            body = ",\n".join(f"      {v}" for v in wanted.values())
            code = ("  # assets.setup / assets.deploy are defined in apps/" + co.settings.portal_app + "/mix.exs;\n"
                    "  # the Docker build runs them from the umbrella root, so delegate to the portal app.\n"
                    "  defp aliases do\n    [\n" + body + "\n    ]\n  end\n")
            notes.append("added umbrella aliases assets.setup and assets.deploy (delegating to "
                         f"{co.settings.portal_app})")
            return et.append_before_module_end(text, masked, code)
    project = _project_list(text, masked)
    entry = next(e for e in et.split_elements(text, masked, project.open_at, project.close_at) if e.key == "aliases")
    span = _value_list(text, masked, entry, "aliases")
    assert span is not None
    present = {e.key for e in et.split_elements(text, masked, *span) if e.key}
    missing = [v for k, v in wanted.items() if k not in present]
    if missing:
        notes.append("added to aliases: " + ", ".join(k for k in wanted if k not in present))
    return et.insert_elements(text, masked, span[0], span[1], missing)


def check_syntax(co: Checkout, rel: str) -> None:
    """UserError naming file and line when real Elixir cannot parse the file."""
    if not elixir.available():
        return
    problems = elixir.parse_files([co.path(rel)], co.root)
    if problems:
        p = problems[0]
        raise UserError(f"{p.file}:{p.line}: {p.message} — the file does not parse, so init cannot patch it.",
                        fix=f"fix the syntax error at {p.file} line {p.line}, then run again "
                            f"(`elixir -e 'Code.string_to_quoted!(File.read!(\"{rel}\"))'` shows it).")


def mix_exs_change(co: Checkout) -> FileChange:
    path = co.path("mix.exs")
    old = read_text(path)
    if old is None:
        raise UserError(f"{co.root} has no mix.exs.", fix="point --root at the Bezgelor umbrella.")
    check_syntax(co, "mix.exs")
    notes: list[str] = []
    try:
        new = _patch_releases(co, old, notes)
        new = _patch_aliases(co, new, notes)
    except ValueError as exc:
        raise UserError(f"mix.exs could not be read as Elixir code ({exc}).",
                        fix="check that `mix help` works in the checkout, then run again.") from None
    return FileChange(path, "mix.exs", old, new, f"release {co.settings.release_name} and umbrella asset aliases",
                      mode="patch", notes=tuple(notes))
