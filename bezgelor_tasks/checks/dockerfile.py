"""Dockerfile: copies every release app (mix.exs, lib, priv) and no dev-only one, builds and copies
the release under its real name, ships config/runtime.exs and the overlays, starts bin/server."""

from __future__ import annotations

import fnmatch
import posixpath
import re

from bezgelor_tasks.areas.release import of as release_of
from bezgelor_tasks.checkout import dockerfile as dockerfile_mod
from bezgelor_tasks.checkout import dockerignore as dockerignore_mod
from bezgelor_tasks.checkout.dockerfile import DockerfileFacts
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, warning

REL = "Dockerfile"


def _norm(path: str) -> str:
    """A COPY source as a clean context-relative path ("." for the whole context)."""
    return posixpath.normpath(path.strip().lstrip("/") or ".")


def _covers(src: str, path: str) -> bool:
    """Does COPY source `src` bring `path` (relative to the context) into the image?"""
    src = _norm(src)
    if src == ".":
        return True
    if any(ch in src for ch in "*?["):
        parts = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[:n]), src) for n in range(1, len(parts) + 1))
    return path == src or path.startswith(src + "/")


def _dev_ignored(ctx: CheckContext, app: str) -> bool:
    text = ctx.text(".dockerignore")
    if not text:
        return False
    return dockerignore_mod.is_ignored(dockerignore_mod.dockerignore_patterns(text), f"apps/{app}/mix.exs")


def _toolchain(ctx: CheckContext, facts: DockerfileFacts, first_line: int | None) -> list[Finding]:
    """What the build needs beyond copying: an Elixir the apps accept, and `npm ci` before assets.deploy
    wherever package.json has runtime dependencies (the same lists init writes from)."""
    co = ctx.co
    out: list[Finding] = []
    version = facts.args.get("ELIXIR_VERSION")
    if not ctx.elixir_available:
        ctx.skipped.append("the Dockerfile's Elixir version was NOT compared with mix.exs (Elixir is not installed)")
    elif version:
        for rel, req in dockerfile_mod.unmet_requirements(co, version).items():
            out.append(error(REL, facts.arg_lines.get("ELIXIR_VERSION"), f"builds with Elixir {version}, but {rel} "
                             f"requires {req}: `mix deps.get` stops there", "set BEZGELOR_ELIXIR_VERSION (and "
                             "BEZGELOR_OTP_VERSION) to a hexpm/elixir image that meets it, then run `inv init`",
                             "dockerfile.elixir-too-old"))
    deploy = next((i.line for i in facts.runs if "assets.deploy" in i.args), None)
    for folder in dockerfile_mod.npm_folders(co):
        installs = [i.line for i in facts.runs
                    if re.search(r"\bnpm\s+(ci|install)\b", i.args) and folder in i.args]
        if not installs or (deploy is not None and min(installs) > deploy):
            out.append(error(REL, deploy or first_line, f"{folder}/package.json has runtime dependencies, but "
                             "nothing runs `npm ci` there before `mix assets.deploy`: esbuild cannot resolve "
                             "them and the build fails", f"install Node.js and run `npm ci --prefix {folder}` "
                             "before assets.deploy (run `inv init`)", "dockerfile.npm-ci"))
    return out


def check(ctx: CheckContext) -> list[Finding]:
    s, co = ctx.settings, ctx.co
    facts = ctx.dockerfile
    if facts is None:
        return [error(REL, None, "Dockerfile is missing", "run `inv init` to write the multi-stage Dockerfile")]
    out: list[Finding] = []
    release = release_of(co)        # the checkout's release (its name, apps, templates and overlays)
    sources = facts.local_copy_sources()
    first_line = facts.instructions[0].line if facts.instructions else None

    def copied(path: str) -> bool:
        return any(_covers(src, path) for _, src in sources)

    for line, src in sources:
        n = _norm(src)
        for dev in s.dev_only_apps:
            if n == f"apps/{dev}" or n.startswith(f"apps/{dev}/"):
                out.append(error(REL, line, f"copies the dev-only app {dev} ({src}) into the build",
                                 "remove this COPY: dev tools must not be compiled into the release image"))
            elif n in (".", "apps") and dev in co.apps and release.ships(dev) and not _dev_ignored(ctx, dev):
                out.append(error(REL, line, f"`COPY {src}` copies the dev-only app {dev} too",
                                 f"copy the release apps one by one, or add apps/{dev} to .dockerignore"))
        if not any(ch in n for ch in "*?[") and n != "." and not co.path(n).exists():
            out.append(error(REL, line, f"copies {src}, which does not exist in the checkout "
                             "(docker build fails here)", "remove the COPY or create the path"))
    for app in co.release_apps:
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
    name = s.release_name
    release_runs = [ins for ins in facts.runs if re.search(r"\bmix\s+release\b", ins.args)]
    for ins in release_runs:
        m = re.search(r"\bmix\s+release\s+([a-z_][a-z0-9_]*)", ins.args)
        if m and m.group(1) != name:
            out.append(error(REL, ins.line, f"builds release `{m.group(1)}`, but mix.exs defines `{name}`",
                             f"change it to `mix release {name}` (or run `inv init --force` to rewrite "
                             "the Dockerfile)"))
    if not release_runs:
        out.append(error(REL, first_line, "never runs `mix release`", f"add `RUN mix release {name}`"))
    rel_copies = [c for c in facts.copies if c.from_stage and any("/rel/" in src for src in c.sources)]
    for c in rel_copies:
        for src in c.sources:
            m = re.search(r"/rel/([^/\s]+)", src)
            if m and m.group(1) != name:
                out.append(error(REL, c.line, f"COPY --from path {src} names release `{m.group(1)}`, but the "
                                 f"release is `{name}` (the path will not exist)",
                                 f"change the path to /app/_build/prod/rel/{name}"))
    if not rel_copies:
        out.append(error(REL, first_line, "the final stage never copies the release from the builder stage",
                         f"add `COPY --from=builder /app/_build/prod/rel/{name} ./`"))
    if facts.cmd is None or not any("bin/server" in part for part in facts.cmd):
        out.append(warning(REL, facts.cmd_line, "the image does not start /app/bin/server",
                           'end with `CMD ["/app/bin/server"]` (it sets PHX_SERVER and starts the release)'))
    out += _toolchain(ctx, facts, first_line)
    users = [i for i in facts.instructions if i.keyword == "USER"]
    if not users or users[-1].args.strip() in ("root", "0"):
        out.append(warning(REL, users[-1].line if users else None, "the release runs as root",
                           "add `USER nobody` to the final stage"))
    return out
