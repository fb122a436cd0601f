"""Real Elixir as the judge of every .ex/.exs we write, patch or read.

One Elixir process per run (`templates/elixir/judge.exs`, started on the first question through the one
executor) answers every question: syntax (`Code.string_to_quoted`), what a file reads from the
environment and which `config` calls it makes (its AST, with line numbers), what a config file evaluates
to for an env (`Config.Reader` with Mix started, as `mix` does), what mix.lock pins, and whether a
version meets a requirement. Where Elixir is absent, `available()` is False and callers must say loudly
what they skipped.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import CommandFailed, UserError
from bezgelor_tasks.processes import Conversation
from bezgelor_tasks.run import Executor

# The judge's Elixir source files (templates/elixir/), compiled together.
JUDGE_SOURCES = ("judge.exs", "judge_source.exs")
INSTALL = "install it (Debian/Ubuntu: apt-get install elixir; macOS: brew install elixir)"


@dataclass(frozen=True)
class SyntaxProblem:
    file: str
    line: int
    message: str


def available() -> bool:
    return shutil.which("elixir") is not None


class Judge:
    """The one Elixir process of this run. Answers are cached by question and file state."""

    def __init__(self) -> None:
        self._conversation: Conversation | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[object, ...], dict[str, Any]] = {}
        self._next_id = 0
        self._environ = 0
        self.starts = 0       # how many Elixir processes this judge started (1 per run, unless one died)
        self.questions = 0    # how many questions reached Elixir (cache misses)

    def _start(self) -> Conversation:
        if not available():
            raise UserError("Elixir is not installed, so the Elixir files cannot be checked.", fix=f"{INSTALL}.")
        folder = resources.files("bezgelor_tasks").joinpath("templates", "elixir")
        with resources.as_file(folder) as path:
            sources = [path / name for name in JUDGE_SOURCES]
            digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
            cmd = Command(("elixir", "-e", _BOOT, "--", str(_cache_dir() / digest), *map(str, sources)),
                          purpose="the Elixir judge", mutates=False, timeout=180, tool="Elixir",
                          install=f"{INSTALL}.")
            self.starts += 1
            return Executor(echo=False).converse(cmd)

    def ask(self, op: str, *args: str, files: tuple[Path, ...] = ()) -> dict[str, Any]:
        """One question; `files` are the files the answer depends on (their state keys the cache)."""
        state = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else (str(f),) for f in files)
        key = (op, args, state)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            environ = hash(frozenset(os.environ.items()))
            if self._conversation is not None and environ != self._environ:
                self._conversation.close()   # the process sees the environment it started with
                self._conversation = None
            if self._conversation is None or not self._conversation.alive:
                self._conversation = self._start()
                self._environ = environ
            self._next_id += 1
            qid = str(self._next_id)
            encoded = "\t".join(base64.b64encode(a.encode("utf-8")).decode("ascii") for a in args)
            try:
                line = self._conversation.ask(f"{qid}\t{op}\t{encoded}".rstrip("\t"))
            except CommandFailed as e:
                self._conversation = None
                raise UserError(f"Elixir could not answer ({e.message})",
                                fix="check that `elixir --version` works, then run again.") from e
            self.questions += 1
            got_id, _, payload = line.partition("\t")
            if got_id != qid:
                raise UserError(f"the Elixir judge answered out of turn ({line[:200]!r}).",
                                fix="report this as a bezgelor-tasks bug.")
            answer: dict[str, Any] = json.loads(payload)
            if answer.get("internal"):
                raise UserError(f"the Elixir judge failed on {op}: {answer.get('error')}",
                                fix="report this as a bezgelor-tasks bug, with the file it was reading.")
            self._cache[key] = answer
            return answer

    def warm(self) -> None:
        """Start the Elixir process now, without waiting for it: its VM boots while Python does other work
        (a run that asks nothing pays only for the start). Quiet when Elixir is absent."""
        with self._lock:
            if available() and (self._conversation is None or not self._conversation.alive):
                self._conversation = self._start()
                self._environ = hash(frozenset(os.environ.items()))

    def close(self) -> None:
        with self._lock:
            if self._conversation is not None:
                self._conversation.close()
                self._conversation = None


# Load the judge's compiled modules from the cache (per judge.exs digest and Elixir/OTP version), compiling
# them there first when absent; where the cache cannot be written, compile in memory.
_BOOT = r"""
[cache | sources] = System.argv()
dir = Path.join(cache, System.version() <> "-otp" <> System.otp_release())
beam = Path.join(dir, "Elixir.BezgelorJudge.beam")
unless File.exists?(beam) do
  tmp = dir <> ".tmp" <> Integer.to_string(System.unique_integer([:positive]))
  try do
    File.mkdir_p!(tmp)
    {:ok, _, _} = Kernel.ParallelCompiler.compile_to_path(sources, tmp)
    File.rename!(tmp, dir)
  rescue
    _ -> File.rm_rf(tmp)
  end
