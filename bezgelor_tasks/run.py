"""The one executor: argv in, result out.

Commands are data (`Command`); builders elsewhere are pure functions that return them. Dry-run,
echo, redaction, timeouts and retries live here and only here. Secret values travel on stdin,
which is never echoed, logged or put in an exception.
"""

from __future__ import annotations

import ctypes
import os
import queue
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import sh

from bezgelor_tasks.errors import CommandFailed, UserError
from bezgelor_tasks.redact import redact, register
from bezgelor_tasks.ui import UI


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    purpose: str = ""
    env: Mapping[str, str | None] = field(default_factory=dict)  # a None value removes the variable
    # What the command reads on stdin; None: /dev/null (a command never gets the user's terminal unless
    # `interactive`: flyctl must not stop mid-deploy to prompt).
    stdin: str | None = None
    cwd: Path | None = None
    timeout: float | None = None
    retries: int = 0
    # Changing unless its builder says it only reads: under --dry-run a changing command is shown, not run.
    mutates: bool = True
    ok_codes: tuple[int, ...] = (0,)
    secret_stdin: bool = True
    # NAME=VALUE lines on stdin are secret unless their NAME is listed here (e.g. a public IP address).
    public_stdin_names: frozenset[str] = frozenset()
    # For the error when argv[0] is missing: what the program is ("flyctl") and how to install it.
    tool: str = ""
    install: str = ""
    # File descriptors the child inherits under the same numbers (an in-memory pgpass: /dev/fd/N).
    pass_fds: tuple[int, ...] = ()
    # Show its output live, each line redacted (a remote build or `fly deploy`: minutes of progress).
    stream: bool = False
    # Meant to talk with the user (a remote console): it gets the terminal (stdin, stdout, stderr) and its
    # output is not captured. Every other command gets /dev/null as stdin.
    interactive: bool = False

    def shown(self) -> str:
        """The command as a person would type it, secrets masked."""
        text = shlex.join(self.argv)
        if self.stdin is not None:
            text += " < (stdin)" if self.secret_stdin else f" <<< {shlex.quote(self.stdin)}"
        return redact(text)

    def as_json(self) -> dict[str, Any]:
        return {"argv": [redact(a) for a in self.argv], "purpose": self.purpose, "mutates": self.mutates,
                "stdin": None if self.stdin is None else "(secret)" if self.secret_stdin else redact(self.stdin)}


@dataclass
class Result:
    command: Command
    returncode: int
    stdout: str
    stderr: str
    duration: float
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode in self.command.ok_codes


Observer = Callable[[Command, "Result"], None]
T = TypeVar("T")

# Set when the user interrupts (Ctrl-C, SIGTERM): waits in worker threads (the health gate) end at once.
STOP = threading.Event()


_RUNNING: dict[int, Any] = {}  # id -> the child processes being waited for, in any thread
_RUNNING_LOCK = threading.Lock()


_CLEANUP = threading.local()


