"""The release image's Dockerfile, generated from the apps actually in apps/ and from Settings.

Every app of the release gets its mix.exs copied first (so `mix deps.get` is cached while only code
changes), then its priv/ (only where one exists) and lib/. Dev-only apps are never copied. Versions,
ports and the release name come from Settings, so the Dockerfile, fly.toml and verify cannot drift.

`parse_dockerfile` reads a Dockerfile back into `DockerfileFacts` for verify (which copies, which
ports, which ARG defaults, on which lines).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.files import FileChange, generated_change
from bezgelor_tasks.render import render

DOCKERFILE = "Dockerfile"

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
    from bezgelor_tasks import elixir

    files = [co.path("mix.exs"), *(co.app_dir(app) / "mix.exs" for app in co.release_apps)]
    out = {}
    for path in files:
        project = elixir.mix_project(path) if path.is_file() and elixir.available() else None
        if project and isinstance(project.get("elixir"), str):
            out[co.rel(path)] = project["elixir"]
    return out


def unmet_requirements(co: Checkout, version: str) -> dict[str, str]:
    """The requirements of `elixir_requirements` that Elixir `version` does not meet (Version.match?)."""
    from bezgelor_tasks import elixir

    return {rel: req for rel, req in elixir_requirements(co).items() if not elixir.version_matches(version, req)}


def render_dockerfile(co: Checkout) -> str:
    s = co.settings
    portal = s.portal_app
    from bezgelor_tasks.areas.mix_exs import portal_aliases
    from bezgelor_tasks.areas.release import of as release_of

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
        release_path=s.release_path(), nobody_uid=NOBODY_UID, release_folders=release_of(co).build_folders,
        ports_comment=", ".join(f"{name} {port}" for name, port in s.ports.all().items()),
        ports=[str(p) for p in s.ports.all().values()])


def dockerfile_change(co: Checkout) -> FileChange:
    return generated_change(co.path(DOCKERFILE), DOCKERFILE, render_dockerfile(co),
                            "release image built from the umbrella's release apps (never the dev-only ones)")


# ---------------------------------------------------------------------------------------------
# Reading a Dockerfile back (for verify).

@dataclass(frozen=True)
class Copy:
    line: int
    sources: tuple[str, ...]
    dest: str
    from_stage: str | None      # COPY --from=<stage>
    stage: str | None           # the FROM ... AS <stage> this COPY is in


@dataclass(frozen=True)
class Expose:
    line: int
    ports: tuple[int, ...]


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str       # upper case: RUN, COPY, ...
    args: str          # the rest, continuation lines joined


@dataclass(frozen=True)
class DockerfileFacts:
    instructions: tuple[Instruction, ...]
    copies: tuple[Copy, ...]
    exposes: tuple[Expose, ...]
    args: dict[str, str | None] = field(default_factory=dict)      # ARG name -> default (first seen)
    arg_lines: dict[str, int] = field(default_factory=dict)
    stages: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    cmd_line: int | None = None
    runs: tuple[Instruction, ...] = ()

    @property
    def exposed_ports(self) -> set[int]:
        return {p for e in self.exposes for p in e.ports}

    def local_copy_sources(self) -> list[tuple[int, str]]:
        """(line, path) of every COPY source read from the build context (not from another stage)."""
        return [(c.line, src) for c in self.copies if c.from_stage is None for src in c.sources]

    def copied_apps(self) -> set[str]:
        """Umbrella apps any context COPY touches (apps/<app>/...)."""
        return {m.group(1) for _, src in self.local_copy_sources() if (m := re.match(r"apps/([^/]+)", src))}


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction text) with `\\` continuations joined and comments dropped."""
    result: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue   # comment lines inside a continuation are skipped by Docker
        if not buf:
            start = n
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        result.append((start, " ".join(p for p in buf if p)))
        buf = []
    if buf:
        result.append((start, " ".join(buf)))
    return result


def _words(args: str) -> list[str]:
    try:
        return shlex.split(args, posix=True)
    except ValueError:
        return args.split()


def parse_dockerfile(text: str) -> DockerfileFacts:
    instructions: list[Instruction] = []
    copies: list[Copy] = []
    exposes: list[Expose] = []
    args: dict[str, str | None] = {}
    arg_lines: dict[str, int] = {}
    stages: list[str] = []
    cmd: tuple[str, ...] | None = None
    cmd_line: int | None = None
    stage: str | None = None
    for line, body in _logical_lines(text):
        keyword, _, rest = body.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        ins = Instruction(line, keyword, rest)
        instructions.append(ins)
        if keyword == "FROM":
            words = rest.split()
            lowered = [w.lower() for w in words]
            stage = words[lowered.index("as") + 1] if "as" in lowered and lowered.index("as") + 1 < len(words) \
                else None
            if stage:
                stages.append(stage)
        elif keyword == "ARG":
            name, eq, default = rest.partition("=")
            name = name.strip()
            if name not in args:
                args[name] = _words(default)[0] if eq and _words(default) else (default if eq else None)
                arg_lines[name] = line
        elif keyword in ("COPY", "ADD"):
            words = _words(rest)
            if rest.startswith("["):
                try:
                    words = [str(w) for w in json.loads(rest)]
                except ValueError:
                    pass
            from_stage = None
            plain: list[str] = []
            for w in words:
                if w.startswith("--from="):
                    from_stage = w.split("=", 1)[1]
                elif not w.startswith("--"):
                    plain.append(w)
            if len(plain) >= 2:
                copies.append(Copy(line, tuple(plain[:-1]), plain[-1], from_stage, stage))
        elif keyword == "EXPOSE":
            ports = []
            for w in rest.split():
                m = re.match(r"(\d+)", w)
                if m:
                    ports.append(int(m.group(1)))
            exposes.append(Expose(line, tuple(ports)))
        elif keyword == "CMD":
            try:
                parsed = json.loads(rest)
                cmd = tuple(str(x) for x in parsed) if isinstance(parsed, list) else (rest,)
            except ValueError:
                cmd = ("/bin/sh", "-c", rest)
            cmd_line = line
    return DockerfileFacts(tuple(instructions), tuple(copies), tuple(exposes), args, arg_lines, tuple(stages),
                           cmd, cmd_line, tuple(i for i in instructions if i.keyword == "RUN"))