end
if File.exists?(beam), do: Code.prepend_path(dir), else: Enum.each(sources, &Code.compile_file/1)
BezgelorJudge.main()
"""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bezgelor-tasks" / "judge"


_JUDGE = Judge()
atexit.register(_JUDGE.close)


def judge() -> Judge:
    return _JUDGE


# -- questions ---------------------------------------------------------------------------------------------

def _rel(file: str, rel_to: Path) -> str:
    try:
        return str(Path(file).resolve().relative_to(rel_to.resolve()))
    except ValueError:
        return file


def parse_files(paths: list[Path], rel_to: Path) -> list[SyntaxProblem]:
    """Syntax problems of the files (none: []). Raises UserError if Elixir is missing."""
    problems = []
    for p in paths:
        a = _JUDGE.ask("parse", str(p), files=(p,))
        if not a["ok"]:
            problems.append(SyntaxProblem(_rel(str(p), rel_to), int(a.get("line") or 0), a.get("message", "")))
    return problems


def parse_text(name: str, content: str) -> SyntaxProblem | None:
    """Whether `content` (to be written as `name`) parses; the problem if not."""
    a = _JUDGE.ask("parse", name, content)
    return None if a["ok"] else SyntaxProblem(name, int(a.get("line") or 0), a.get("message", ""))


@dataclass(frozen=True)
class EnvRead:
    var: str
    line: int
    how: str                        # get_env | fetch_env | fetch_env!
    default: str | int | None = None   # `System.get_env("PORT", "4000")` or `System.get_env("PORT") || "4000"`


def _source(path: Path, content: str | None) -> tuple[str, ...]:
    return (str(path),) if content is None else (str(path), content)


def env_reads(path: Path, content: str | None = None) -> list[EnvRead] | None:
    """Every System.get_env/fetch_env/fetch_env! of a literal name in the file (or in `content`, standing
    in for its text); None when it does not parse."""
    a = _JUDGE.ask("env_reads", *_source(path, content), files=(path,))
    if not a["ok"]:
        return None
    return [EnvRead(var, int(line or 0), how, default) for var, line, how, default in a["reads"]]


@dataclass(frozen=True)
class EnvConfig:
    """`config :app, [key,] kw: <expr>` where expr reads environment variables `vars`."""
    line: int
    app: str
    key: str | None
    kw: str
    vars: tuple[str, ...]
    expr: str      # the value's source, as Elixir prints it


def env_config(path: Path, content: str | None = None) -> list[EnvConfig] | None:
    """The config values a file computes from the environment (None: it does not parse)."""
    a = _JUDGE.ask("env_config", *_source(path, content), files=(path,))
    if not a["ok"]:
        return None
    return [EnvConfig(int(v["line"] or 0), v["app"], v["key"], v["kw"], tuple(v["vars"]), v["expr"])
            for v in a["values"]]


def evaluate_config(path: Path, env: str = "prod", environ: Mapping[str, str | None] | None = None,
                    cwd: Path | None = None) -> dict[str, Any]:
    """Config.Reader's answer for `path` as Mix would evaluate it: {"ok", "config"} or
    {"ok": False, "error", "file", "line", "needs_deps", "module"}. `environ` sets (None: removes)
    environment variables for this evaluation only; they travel on the judge's stdin, never argv."""
    lines = "\n".join(f"-{k}" if v is None else f"{k}={v}" for k, v in sorted((environ or {}).items()))
    root = (cwd or path.resolve().parent.parent).resolve()
    config_dir = path.resolve().parent
    deps = tuple(sorted(config_dir.glob("*.exs")))
    return _JUDGE.ask("config", str(path.resolve()), env, lines, str(root), files=deps)


def read_config(path: Path, env: str = "prod", environ: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """The evaluated config as JSON-able data (keyword lists → objects, tuples → lists, non-UTF-8
    binaries → "base64:..."); raises UserError when it does not evaluate."""
    a = evaluate_config(path, env, environ)
    if not a["ok"]:
        raise UserError(f"{path} does not evaluate with Config.Reader: {a.get('error')}",
                        fix="fix the Elixir error it names, then run again.")
    config: dict[str, Any] = a["config"]
    return config


def mix_lock(path: Path) -> dict[str, str]:
    """package -> version (hex) or "git:<ref>" from mix.lock, evaluated by Elixir."""
    a = _JUDGE.ask("mix_lock", str(path), files=(path,))
    versions: dict[str, str] = a.get("versions", {}) if a["ok"] else {}
    return versions


def mix_project(path: Path) -> dict[str, str] | None:
    """The literal string/atom keys of a mix.exs `def project` (app, version, elixir, ...)."""
    from bezgelor_tasks import elixir_source

    facts = elixir_source.project(path)
    if facts is None:
        return None
    return {k: v for k, v in facts.literals().items() if isinstance(v, str)}


def version_matches(version: str, requirement: str) -> bool:
    """Elixir's own Version.match?/3 (False when either does not parse)."""
    return bool(_JUDGE.ask("version_match", version, requirement).get("match"))
