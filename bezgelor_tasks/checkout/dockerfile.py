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

DOCKERFILE = "Dockerfile"

# Build tools for NIFs (build-essential) and git deps (git). Runtime: what an OTP release needs on Debian.
BUILD_PACKAGES = ("build-essential", "git")
NOBODY_UID = 65534   # Debian's `nobody`
RUNTIME_PACKAGES = ("libstdc++6", "openssl", "libncurses6", "locales", "ca-certificates")
# Config files the build never reads: dev/test are for other environments, runtime.exs is copied
# late on purpose (it changes often and is read only when the release boots).
_LATE_OR_UNUSED_CONFIG = {"runtime.exs", "dev.exs", "test.exs"}


def portal_mix_aliases(co: Checkout) -> set[str]:
    """Which of assets.setup / assets.deploy the portal's mix.exs defines (as alias keys)."""
    mix = co.app_dir(co.settings.portal_app) / "mix.exs"
    text = mix.read_text(encoding="utf-8") if mix.is_file() else ""
    return {name for name in ("assets.setup", "assets.deploy") if re.search(rf'"{re.escape(name)}"\s*[:,]', text)}


def build_config_files(co: Checkout) -> list[str]:
    """config/*.exs the compile step needs: config.exs, prod.exs (init writes it) and whatever else
    config.exs may import (for example config/appsignal.exs), never dev/test/runtime."""
    cfg = co.root / "config"
    present = {p.name for p in cfg.glob("*.exs")} if cfg.is_dir() else set()
    names = ({"config.exs", "prod.exs"} | present) - _LATE_OR_UNUSED_CONFIG
    return [f"config/{n}" for n in sorted(names, key=lambda n: (n != "config.exs", n != "prod.exs", n))]


def render_dockerfile(co: Checkout) -> str:
    s = co.settings
    apps = co.release_apps
    portal = s.portal_app
    aliases = portal_mix_aliases(co)
    has_assets = (co.app_dir(portal) / "assets").is_dir()
    lock = " mix.lock" if (co.root / "mix.lock").is_file() else ""
    pkgs_build = " ".join(BUILD_PACKAGES)
    pkgs_run = " ".join(RUNTIME_PACKAGES)
    ports = s.ports.all()

    out: list[str] = []
    add = out.append
    add("# Bezgelor release image, written by `inv init` from the apps in apps/ and the BEZGELOR_* settings.")
    add("# Adding or removing an umbrella app? Run `inv init` again so the COPY lines follow.")
    add(f"# Never copied (dev-only, see BEZGELOR_DEV_ONLY_APPS): {', '.join(s.dev_only_apps) or 'none'}.")
    add(f"ARG ELIXIR_VERSION={s.elixir_version}")
    add(f"ARG OTP_VERSION={s.otp_version}")
    add(f"ARG DEBIAN_VERSION={s.debian_version}")
    add('ARG BUILDER_IMAGE="hexpm/elixir:${ELIXIR_VERSION}-erlang-${OTP_VERSION}-debian-${DEBIAN_VERSION}"')
    add('ARG RUNNER_IMAGE="debian:${DEBIAN_VERSION}"')
    add("")
    add("FROM ${BUILDER_IMAGE} AS builder")
    add("")
    add("# Versions come from the pinned base image tag (DEBIAN_VERSION is a dated snapshot), so the")
    add("# packages are as reproducible as the tag; pinning each apt version too would break on every")
    add("# Debian point release without making the image any safer.")
    add("# hadolint ignore=DL3008")
    add("RUN apt-get update \\")
    add(f"    && apt-get install -y --no-install-recommends {pkgs_build} \\")
    add("    && rm -rf /var/lib/apt/lists/*")
    add("")
    add("WORKDIR /app")
    add("RUN mix local.hex --force && mix local.rebar --force")
    add("ENV MIX_ENV=prod")
    add("")
    add("# mix.exs files first: dependencies are fetched and compiled again only when one of them changes.")
    add(f"COPY mix.exs{lock} ./")
    for app in apps:
        add(f"COPY apps/{app}/mix.exs apps/{app}/")
    add("RUN mix deps.get --only prod")
    add("# Compile-time config (runtime.exs comes later).")
    add(f"COPY {' '.join(build_config_files(co))} config/")
    if "assets.setup" in aliases:
        add(f"# The asset aliases live in {portal}'s mix.exs; `mix cmd --app` runs them there, so the build")
        add("# does not depend on umbrella-level aliases.")
        add("RUN mix deps.compile \\")
        add(f"    && mix cmd --app {portal} mix assets.setup")
    else:
        add("RUN mix deps.compile")
    add("")
    priv_apps = [a for a in apps if co.has_priv(a)]
    if priv_apps:
        add("# priv/ of the apps that have one (game data, migrations, static files).")
        for app in priv_apps:
            add(f"COPY apps/{app}/priv apps/{app}/priv")
    add("# Source of every release app.")
    for app in apps:
        add(f"COPY apps/{app}/lib apps/{app}/lib")
    add("RUN mix compile")
    if has_assets or "assets.deploy" in aliases:
        add("")
    if has_assets:
        add(f"COPY apps/{portal}/assets apps/{portal}/assets")
    if "assets.deploy" in aliases:
        add(f"RUN mix cmd --app {portal} mix assets.deploy")
    add("")
    add("# Read when the release boots, so copied late: editing it does not invalidate the layers above.")
    add("COPY config/runtime.exs config/")
    add("COPY rel rel")
    add(f"RUN mix release {s.release_name}")
    add("")
    add("FROM ${RUNNER_IMAGE} AS runner")
    add("")
    add("# See the builder stage for why apt versions are not pinned.")
    add("# hadolint ignore=DL3008")
    add("RUN apt-get update \\")
    add(f"    && apt-get install -y --no-install-recommends {pkgs_run} \\")
    add("    && rm -rf /var/lib/apt/lists/* \\")
    add("    && sed -i '/en_US.UTF-8/s/^# //g' /etc/locale.gen \\")
    add("    && locale-gen")
    add("ENV LANG=en_US.UTF-8 LANGUAGE=en_US:en LC_ALL=en_US.UTF-8 MIX_ENV=prod")
    add("")
    add("# APP_VERSION comes from fly.toml [build.args] or `inv deploy.full` (git describe); APP_REVISION")
    add("# is the git commit. Both only label the image.")
    add("ARG APP_VERSION=unknown")
    add("ARG APP_REVISION=unknown")
    add('LABEL org.opencontainers.image.version="${APP_VERSION}" \\')
    add('      org.opencontainers.image.revision="${APP_REVISION}" \\')
    add(f'      org.opencontainers.image.source="{s.image_source}" \\')
    add('      org.opencontainers.image.description="Bezgelor WildStar server emulator: portal and game servers"')
    add("ENV APP_VERSION=${APP_VERSION}")
    add("")
    add("WORKDIR /app")
    add("RUN chown nobody /app")
    add(f"COPY --from=builder --chown=nobody:root {s.release_path()} ./")
    add("# nobody, by number: the runtime need not resolve a name to know the image runs unprivileged.")
    add(f"USER {NOBODY_UID}")
    add("")
    add("# " + ", ".join(f"{name} {port}" for name, port in ports.items()) + " (see fly.toml [[services]]).")
    add("EXPOSE " + " ".join(str(p) for p in ports.values()))
    add('CMD ["/app/bin/server"]')
    return "\n".join(out) + "\n"


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
