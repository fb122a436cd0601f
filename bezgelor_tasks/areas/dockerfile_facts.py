"""A Dockerfile read back into facts for verify: which files it copies (from the context or another stage), which
ports it exposes, its ARG defaults, stages, RUN lines and CMD, each with its line (`\\` continuations joined)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

_MIX_RELEASE = re.compile(r"\bmix\s+release(?![\w.-])(?:\s+([a-z_][a-z0-9_]*)\b)?")
# where `mix release` leaves a release: _build/<env>/rel/<release> (not rel/overlays or other rel/ folders)
_BUILT_RELEASE = re.compile(r"_build/[^/\s]+/rel/([^/\s]+)")
_RELEASE_NAME = re.compile(r"[a-z_][a-z0-9_]*")   # a release is named by an Elixir atom


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

    def release_builds(self) -> list[tuple[int, str | None]]:
        """(line, release name) of every RUN of `mix release [<name>]` (None: the default release)."""
        return [(ins.line, m.group(1)) for ins in self.runs if (m := _MIX_RELEASE.search(ins.args))]

    def release_copies(self) -> list[tuple[int, str, str]]:
        """(line, source, release) of every COPY from another stage of a built release (`.../rel/<release>`)."""
        return [(c.line, src, m.group(1)) for c in self.copies if c.from_stage
                for src in c.sources if (m := _BUILT_RELEASE.search(src))]

    @property
    def release(self) -> str | None:
        """The release the image runs: the one whose built folder the image copies last (`COPY --from=builder
        /app/_build/prod/rel/<release> ./` is what puts /app/bin/<release> in the image), else the one `mix
        release <release>` builds; None when it names neither (or only through a variable)."""
        named = [name for *_, name in reversed(self.release_copies())] + [
            name for _, name in reversed(self.release_builds()) if name]
        for name in named:
            if _RELEASE_NAME.fullmatch(name):
                return name
        return None


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


def _copy(line: int, rest: str, stage: str | None) -> list[Copy]:
    """A COPY/ADD's sources and destination (shell or JSON form), and the stage it copies from."""
    words = _words(rest)
    if rest.startswith("["):
        try:
            words = [str(w) for w in json.loads(rest)]
        except ValueError:
            pass
    from_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
    plain = [w for w in words if not w.startswith("--")]
    return [Copy(line, tuple(plain[:-1]), plain[-1], from_stage, stage)] if len(plain) >= 2 else []


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
            copies.extend(_copy(line, rest, stage))
        elif keyword == "EXPOSE":
            exposes.append(Expose(line, tuple(int(m.group(1)) for w in rest.split() if (m := re.match(r"(\d+)", w)))))
        elif keyword == "CMD":
            try:
                parsed = json.loads(rest)
                cmd = tuple(str(x) for x in parsed) if isinstance(parsed, list) else (rest,)
            except ValueError:
                cmd = ("/bin/sh", "-c", rest)
            cmd_line = line
    return DockerfileFacts(tuple(instructions), tuple(copies), tuple(exposes), args, arg_lines, tuple(stages),
                           cmd, cmd_line, tuple(i for i in instructions if i.keyword == "RUN"))
