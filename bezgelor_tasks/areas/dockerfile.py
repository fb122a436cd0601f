"""The Dockerfile area: the release image, written from the checkout and the settings, and checked.

Ours (templates/docker/Dockerfile): every app of the release gets its mix.exs copied first (so `mix deps.get`
is cached while only code changes), then its priv/ (only where one exists) and lib/. Dev-only apps are never
copied. Versions, ports and the release name come from the settings, so the Dockerfile, fly.toml and verify
cannot drift. verify diffs our own file against what init would write now; a Dockerfile the user wrote or
edited is read back (dockerfile_facts.py) and checked: what it copies against what the release ships (the
release's application list), the release it builds and copies, the ports it exposes, the toolchain.
"""

from __future__ import annotations

import json
import posixpath
import re

from bezgelor_tasks.areas import dockerignore_patterns as patterns
from bezgelor_tasks.areas.dockerfile_facts import DockerfileFacts
from bezgelor_tasks.areas.owned import is_ours
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checkout.effective import DOCKERFILE
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, warning
from bezgelor_tasks.files import FileChange, generated_change
from bezgelor_tasks.release_image import SERVER, built_release
from bezgelor_tasks.render import render

REL = DOCKERFILE

# Build tools for NIFs (build-essential) and git deps (git). Runtime: what an OTP release needs on Debian.
BUILD_PACKAGES = ("build-essential", "git")
# Debian's Node.js and npm, for `npm ci` in assets folders with runtime dependencies.
NODE_PACKAGES = ("nodejs", "npm")
NOBODY_UID = 65534   # Debian's `nobody`
RUNTIME_PACKAGES = ("libstdc++6", "openssl", "libncurses6", "locales", "ca-certificates")
# Config files the build never reads: dev/test are for other environments, runtime.exs is copied
# late on purpose (it changes often and is read only when the release boots).
_LATE_OR_UNUSED_CONFIG = {"runtime.exs", "dev.exs", "test.exs"}


def build_config_files(co: Checkout) -> list[str]:
    """config/*.exs the compile step needs: config.exs, prod.exs (init writes it) and whatever else
    config.exs may import (for example config/appsignal.exs), never dev/test/runtime."""
    cfg = co.root / "config"
    present = {p.name for p in cfg.glob("*.exs")} if cfg.is_dir() else set()
    names = ({"config.exs", "prod.exs"} | present) - _LATE_OR_UNUSED_CONFIG
    return [f"config/{n}" for n in sorted(names, key=lambda n: (n != "config.exs", n != "prod.exs", n))]


def npm_folders(co: Checkout) -> list[str]:
    """assets/ folders of release apps whose package.json has runtime dependencies: esbuild bundles them in
    `mix assets.deploy`, so the image must run `npm ci` there first (and so needs Node.js)."""
    out = []
    for app in co.release_apps:
        package = co.app_dir(app) / "assets" / "package.json"
        try:
            deps = json.loads(package.read_text(encoding="utf-8")).get("dependencies") if package.is_file() else None
        except (ValueError, AttributeError):
            deps = None
        if deps:
            out.append(co.rel(package.parent))
    return out


def npm_install(co: Checkout, folder: str) -> str:
    """`npm ci` where a lock file pins the versions, else `npm install` (which writes one)."""
    locked = (co.root / folder / "package-lock.json").is_file()
    return f"npm {'ci' if locked else 'install'} --prefix {folder} --no-audit --no-fund"


def elixir_requirements(co: Checkout) -> dict[str, str]:
    """mix.exs file -> its `elixir:` requirement, for the umbrella and every release app (asked of Elixir)."""
    from bezgelor_tasks import elixir_source

    files = [path for path in (co.path("mix.exs"), *(co.app_dir(app) / "mix.exs" for app in co.release_apps))
             if path.is_file()]
    out = {}
    for path, project in zip(files, elixir_source.mix_projects(files), strict=True):
        if project and isinstance(project.get("elixir"), str):
            out[co.rel(path)] = project["elixir"]
    return out


def unmet_requirements(co: Checkout, version: str) -> dict[str, str]:
    """The requirements of `elixir_requirements` that Elixir `version` does not meet (Version.match?)."""
    from bezgelor_tasks import elixir

    return {rel: req for rel, req in elixir_requirements(co).items() if not elixir.version_matches(version, req)}


