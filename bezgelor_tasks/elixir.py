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


Key = tuple[object, ...]
Question = tuple[str, tuple[str, ...], tuple[Path, ...]]    # op, args, the files the answer depends on


class Judge:
    """The one Elixir process of this run. Answers are cached by question and file state.

    Questions are pipelined: each is sent as soon as it is asked, by any thread; the judge answers them side by
    side and each answer names its question; whichever waiting thread is free reads the next one for everybody
    (`_await`). So several areas' questions keep the judge busy, and `ask_many` sends a batch before reading."""

    def __init__(self) -> None:
        self._conversation: Conversation | None = None
        self._cond = threading.Condition(threading.Lock())   # guards everything below
        self._cache: dict[Key, dict[str, Any]] = {}
        self._failed: dict[Key, UserError] = {}
        self._unread: dict[str, tuple[Key, str, tuple[str, ...]]] = {}   # id -> (key, op, args): not answered yet
        self._launch: Path | None = None    # the launch file the running process was started from (judge_launch)
        self._answered = False              # the running process has answered
        self._reading = False
        self._next_id = 0
        self._environ = 0
        self.starts = 0       # how many Elixir processes this judge started (1 per run, unless one died)
        self.questions = 0    # how many questions reached Elixir (cache misses)

    def _start(self) -> Conversation:
        if not available():
            raise UserError("Elixir is not installed, so the Elixir files cannot be checked.", fix=f"{INSTALL}.")
        from bezgelor_tasks import judge_launch

        folder = resources.files("bezgelor_tasks").joinpath("templates", "elixir")
        with resources.as_file(folder) as path:
            argv, self._launch, env = judge_launch.command([path / name for name in JUDGE_SOURCES])
            cmd = Command(argv, purpose="the Elixir judge", env=env, mutates=False, timeout=180, tool="Elixir",
                          install=f"{INSTALL}.")
            self.starts += 1
            self._answered = False
            return Executor(echo=False).converse(cmd)

    @staticmethod
    def _key(op: str, args: tuple[str, ...], files: tuple[Path, ...]) -> Key:
        state = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else (str(f),) for f in files)
        return (op, args, state)

    def ask(self, op: str, *args: str, files: tuple[Path, ...] = ()) -> dict[str, Any]:
        """One question; `files` are the files the answer depends on (their state keys the cache)."""
        return self.ask_many([(op, args, files)])[0]

    def ask_many(self, questions: list[Question]) -> list[dict[str, Any]]:
        """Several questions, all sent before the first answer is read; the answers in the same order."""
        keys = [self._key(op, args, files) for op, args, files in questions]
        with self._cond:
            for key, (op, args, _) in zip(keys, questions, strict=True):
                self._send(key, op, args)
            return [self._await(key) for key in keys]

    def _conversation_now(self) -> Conversation:
        """The running process (started, or started again when the environment changed: the process sees
        the environment it started with; never while answers are still to be read)."""
        environ = hash(frozenset(os.environ.items()))
        if self._conversation is not None and environ != self._environ and not self._unread:
            self._conversation.close()
            self._conversation = None
        if self._conversation is None or (not self._conversation.alive and not self._unread):
            self._conversation = self._start()
            self._environ = environ
        return self._conversation

    def _send(self, key: Key, op: str, args: tuple[str, ...]) -> None:
        """Send a question unless its answer is known or on its way (one that failed is asked again)."""
        self._failed.pop(key, None)
        if key in self._cache or any(k == key for k, _, _ in self._unread.values()):
            return
        conversation = self._conversation_now()
        self._next_id += 1
        qid = str(self._next_id)
        encoded = "\t".join(base64.b64encode(a.encode("utf-8")).decode("ascii") for a in args)
        try:
            conversation.send(f"{qid}\t{op}\t{encoded}".rstrip("\t"))
        except CommandFailed as e:
            self._unread[qid] = (key, op, args)
            if not self._start_over():
                error = UserError(f"Elixir could not answer ({e.message})",
                                  fix="check that `elixir --version` works, then run again.")
                self._fail(error)
                raise error from e
            return
        self._unread[qid] = (key, op, args)
        self.questions += 1

    def _start_over(self) -> bool:
        """A process started from a launch file died before it answered anything: forget that file, start
        through the launcher and ask again what was not answered. False when there is nothing to fall back on."""
        if self._launch is None or self._answered:
            return False
        from bezgelor_tasks import judge_launch

        judge_launch.forget(self._launch)
        if self._conversation is not None:
            self._conversation.close(wait=False)
        self._conversation = self._start()
        pending, self._unread = list(self._unread.values()), {}
        for key, op, args in pending:
            self._send(key, op, args)
        return True

    def _await(self, key: Key) -> dict[str, Any]:
        """The answer to a question sent: read (by this thread, or the one already reading) in turn."""
        while key not in self._cache:
            if key in self._failed:
                raise self._failed[key]
            if self._reading:
                self._cond.wait()
                continue
            conversation = self._conversation
            assert conversation is not None and self._unread, "an answer was awaited that was never asked"
            self._reading = True
            self._cond.release()     # others may ask (send) while this thread waits for the next line
            try:
                line: str | None = conversation.receive()
                failure = None
            except CommandFailed as e:
                line, failure = None, e
            finally:
                self._cond.acquire()
                self._reading = False
                self._cond.notify_all()
            if failure is not None or line is None:
                if conversation is not self._conversation or self._start_over():
                    continue      # a newer process answers (started here or by another thread)
                self._fail(UserError(f"Elixir could not answer ({failure.message if failure else 'no answer'})",
                                     fix="check that `elixir --version` works, then run again."))
                continue
            self._answered = True
            self._take(line)
        return self._cache[key]

    def _take(self, line: str) -> None:
        qid, _, payload = line.partition("\t")
        if qid not in self._unread:
            self._fail(UserError(f"the Elixir judge answered a question nobody asked ({line[:200]!r}).",
                                 fix="report this as a bezgelor-tasks bug."))
            return
        key, op, _ = self._unread.pop(qid)
        answer: dict[str, Any] = json.loads(payload)
        if answer.get("internal"):
            self._failed[key] = UserError(f"the Elixir judge failed on {op}: {answer.get('error')}",
                                          fix="report this as a bezgelor-tasks bug, with the file it was reading.")
        else:
            self._cache[key] = answer

    def _fail(self, error: UserError) -> None:
        """The process cannot answer: every question still to be read fails with `error`; the next starts it."""
        for key, _, _ in self._unread.values():
            self._failed[key] = error
        self._unread.clear()
        if self._conversation is not None:
            self._conversation.close()
        self._conversation = None
        self._cond.notify_all()

    def warm(self) -> None:
        """Start the Elixir process now, without waiting for it: its VM boots while Python does other work
        (a run that asks nothing pays only for the start). Quiet when Elixir is absent."""
        with self._cond:
            if available() and (self._conversation is None or not self._conversation.alive):
                self._conversation = self._start()
                self._environ = hash(frozenset(os.environ.items()))

    def close(self, wait: bool = True) -> None:
        with self._cond:
            if self._conversation is not None:
                self._conversation.close(wait=wait)
                self._conversation = None


