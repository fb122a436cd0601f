"""mix.exs: the release Fly runs, and the umbrella's asset aliases where the build image's Elixir needs them.

The description: the release `areas/release.py` derives from the checkout — its own, kept under its name
with its options, or ours — holds every umbrella app but the dev-only ones and has bin/ scripts for Linux.
init merges into the user's release (adds the apps it lacks, removes dev-only ones, adds `:unix`, drops the
`overlay:` key Mix ignores) and never touches its `rel_templates_path`, `overlays` or `steps`.

Since Elixir 1.15, `mix assets.deploy` at an umbrella root runs the alias the child app defines, so the
umbrella needs `assets.*` aliases of its own only when the build image's Elixir is older: the rule reads the
version (the Dockerfile's ELIXIR_VERSION, else BEZGELOR_ELIXIR_VERSION).
"""

from __future__ import annotations

from bezgelor_tasks import elixir
from bezgelor_tasks.areas import release as release_mod
from bezgelor_tasks.areas import splice
from bezgelor_tasks.areas.release import MIX_EXS as REL
from bezgelor_tasks.areas.release import Release
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, warning
from bezgelor_tasks.elixir_source import Node, Project, project
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text

ASSET_ALIASES = ("assets.setup", "assets.deploy")
CHILD_ALIASES_SINCE = "1.15.0"     # from this Elixir on, an umbrella root runs its children's aliases


def files(co: Checkout) -> tuple[str, ...]:
    return (REL, f"apps/{co.configured.portal_app}/mix.exs")


def portal_aliases(co: Checkout) -> set[str]:
    """Which of assets.setup / assets.deploy the portal's mix.exs defines (as Elixir reads it)."""
    path = co.app_dir(co.configured.portal_app) / "mix.exs"
    facts = project(path) if path.is_file() and elixir.available() else None
    if facts is None or facts.aliases is None:
        return set()
    return {k for k in facts.aliases.node.key_names() if k in ASSET_ALIASES}


def umbrella_needs_aliases(elixir_version: str) -> bool:
    """Whether `mix assets.*` at the umbrella root needs umbrella aliases with this Elixir (below 1.15)."""
    return not elixir.version_matches(elixir_version, f">= {CHILD_ALIASES_SINCE}")


def not_patchable(line: int | None, what: str, fix: str) -> UserError:
    return UserError(f"{REL}:{line or 1}: {what}, so init cannot patch it safely and changed nothing.", fix=fix)


# -- init ----------------------------------------------------------------------------------------------------

def _release_source(co: Checkout, indent: str) -> str:
    i1, i2 = indent + "  ", indent + "    "
    apps = ",\n".join(f"{i2}{a}: :permanent" for a in co.release_apps)
    dev = ", ".join(co.settings.dev_only_apps)
    left_out = f"{i2}# Left out (development only): {dev}" if dev else f"{i2}# every umbrella app"
    return (f"{co.settings.release_name}: [\n{i1}applications: [\n{apps}\n{left_out}\n{i1}],\n"
            f"{i1}include_executables_for: [:unix]\n{indent}]")


def _function(name: str, comment: str, items: list[str]) -> str:
    body = ",\n".join(f"      {it}" for it in items)
    return f"{comment}  defp {name} do\n    [\n{body}\n    ]\n  end\n"


def _merge_release(co: Checkout, facts: Project, rel: Release, notes: list[str]) -> list[splice.Edit]:
    """Edits that make the user's release hold every release app, no dev-only app, and bin/ scripts for Linux."""
    text, comments, opts = facts.text, facts.comments, rel.options
    if opts is None:
        raise not_patchable(rel.line, f"the release {rel.name} is not a keyword list literal",
                            f"write the release as `{rel.name}: [applications: [...]]`, then run again.")
    edits: list[splice.Edit] = []
    apps_item = opts.get("applications")
    if apps_item is None:
        edits.append(splice.insert_items(text, opts, ["applications: [" + ", ".join(
            f"{a}: :permanent" for a in co.release_apps) + "]"], comments))
        notes.append(f"release {rel.name}: listed its applications")
    elif rel.applications is not None and apps_item.value.is_list:
        edits += _merge_applications(co, facts, apps_item.value, rel, notes)
    if rel.include_executables_for is not None and "unix" not in rel.include_executables_for:
        index = opts.key_names().index("include_executables_for")
        edits.append(splice.replace_value(text, opts, index, "[" + ", ".join(
            f":{e}" for e in ("unix", *rel.include_executables_for)) + "]", comments))
        notes.append(f"release {rel.name}: include_executables_for has :unix (the image runs Linux)")
    if rel.ignored_keys:
        edits.append(splice.remove_item(text, opts, opts.key_names().index("overlay"), comments))
        notes.append(f"release {rel.name}: removed `overlay:` (not a Mix release option; Mix ignored it)")
    return edits


