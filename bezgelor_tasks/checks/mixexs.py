"""mix.exs: the release exists, holds every umbrella app but the dev-only ones, ships the overlays,
and the umbrella can run the portal's asset aliases (the Dockerfile calls them at the root)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_at, line_of, strip_elixir_comments, warning


@dataclass(frozen=True)
class Release:
    name: str
    applications: tuple[str, ...]
    overlay: str | None
    include_executables_for: tuple[str, ...]
    line: int


def _fallback_parse_releases(text: str) -> dict[str, Release]:
    """A small reader for `releases: [name: [applications: [...], overlay: ...]]` (used only until
    checkout.mixexs.parse_releases is importable)."""
    code = strip_elixir_comments(text)
    out: dict[str, Release] = {}
    for m in re.finditer(r"\b([a-z_][a-z0-9_]*):\s*\[\s*applications:\s*\[", code):
        body_start = m.end()
        depth, i = 1, body_start
        while i < len(code) and depth:
            depth += {"[": 1, "]": -1}.get(code[i], 0)
            i += 1
        apps_text = code[body_start:i - 1]
        apps = tuple(re.findall(r"\b([a-z_][a-z0-9_]*):\s*:[a-z_]+", apps_text))
        # the rest of this release's keyword list, up to its closing bracket
        depth, j = 1, i
        while j < len(code) and depth:
            depth += {"[": 1, "]": -1}.get(code[j], 0)
            j += 1
        rest = code[i:j]
        ov = re.search(r"overlays?:\s*\[?\s*\"([^\"]+)\"", rest)
        inc = re.search(r"include_executables_for:\s*\[([^\]]*)\]", rest)
        out[m.group(1)] = Release(m.group(1), apps, ov.group(1) if ov else None,
                                  tuple(re.findall(r":(\w+)", inc.group(1))) if inc else (),
                                  line_at(text, m.start()))
    return out


def parse_releases(text: str) -> dict[str, Release]:
    import importlib

    try:
        mixexs_gen = importlib.import_module("bezgelor_tasks.checkout.mixexs")
    except ImportError:
        return _fallback_parse_releases(text)
    parsed = mixexs_gen.parse_releases(text)
    return {name: Release(spec.name, tuple(spec.applications), spec.overlay,
                          tuple(spec.include_executables_for), spec.line) for name, spec in parsed.items()}


def _aliases(text: str) -> set[str]:
    code = strip_elixir_comments(text)
    return set(re.findall(r"\"(assets\.[a-z_.]+)\"\s*:", code)) | set(
        re.findall(r"\b(assets\.[a-z_]+):\s*\[", code))


def check(ctx: CheckContext) -> list[Finding]:
    co, s = ctx.co, ctx.settings
    text = ctx.text("mix.exs") or ""
    out: list[Finding] = []
    releases = parse_releases(text)
    name = s.release_name
    if not releases or name not in releases:
        where = line_of(text, r"def project") or 1
        known = f" (found: {', '.join(releases)})" if releases else ""
        out.append(error("mix.exs", where, f"the umbrella defines no `{name}` release{known}",
                         f"add `releases: releases()` to project/0 with a `{name}` release (run `inv init`)"))
    else:
        rel = releases[name]
        wanted = set(co.release_apps)
        have = set(rel.applications)
        for app in sorted(have & set(s.dev_only_apps)):
            out.append(error("mix.exs", rel.line, f"release `{name}` includes the dev-only app {app}",
                             f"remove {app} from the release's applications (dev tools must not ship)"))
        missing = sorted(wanted - have)
        if missing:
            out.append(error("mix.exs", rel.line, f"release `{name}` is missing umbrella app(s) {', '.join(missing)}",
                             "list every umbrella app except the dev-only ones under applications: (run `inv init`)"))
        unknown = sorted(have - wanted - set(s.dev_only_apps) - set(co.apps))
        if unknown:
            out.append(warning("mix.exs", rel.line,
                               f"release `{name}` lists {', '.join(unknown)}, which are not umbrella apps",
                               "check the names (OTP apps from deps are started through the umbrella apps anyway)"))
        if rel.overlay is None:
            out.append(error("mix.exs", rel.line, f"release `{name}` has no overlay, so bin/migrate and "
                             "bin/server are not copied into the release",
                             'add `overlay: "rel/overlays"` to the release'))
        elif rel.overlay.rstrip("/") != "rel/overlays":
            out.append(warning("mix.exs", rel.line, f"release `{name}` overlays {rel.overlay!r}, not rel/overlays",
                               "point the overlay at rel/overlays, where init writes bin/migrate and bin/server"))
        if rel.include_executables_for and "unix" not in rel.include_executables_for:
            out.append(error("mix.exs", rel.line, "include_executables_for lacks :unix, so the release has no "
                             "bin/ scripts for Linux", "use `include_executables_for: [:unix]`"))
    portal_mix = ctx.text(f"apps/{s.portal_app}/mix.exs") or ""
    needed = {a for a in _aliases(portal_mix) if a in ("assets.setup", "assets.deploy")}
    dockerfile = ctx.text("Dockerfile") or ""
    used = set(re.findall(r"mix\s+(assets\.(?:setup|deploy))", dockerfile))
    for alias in sorted((needed | used) - _aliases(text)):
        if alias not in needed and alias in used:
            continue  # the portal does not define it either; the Dockerfile check reports the call
        out.append(error("mix.exs", line_of(text, r"def project") or 1,
                         f"the umbrella has no `{alias}` alias (it is defined in apps/{s.portal_app}/mix.exs), "
                         f"so `mix {alias}` at the umbrella root fails in the Docker build",
                         f'add `"{alias}": ["cmd --app {s.portal_app} mix {alias}"]` to the umbrella aliases'))
    return out