def render_dockerfile(co: Checkout) -> str:
    from bezgelor_tasks.areas.mix_exs import portal_aliases
    from bezgelor_tasks.areas.release import of as release_of

    s = co.settings
    portal = s.portal_app
    aliases = portal_aliases(co)
    folders = npm_folders(co)
    requirements = sorted(set(elixir_requirements(co).values()))
    return render(
        "docker/Dockerfile",
        dev_only=", ".join(s.dev_only_apps) or "none", requirement=", ".join(requirements) or "none stated",
        elixir_version=s.elixir_version, otp_version=s.otp_version, debian_version=s.debian_version,
        build_packages=" ".join(BUILD_PACKAGES + (NODE_PACKAGES if folders else ())),
        lock=" mix.lock" if (co.root / "mix.lock").is_file() else "", apps=co.release_apps,
        config_files=build_config_files(co), assets_setup="assets.setup" in aliases, portal=portal,
        priv_apps=[a for a in co.release_apps if co.has_priv(a)], npm_folders=folders,
        npm_install={f: npm_install(co, f) for f in folders},
        has_assets=(co.app_dir(portal) / "assets").is_dir(), assets_deploy="assets.deploy" in aliases,
        release_name=s.release_name, runtime_packages=" ".join(RUNTIME_PACKAGES), image_source=s.image_source,
        release_path=built_release(s.release_name), server=SERVER, nobody_uid=NOBODY_UID,
        release_folders=release_of(co).build_folders,
        ports_comment=", ".join(f"{name} {port}" for name, port in s.ports.all().items()),
        ports=[str(p) for p in s.ports.all().values()])


def dockerfile_change(co: Checkout) -> FileChange:
    return generated_change(co.path(DOCKERFILE), DOCKERFILE, render_dockerfile(co),
                            "release image built from the umbrella's release apps (never the dev-only ones)")




# -- verify ---------------------------------------------------------------------------------------------------

def _norm(path: str) -> str:
    """A COPY source as a clean context-relative path ("." for the whole context)."""
    return posixpath.normpath(path.strip().lstrip("/") or ".")


def _covers(src: str, path: str) -> bool:
    """Does COPY source `src` bring `path` (relative to the context) into the image?"""
    import fnmatch

    src = _norm(src)
    if src == ".":
        return True
    if any(ch in src for ch in "*?["):
        parts = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[:n]), src) for n in range(1, len(parts) + 1))
    return path == src or path.startswith(src + "/")


def _copies(ctx: CheckContext, facts: DockerfileFacts, first_line: int | None) -> list[Finding]:
    """What the build copies from the context against the apps the release ships."""
    from bezgelor_tasks.areas.release import of as release_of

    co, s = ctx.co, ctx.settings
    out: list[Finding] = []
    release = release_of(co)        # the checkout's release: its name, what it ships, its templates and overlays
    ignore = patterns.dockerignore_patterns(ctx.text(".dockerignore") or "")
    sources = facts.local_copy_sources()
    for line, src in sources:
        n = _norm(src)
        for dev in s.dev_only_apps:
            if n == f"apps/{dev}" or n.startswith(f"apps/{dev}/"):
                out.append(error(REL, line, f"copies the dev-only app {dev} ({src}) into the build",
                                 "remove this COPY: dev tools must not be compiled into the release image"))
            elif (n in (".", "apps") and dev in co.apps and release.ships(dev)
                  and not patterns.is_ignored(ignore, f"apps/{dev}/mix.exs")):
                out.append(error(REL, line, f"`COPY {src}` copies the dev-only app {dev}, and the release "
                                 f"`{s.release_name}` ships it", f"take {dev} out of the release's applications "
                                 f"in mix.exs, or add apps/{dev} to .dockerignore"))
        if not any(ch in n for ch in "*?[") and n != "." and not co.path(n).exists():
            out.append(error(REL, line, f"copies {src}, which does not exist in the checkout (docker build fails "
                             "here)", "remove the COPY or create the path"))

    def copied(path: str) -> bool:
        return any(_covers(src, path) for _, src in sources)

    shipped = [a for a in (release.applications or {}) if a in co.apps] or list(co.release_apps)
    for app in sorted(shipped):
        for part in ("mix.exs", "lib"):
            if co.path(f"apps/{app}/{part}").exists() and not copied(f"apps/{app}/{part}"):
                out.append(error(REL, first_line, f"never copies apps/{app}/{part}, but {app} is in the release",
                                 f"add `COPY apps/{app}/{part} apps/{app}/{part}` (run `inv init`)"))
        if co.has_priv(app) and not copied(f"apps/{app}/priv"):
            out.append(error(REL, first_line, f"never copies apps/{app}/priv (migrations, game data or static "
                             "files)", f"add `COPY apps/{app}/priv apps/{app}/priv` (run `inv init`)"))
    for must, why in (("mix.exs", "the umbrella project"),
                      ("config/runtime.exs", "boot-time configuration: secrets, DATABASE_URL"),
                      *((f, "the release's templates and overlays (bin/migrate, bin/server, env.sh.eex)")
                        for f in release.build_folders)):
        if co.path(must).exists() and not copied(must):
            out.append(error(REL, first_line, f"never copies {must} ({why})", f"add `COPY {must} {must}`"))
    return out