_JUDGE = Judge()
atexit.register(_JUDGE.close, wait=False)   # it exits on its own once its stdin closes


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
    # absolute paths: the judge answers side by side, and a `config` answer changes its working directory
    answers = _JUDGE.ask_many([("parse", (str(p.resolve()),), (p,)) for p in paths])
    return [SyntaxProblem(_rel(str(p), rel_to), int(a.get("line") or 0), a.get("message", ""))
            for p, a in zip(paths, answers, strict=True) if not a["ok"]]


def parse_text(name: str, content: str) -> SyntaxProblem | None:
    """Whether `content` (to be written as `name`) parses; the problem if not."""
    a = _JUDGE.ask("parse", name, content)
    return None if a["ok"] else SyntaxProblem(name, int(a.get("line") or 0), a.get("message", ""))


@dataclass(frozen=True)
class EnvRead:
    var: str
    line: int
    how: str                        # get_env | fetch_env | fetch_env! | get_env_or_raise (`get_env("X") || raise`)
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
    a = _JUDGE.ask("mix_lock", str(path.resolve()), files=(path,))   # absolute: see parse_files
    versions: dict[str, str] = a.get("versions", {}) if a["ok"] else {}
    return versions


def version_matches(version: str, requirement: str) -> bool:
    """Elixir's own Version.match?/3 (False when either does not parse)."""
    return bool(_JUDGE.ask("version_match", version, requirement).get("match"))