def _merge_applications(co: Checkout, facts: Project, apps: Node, rel: Release,
                        notes: list[str]) -> list[splice.Edit]:
    assert rel.applications is not None and apps.items is not None
    dev = set(co.settings.dev_only_apps)
    missing = [a for a in co.release_apps if a not in rel.applications]
    drop = [i for i, item in enumerate(apps.items)
            if (item.key or str(item.value.value).lstrip(":")) in dev]
    edits = []
    if drop:
        kept = {a: m for a, m in rel.applications.items() if a not in dev}
        kept.update({a: ":permanent" for a in missing})
        assert apps.open is not None
        ind = splice.indent_at(facts.text, apps.open)
        body = ",\n".join(f"{ind}  {a}: {m}" for a, m in kept.items())
        edits.append(splice.replace_node(apps, f"[\n{body}\n{ind}]"))
        dropped = ", ".join(sorted(dev & set(rel.applications)))
        notes.append(f"release {rel.name}: removed the dev-only app(s) {dropped}")
    elif missing:
        keyword = any(item.key for item in apps.items)
        edits.append(splice.insert_items(facts.text, apps, [f"{a}: :permanent" if keyword else f":{a}"
                                                             for a in missing], facts.comments))
    if missing:
        notes.append(f"release {rel.name}: added the umbrella app(s) {', '.join(missing)}")
    return edits


def _releases_edits(co: Checkout, facts: Project, notes: list[str]) -> tuple[list[splice.Edit], list[str], str]:
    """(edits inside the file, keys to add to project/0, functions to add before the module's end)."""
    rel = release_mod.of(co)
    if rel.defined:
        if rel.name != co.configured.release_name:
            notes.append(f"kept the release {rel.name} under its own name (BEZGELOR_RELEASE_NAME="
                         f"{co.configured.release_name} names only a release init adds)")
        return _merge_release(co, facts, rel, notes), [], ""
    pointed = facts.releases
    if pointed is None:
        if "releases" in facts.functions:
            raise not_patchable(facts.functions["releases"].get("line"), "a releases function exists but project/0 "
                                "does not use it", "add `releases: releases()` to project/0 or rename that "
                                "function, then run again.")
        notes.append(f"added the release {rel.name} ({len(co.release_apps)} apps)")
        code = _function("releases", f"  # The release Fly runs (the Dockerfile builds it with `mix release "
                         f"{rel.name}`).\n", [_release_source(co, "      ")])
        return [], ["releases: releases()"], code
    if not pointed.node.is_list:
        raise not_patchable(pointed.line, "`releases:` is not a list or a zero-arity function returning one",
                            "make `releases:` point at a `defp releases do [...] end` function, then run again.")
    first = (pointed.node.items or ())[:1]
    ind = splice.indent_at(facts.text, first[0].start) if first else "      "
    notes.append(f"added the release {rel.name} next to the existing ones")
    return [splice.insert_items(facts.text, pointed.node, [_release_source(co, ind)], facts.comments)], [], ""


def _aliases_edits(co: Checkout, facts: Project, notes: list[str]) -> tuple[list[splice.Edit], list[str], str]:
    if not umbrella_needs_aliases(co.settings.elixir_version):
        return [], [], ""
    portal = co.settings.portal_app
    wanted = {a: f'"{a}": ["cmd --app {portal} mix {a}"]' for a in ASSET_ALIASES if a in portal_aliases(co)}
    pointed = facts.aliases
    have = set(pointed.node.key_names()) if pointed is not None and pointed.node.is_list else set()
    missing = [v for k, v in wanted.items() if k not in have]
    if not missing:
        return [], [], ""
    notes.append("added umbrella aliases " + " and ".join(k for k in wanted if k not in have) + f" (delegating to "
                 f"{portal}: Elixir {co.settings.elixir_version} does not run a child app's alias at the root)")
    if pointed is None:
        existing = facts.functions.get("aliases")
        if existing is None:
            comment = (f"  # assets.setup / assets.deploy are defined in apps/{portal}/mix.exs; the Docker build runs\n"
                       "  # them at the umbrella root, whose Elixir does not run a child app's alias there.\n")
            return [], ["aliases: aliases()"], _function("aliases", comment, missing)
        raise not_patchable(existing.get("line"), "an aliases function exists but project/0 does not use it",
                            "add `aliases: aliases()` to project/0, then run again.")
    if not pointed.node.is_list:
        raise not_patchable(pointed.line, "`aliases:` is not a list or a zero-arity function returning one",
                            "make `aliases:` point at a `defp aliases do [...] end` function, then run again.")
    return [splice.insert_items(facts.text, pointed.node, missing, facts.comments)], [], ""