def _release(ctx: CheckContext, facts: DockerfileFacts, first_line: int | None) -> list[Finding]:
    """It builds the release under its name, copies that release into the final stage and starts bin/server."""
    name = ctx.settings.release_name
    out: list[Finding] = []
    builds = facts.release_builds()
    for line, built in builds:
        if built is not None and built != name:
            out.append(error(REL, line, f"builds release `{built}`, but mix.exs defines `{name}`",
                             f"change it to `mix release {name}` (or run `inv init --yes` to rewrite the Dockerfile)"))
    if not builds:
        out.append(error(REL, first_line, "never runs `mix release`", f"add `RUN mix release {name}`"))
    copies = facts.release_copies()
    for line, src, copied in copies:
        if copied != name:
            out.append(error(REL, line, f"COPY --from path {src} names release `{copied}`, but the release is "
                             f"`{name}` (the path will not exist)", f"change the path to {built_release(name)}"))
    if not copies:
        out.append(error(REL, first_line, "the final stage never copies the release from the builder stage",
                         f"add `COPY --from=builder {built_release(name)} ./`"))
    if facts.cmd is None or not any("bin/server" in part for part in facts.cmd):
        out.append(warning(REL, facts.cmd_line, f"the image does not start {SERVER}",
                           f'end with `CMD ["{SERVER}"]` (it sets PHX_SERVER and starts the release)'))
    users = [i for i in facts.instructions if i.keyword == "USER"]
    if not users or users[-1].args.strip() in ("root", "0"):
        out.append(warning(REL, users[-1].line if users else None, "the release runs as root",
                           "add `USER nobody` to the final stage"))
    return out


def _exposed(ctx: CheckContext, facts: DockerfileFacts) -> list[Finding]:
    """EXPOSE names the ports of the settings, no others."""
    s = ctx.settings
    expected = {port: name for name, port in s.ports.all().items()}
    described = ", ".join(f"{n} {p}" for n, p in s.ports.all().items())
    fix = "keep them equal to the settings (BEZGELOR_*_PORT), or run `inv init` to regenerate"
    exposed = {port: e.line for e in facts.exposes for port in e.ports}
    if not exposed:
        return [warning(REL, None, "EXPOSE names no ports", f"add `EXPOSE {' '.join(str(p) for p in expected)}`")]
    return ([error(REL, min(exposed.values()), f"EXPOSE lacks {port} ({name})", fix)
             for port, name in expected.items() if port not in exposed]
            + [error(REL, line, f"EXPOSE {port} is not a port of any server (settings: {described})", fix)
               for port, line in exposed.items() if port not in expected])


def _toolchain(ctx: CheckContext, facts: DockerfileFacts, first_line: int | None) -> list[Finding]:
    """An Elixir the apps accept, and `npm ci` before assets.deploy wherever package.json has runtime
    dependencies (the same lists init writes from)."""
    co = ctx.co
    out: list[Finding] = []
    version = facts.args.get("ELIXIR_VERSION")
    if not ctx.elixir_available:
        ctx.skipped.append("the Dockerfile's Elixir version was NOT compared with mix.exs (Elixir is not installed)")
    elif version:
        for rel, req in unmet_requirements(co, version).items():
            out.append(error(REL, facts.arg_lines.get("ELIXIR_VERSION"), f"builds with Elixir {version}, but {rel} "
                             f"requires {req}: `mix deps.get` stops there", "set BEZGELOR_ELIXIR_VERSION (and "
                             "BEZGELOR_OTP_VERSION) to a hexpm/elixir image that meets it, then run `inv init`",
                             "dockerfile.elixir-too-old"))
    deploy = next((i.line for i in facts.runs if "assets.deploy" in i.args), None)
    for folder in npm_folders(co):
        installs = [i.line for i in facts.runs if re.search(r"\bnpm\s+(ci|install)\b", i.args) and folder in i.args]
        if not installs or (deploy is not None and min(installs) > deploy):
            out.append(error(REL, deploy or first_line, f"{folder}/package.json has runtime dependencies, but "
                             "nothing runs `npm ci` there before `mix assets.deploy`: esbuild cannot resolve "
                             "them and the build fails", f"install Node.js and run `npm ci --prefix {folder}` "
                             "before assets.deploy (run `inv init`)", "dockerfile.npm-ci"))
    return out


def check(ctx: CheckContext) -> list[Finding]:
    facts = ctx.dockerfile
    if facts is None:
        return [error(REL, None, "Dockerfile is missing", "run `inv init` to write the multi-stage Dockerfile")]
    if is_ours(dockerfile_change(ctx.co)):
        return []                    # ours: the framework diffs it against what init writes now
    first_line = facts.instructions[0].line if facts.instructions else None
    return (_copies(ctx, facts, first_line) + _release(ctx, facts, first_line) + _exposed(ctx, facts)
            + _toolchain(ctx, facts, first_line))