@contextmanager
def cleanup_after_interrupt() -> Iterator[None]:
    """Commands this thread runs in the block run even after Ctrl-C (freeing a lock kept on Fly)."""
    _CLEANUP.on = True
    try:
        yield
    finally:
        _CLEANUP.on = False


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every `finally` runs."""


@contextmanager
def termination_raises() -> Iterator[None]:
    """SIGTERM and SIGHUP (a CI runner cancelling the job, `kill`, a closed terminal) raise like Ctrl-C for
    the block, so every `finally` runs: children stopped, locks freed, tunnels closed, temporary files removed
    (Python's default would exit at once). Used by every task and by the lock."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"signal {signum}")

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in previous:
        signal.signal(s, on_term)
    # SIGINT already raises KeyboardInterrupt under Python's default handler; make sure it still does.
    prev_int = signal.getsignal(signal.SIGINT)
    if prev_int in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        signal.signal(signal.SIGINT, prev_int)


@contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block ends: for a phase of milliseconds that must not
    stop half-way (renaming staged files into place). A signal that arrives inside is recorded in the
    yielded list; the caller raises it (with what it means) right after the block."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    for s in previous:
        signal.signal(s, hold)
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def interruptible_sleep(seconds: float) -> bool:
    """Sleep up to `seconds`; True when interrupted (STOP set) instead."""
    return STOP.wait(max(0.0, seconds))


def interrupt_all(grace: float = 0.5) -> int:
    """Ctrl-C: set STOP and stop every child process still running (TERM, then KILL after `grace`).
    Returns how many were running. Worker threads waiting on them return at once."""
    STOP.set()
    with _RUNNING_LOCK:
        procs = list(_RUNNING.values())
    for proc in procs:  # all at once, so they share one grace period
        try:
            proc.terminate()
        except (ProcessLookupError, OSError):
            pass
    deadline = time.monotonic() + grace
    for proc in procs:
        _end(proc, max(0.0, deadline - time.monotonic()))
    return len(procs)


class Executor:
    def __init__(self, *, ui: UI | None = None, dry_run: bool = False, echo: bool = True,
                 default_timeout: float = 900, retry_delay: float = 1.0) -> None:
        self.ui = ui or UI()
        self.dry_run = dry_run
        self.echo = echo
        self.default_timeout = default_timeout
        self.retry_delay = retry_delay
        self.observers: list[Observer] = []
        self.history: list[Result] = []
        # Called with each streamed line before it is shown (e.g. to register a password as secret first).
        self.line_watchers: list[Callable[[str], None]] = []

    def _env(self, cmd: Command) -> dict[str, str]:
        env = dict(os.environ)
        for key, value in cmd.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def _resolve(self, cmd: Command) -> str:
        program = cmd.argv[0]
        path = shutil.which(program)
        if path is None:
            what = f"{cmd.tool} (`{program}`)" if cmd.tool else f"`{program}`"
            raise UserError(f"{what} is not installed or not on PATH.",
                            fix=cmd.install or f"install {program} (see README's requirements) or put it on PATH.")
        return path

    def run(self, cmd: Command, *, check: bool = True) -> Result:
        if cmd.secret_stdin and cmd.stdin:
            for line in cmd.stdin.splitlines():
                name, _, value = line.partition("=")
                if name.strip() not in cmd.public_stdin_names:
                    register(value.strip().strip('"').strip("'"))
        if self.dry_run and cmd.mutates:
            if self.echo:
                self.ui.command(cmd.shown(), dry_run=True)
            self.observe(cmd, skipped := Result(cmd, 0, "", "", 0.0, dry_run=True))
            return skipped
        if cmd.interactive:
            return self._run_interactive(cmd, check)
        attempts = cmd.retries + 1
        result: Result | None = None
        for attempt in range(1, attempts + 1):
            if self.echo:
                self.ui.command(cmd.shown())
            result = self._run_once(cmd)
            if result.ok or attempt == attempts:
                break
            time.sleep(self.retry_delay * attempt)
        assert result is not None
        self.observe(cmd, result)
        if check and not result.ok:
            raise self.failure(result)
        return result

    def change(self, shown: str, do: Callable[[], T]) -> T | None:
        """An in-process change that is not a command — a file written, an object uploaded or deleted, a
        webhook posted: the one place such changes pass, so a dry run shows `shown` and refuses it (None)."""
        if self.dry_run:
            if self.echo:
                self.ui.change(redact(shown))
            return None
        return do()

    def _run_interactive(self, cmd: Command, check: bool) -> Result:
        """A command meant for the user's terminal (a console): inherits stdin/stdout/stderr, not captured."""
        import subprocess

        program = self._resolve(cmd)
        if self.echo:
            self.ui.command(cmd.shown())
        started = time.monotonic()
        proc = subprocess.Popen([program, *cmd.argv[1:]], env=self._env(cmd), cwd=str(cmd.cwd) if cmd.cwd else None)
        with _RUNNING_LOCK:
            _RUNNING[id(proc)] = proc
        try:
            code = proc.wait()
        except BaseException:
            proc.terminate()
            raise
        finally:
            with _RUNNING_LOCK:
                _RUNNING.pop(id(proc), None)
        result = Result(cmd, code, "", "", time.monotonic() - started)
        self.observe(cmd, result)
        if check and not result.ok:
            raise self.failure(result)
        return result

    def refuse_in_dry_run(self, cmd: Command) -> None:
        """A changing command that cannot be stood in for by an empty result (a background process, a
        conversation): under --dry-run it is shown and the task stops here."""
        if self.dry_run and cmd.mutates:
            raise UserError(f"dry run: would start `{cmd.shown()}`; the rest depends on it, so the dry run stops "
                            "here (nothing was changed).", fix="run without --dry-run to go on.")

    def observe(self, cmd: Command, result: Result) -> None:
        """A finished command's result, for the history and the observers (also of a `piped` command)."""
        self.history.append(result)
        for obs in self.observers:
            obs(cmd, result)

    def _run_once(self, cmd: Command) -> Result:
        program = self._resolve(cmd)
        timeout = cmd.timeout if cmd.timeout is not None else self.default_timeout
        started = time.monotonic()
        if STOP.is_set() and not getattr(_CLEANUP, "on", False):
            raise KeyboardInterrupt("interrupted: not starting " + cmd.shown())
        streamed: list[str] = []
        extra: dict[str, Any] = {}
        progress = None
        if cmd.stream:
            progress = self.ui.progress(cmd.purpose or cmd.shown())
            shown = progress.__enter__()

            def on_line(line: str) -> None:
                streamed.append(line)
                text = line.rstrip("\n")
                for watch in self.line_watchers:
                    watch(text)
                if text.strip():
                    shown.note(redact(text.strip()))

            extra = {"_out": on_line, "_err": on_line}
        stdin: Any = cmd.stdin if cmd.stdin is not None else open(os.devnull, "rb")  # noqa: SIM115 (closed below)
        try:
            proc = sh.Command(program)(
                *cmd.argv[1:], _in=stdin, _env=self._env(cmd), _cwd=str(cmd.cwd) if cmd.cwd else None,
                _timeout=timeout, _tty_out=False, _ok_code=list(range(256)), _decode_errors="replace",
                _bg=True, _bg_exc=False, **_child_options(cmd), **extra)
            with _RUNNING_LOCK:
                _RUNNING[id(proc)] = proc
            try:
                proc.wait()
            except BaseException:  # Ctrl-C, SIGTERM (raised as KeyboardInterrupt), anything: no orphan child
                _end(proc)
                raise
            finally:
                with _RUNNING_LOCK:
                    _RUNNING.pop(id(proc), None)
            if cmd.stream:
                out, err = "".join(streamed), ""
            else:
                out = proc.stdout.decode("utf-8", "replace")
                err = proc.stderr.decode("utf-8", "replace")
            code = proc.exit_code
            if STOP.is_set() and code != 0 and not getattr(_CLEANUP, "on", False):
                raise KeyboardInterrupt(f"interrupted: {cmd.shown()} was stopped")
        except sh.TimeoutException:
            return Result(cmd, 124, "", f"timed out after {timeout:g}s", time.monotonic() - started)
        except sh.SignalException as e:  # killed by a signal: report like a shell would
            if STOP.is_set():
                raise KeyboardInterrupt(f"interrupted: {cmd.shown()} was stopped") from None
            return Result(cmd, 128 + abs(e.exit_code), "", f"killed by signal {abs(e.exit_code)}",
                          time.monotonic() - started)
        finally:
            if progress is not None:
                progress.__exit__(None, None, None)
            if cmd.stdin is None:
                stdin.close()
        return Result(cmd, code, out, err, time.monotonic() - started)

    @staticmethod
    def failure(result: Result, fix: str = "") -> CommandFailed:
        cmd = result.command
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        tail = " ".join(detail[-3:]) if detail else "no output"
        what = cmd.purpose or f"`{cmd.argv[0]}`"
        code = "timed out" if result.returncode == 124 else f"exit {result.returncode}"
        return CommandFailed(redact(f"{what} failed ({code}): {tail}"), fix=fix,
                             detail=redact(f"the command: `{cmd.shown()}`"), returncode=result.returncode,
                             stdout=redact(result.stdout), stderr=redact(result.stderr))

    def spawn(self, cmd: Command, *, ready: str, ready_timeout: float = 30.0) -> Background:
        """Start a long-lived command (e.g. `fly proxy`) and wait for a stdout line matching `ready`.
        A dry run starts only commands that read (a tunnel); a changing one stops it (`refuse_in_dry_run`)."""
        self.refuse_in_dry_run(cmd)
        if self.echo:
            self.ui.command(cmd.shown())
        return Background(self._resolve(cmd), cmd, self._env(cmd), re.compile(ready), ready_timeout)

    def piped(self, cmd: Command, *, feed: bool = False, read: bool = False, nice: int = 0) -> Any:
        """Start a command whose stdin (`feed`) and/or stdout (`read`) stream bytes to and from the caller while it
        runs (piped.Piped: pg_dump's archive read as it is written), at a lower priority when `nice`; always
        `finish()` it."""
        from bezgelor_tasks.piped import Piped

        self.refuse_in_dry_run(cmd)
        if STOP.is_set():
            raise KeyboardInterrupt("interrupted: not starting " + cmd.shown())
        if self.echo:
            self.ui.command(cmd.shown())
        return Piped(self, self._resolve(cmd), cmd, self._env(cmd), feed=feed, read=read, nice=nice)

    def converse(self, cmd: Command) -> Conversation:
        """Start a command that answers request lines on stdin with answer lines on stdout (it only reads,
        so it runs in dry-run too). Quiet: the questions are not commands a person would type."""
        self.refuse_in_dry_run(cmd)
        return Conversation(self._resolve(cmd), cmd, self._env(cmd))


def register_running(proc: Any) -> None:
    """A child that Ctrl-C (`interrupt_all`) must stop: anything with terminate(), kill() and is_alive()."""
    with _RUNNING_LOCK:
        _RUNNING[id(proc)] = proc


def unregister_running(proc: Any) -> None:
    with _RUNNING_LOCK:
        _RUNNING.pop(id(proc), None)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the process that started it dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


_PR_SET_PDEATHSIG = 1
die_with_parent = _die_with_parent   # for children started outside sh (piped.py)


def _child_options(cmd: Command) -> dict[str, Any]:
    """sh options every child gets: its inherited fds, and (Linux, main thread) death with us.

    The parent-death signal belongs to the forking *thread*: only children forked by the main thread,
    which lives as long as the process, get it."""
    options: dict[str, Any] = {}
    if cmd.pass_fds:
        options["_pass_fds"] = set(cmd.pass_fds)
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        options["_preexec_fn"] = _die_with_parent
    return options


def _end(proc: Any, grace: float = 2.0) -> None:
    """Terminate a child (an sh RunningCommand) we stop waiting for, then kill it if it lingers after `grace`:
    the one way this module stops a process (Ctrl-C, a background command's stop, an abandoned wait)."""
    try:
        proc.terminate()
        deadline = time.monotonic() + grace
        while proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.is_alive():
            proc.kill()
    except (ProcessLookupError, OSError):
        pass


end_process = _end


class Background:
    """A running command; `match` holds the ready line's match. Always `stop()` it (or use `with`)."""

    def __init__(self, program: str, cmd: Command, env: dict[str, str], ready: re.Pattern[str],
                 ready_timeout: float) -> None:
        self.cmd = cmd
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._done = threading.Event()

        def on_out(line: str) -> None:
            self.output.append(line)
            self.lines.put(line)

        def on_done(*_: object) -> None:
            self._done.set()
            self.lines.put("")  # wake a reader waiting for the ready line

        with open(os.devnull, "rb") as nothing:  # never the user's terminal
            self.proc: Any = self._start(program, cmd, env, nothing, on_out, on_done)
        deadline = time.monotonic() + ready_timeout
        self.match: re.Match[str] | None = None
        while self.match is None:
            left = deadline - time.monotonic()
            if left <= 0 or (self._done.is_set() and self.lines.empty()):
                tail = redact(" ".join(s.strip() for s in self.output[-3:])) or "no output"
                self.stop()
                raise CommandFailed(f"`{cmd.shown()}` did not become ready within {ready_timeout:g}s: {tail}")
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            self.match = ready.search(line)

    @staticmethod
    def _start(program: str, cmd: Command, env: dict[str, str], stdin: Any, on_out: Callable[[str], None],
               on_done: Callable[..., None]) -> Any:
        return sh.Command(program)(
            *cmd.argv[1:], _in=stdin, _env=env, _cwd=str(cmd.cwd) if cmd.cwd else None, _bg=True, _bg_exc=False,
            _out=on_out, _err=on_out, _tty_out=False, _ok_code=list(range(256)), _new_session=True,
            _done=on_done, **_child_options(cmd))

    @property
    def alive(self) -> bool:
        return not self._done.is_set()

    def stop(self, grace: float = 5.0) -> None:
        if not self._done.is_set():
            _end(self.proc, grace)
            self._done.wait(grace)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Conversation:
    """A long-lived command spoken to line by line (the Elixir judge): one request line in, one answer
    line out. Started by `Executor.converse`; `close()` it (or use `with`), which ends it by closing stdin."""

    def __init__(self, program: str, cmd: Command, env: dict[str, str]) -> None:
        import subprocess

        self.cmd = cmd
        self.proc = subprocess.Popen(
            [program, *cmd.argv[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=str(cmd.cwd) if cmd.cwd else None, text=True, encoding="utf-8", errors="replace",
            bufsize=1)
        self.stderr: list[str] = []
        self._answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_answers, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr or ()), daemon=True).start()
        self.asked = 0

    def _read_answers(self) -> None:
        for line in self.proc.stdout or ():
            self._answers.put(line)
        self._answers.put(None)  # the process ended: wake a waiting ask()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def ask(self, line: str, timeout: float | None = None) -> str:
        """Send one request line, return the answer line (without its newline)."""
        timeout = timeout if timeout is not None else self.cmd.timeout or 120
        if not self.alive:
            raise CommandFailed(self._died())
        assert self.proc.stdin is not None
        self.asked += 1
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise CommandFailed(self._died()) from e
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise CommandFailed(f"`{self.cmd.shown()}` ({self.cmd.purpose}) gave no answer within "
                                f"{timeout:g}s") from None
        if answer is None:
            raise CommandFailed(self._died())
        return answer.rstrip("\n")

    def _died(self) -> str:
        self.proc.wait(timeout=5)
        tail = redact(" ".join(s.strip() for s in self.stderr[-5:])) or "no output"
        return f"`{self.cmd.shown()}` ({self.cmd.purpose}) ended (exit {self.proc.returncode}): {tail}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, Exception):
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> Conversation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