def mix_exs_change(co: Checkout) -> FileChange:
    path = co.path(REL)
    old = read_text(path)
    if old is None:
        raise UserError(f"{co.root} has no mix.exs.", fix="point --root at the Bezgelor umbrella.")
    why = f"release {co.settings.release_name}"
    facts = release_mod.mix_facts(co)
    if facts is None:   # no Elixir: init's apply refuses anyway; a dry run says what it skipped
        return FileChange(path, REL, old, old, why, advice=("mix.exs was not read (Elixir is not installed)",))
    if facts.project is None or not facts.project.is_list:
        raise not_patchable(facts.def_line, "project/0 does not return a keyword list literal",
                            'make `def project` return `[apps_path: "apps", ...]` directly, then run again.')
    notes: list[str] = []
    edits, keys, code = _releases_edits(co, facts, notes)
    alias_edits, alias_keys, alias_code = _aliases_edits(co, facts, notes)
    edits += alias_edits
    if keys + alias_keys:
        edits.append(splice.insert_items(old, facts.project, keys + alias_keys, facts.comments))
    if code + alias_code:
        assert facts.module_end is not None
        edits.append(splice.before_module_end(old, facts.module_end, code + ("\n" if code and alias_code else "")
                                              + alias_code))
    return FileChange(path, REL, old, splice.apply(old, edits), why + (" and umbrella asset aliases" if alias_keys
                      or alias_edits else ""), mode="patch", notes=tuple(notes))


# -- verify ----------------------------------------------------------------------------------------------------

def build_elixir(ctx: CheckContext) -> str:
    """The Elixir the image builds with: the Dockerfile's ELIXIR_VERSION, else the one init writes."""
    facts = ctx.dockerfile
    version = facts.args.get("ELIXIR_VERSION") if facts is not None else None
    return version or ctx.settings.elixir_version


def check(ctx: CheckContext) -> list[Finding]:
    co = ctx.co
    if not ctx.elixir_available:
        ctx.skipped.append("mix.exs was NOT read (Elixir is not installed): its release and aliases are unchecked")
        return []
    facts = release_mod.mix_facts(co)
    if facts is None or facts.project is None or not facts.project.is_list:
        line = facts.def_line if facts else None
        return [warning(REL, line, "project/0 does not return a keyword list literal, so its release and aliases "
                        "cannot be read", 'make `def project` return `[apps_path: "apps", ...]` directly')]
    return _release_findings(co, facts) + _alias_findings(ctx, facts)


def _release_findings(co: Checkout, facts: Project) -> list[Finding]:
    rel, s = release_mod.of(co), co.settings
    if not rel.defined:
        listed = release_mod.releases_node(facts)
        known = f" (found: {', '.join(listed.key_names())})" if listed is not None and listed.key_names() else ""
        return [error(REL, facts.def_line, f"the umbrella defines no `{rel.name}` release{known}", f"add `releases: "
                      f"releases()` to project/0 with a `{rel.name}` release (run `inv init`)", "mixexs.no-release")]
    out: list[Finding] = []
    have = set(rel.applications or ())
    for app in sorted(have & set(s.dev_only_apps)):
        out.append(error(REL, rel.line, f"release `{rel.name}` includes the dev-only app {app}",
                         f"remove {app} from the release's applications in mix.exs (dev tools must not ship)"))
    missing = sorted(set(co.release_apps) - have) if rel.applications is not None else []
    if missing:
        out.append(error(REL, rel.line, f"release `{rel.name}` is missing umbrella app(s) {', '.join(missing)}",
                         "list every umbrella app except the dev-only ones under applications: (run `inv init`)"))
    unknown = sorted(have - set(co.release_apps) - set(s.dev_only_apps) - set(co.apps))
    if unknown:
        out.append(warning(REL, rel.line, f"release `{rel.name}` lists {', '.join(unknown)}, which are not umbrella "
                           "apps", "remove them from the release's applications in mix.exs, or fix their names "
                           "(OTP apps from deps are started through the umbrella apps anyway)"))
    if rel.ignored_keys and rel.options is not None:
        item = rel.options.get("overlay")
        out.append(warning(REL, item.line if item else rel.line, f"release `{rel.name}` sets `overlay:`, which is not "
                           "a Mix release option: Mix ignores it (only `overlays:` and `rel_templates_path` choose "
                           "what is copied)", "remove `overlay:` from the release in mix.exs (run `inv init`); Mix "
                           f"copies {rel.templates_path}/overlays unless `overlays:` lists the folders"))
    if rel.include_executables_for is not None and "unix" not in rel.include_executables_for:
        out.append(error(REL, rel.line, "include_executables_for lacks :unix, so the release has no bin/ scripts "
                         "for Linux", "add :unix to `include_executables_for` of the release in mix.exs "
                         "(run `inv init`)"))
    return out


def _alias_findings(ctx: CheckContext, facts: Project) -> list[Finding]:
    version = build_elixir(ctx)
    if not umbrella_needs_aliases(version):
        return []
    portal = ctx.settings.portal_app
    have = set(facts.aliases.node.key_names()) if facts.aliases is not None and facts.aliases.node.is_list else set()
    return [error(REL, facts.def_line, f"the umbrella has no `{alias}` alias (it is defined in apps/{portal}/mix.exs) "
                  f"and the image builds with Elixir {version}, which runs no child app's alias at the umbrella root "
                  f"(1.15 and later do): `mix {alias}` fails in the Docker build",
                  f'add `"{alias}": ["cmd --app {portal} mix {alias}"]` to the umbrella aliases in mix.exs (run `inv '
                  "init`), or build with Elixir 1.15 or later", "mixexs.umbrella-alias")
            for alias in ASSET_ALIASES if alias in portal_aliases(ctx.co) and alias not in have]
