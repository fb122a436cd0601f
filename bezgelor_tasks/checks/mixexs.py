"""mix.exs: the release exists, holds every umbrella app but the dev-only ones, ships the overlays,
and the umbrella can run the portal's asset aliases (the Dockerfile calls them at the root)."""

from __future__ import annotations

import re

from bezgelor_tasks.checkout.mixexs import OVERLAYS_DIR, parse_releases
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_of, strip_elixir_comments, warning

# Mix copies `<rel_templates_path>/overlays` (rel_templates_path defaults to "rel") plus every folder in
# the `overlays:` list; a key named `overlay:` is not a release option and is silently ignored.
_OVERLAY_FIX = ('keep rel_templates_path as "rel" (the default) or add `overlays: ["rel/overlays"]` to the '
                "release in mix.exs (run `inv init`)")


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
                             f"remove {app} from the release's applications in mix.exs (dev tools must not ship)"))
        missing = sorted(wanted - have)
        if missing:
            out.append(error("mix.exs", rel.line, f"release `{name}` is missing umbrella app(s) {', '.join(missing)}",
                             "list every umbrella app except the dev-only ones under applications: (run `inv init`)"))
        unknown = sorted(have - wanted - set(s.dev_only_apps) - set(co.apps))
        if unknown:
            out.append(warning("mix.exs", rel.line,
                               f"release `{name}` lists {', '.join(unknown)}, which are not umbrella apps",
                               "remove them from the release's applications in mix.exs, or fix their names "
                               "(OTP apps from deps are started through the umbrella apps anyway)"))
        if rel.overlay != OVERLAYS_DIR and OVERLAYS_DIR not in rel.overlays:
            why = (f'rel_templates_path is "{rel.rel_templates_path}"' if rel.rel_templates_path
                   else "its overlays point elsewhere")
            out.append(error("mix.exs", rel.line, f"release `{name}` does not copy {OVERLAYS_DIR} ({why}), so "
                             "bin/migrate and bin/server are not in the release", _OVERLAY_FIX))
        if "overlay" in rel.ignored_keys:
            code = strip_elixir_comments(text)
            start = sum(len(ln) for ln in text.splitlines(keepends=True)[:rel.line - 1])
            out.append(warning("mix.exs", line_of(code, r"\boverlay:", start=start) or rel.line,
                               f"release `{name}` sets `overlay:`, which is not a Mix release option: Mix ignores "
                               "it (only `overlays:` and `rel_templates_path` choose what is copied)",
                               f"remove `overlay:` from the release in mix.exs; {_OVERLAY_FIX}"))
        if rel.include_executables_for and "unix" not in rel.include_executables_for:
            out.append(error("mix.exs", rel.line, "include_executables_for lacks :unix, so the release has no "
                             "bin/ scripts for Linux",
                             "set `include_executables_for: [:unix]` on the release in mix.exs (run `inv init`)"))
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
                         f'add `"{alias}": ["cmd --app {s.portal_app} mix {alias}"]` to the umbrella '
                         "aliases in mix.exs (run `inv init`)"))
    return out
