"""Child processes and signals, for the one executor (run.py): the STOP event every wait honours, Ctrl-C
and SIGTERM raised as KeyboardInterrupt so every `finally` runs, a phase that defers them, the registry of
children being waited for (all stopped at once on Ctrl-C), children that die with us, long-lived commands
(`Background`, e.g. `fly proxy`) and line conversations (`Conversation`, the Elixir judge)."""

from __future__ import annotations

import functools
import os
import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import CommandFailed
from bezgelor_tasks.redact import redact

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
        end_process(proc, max(0.0, deadline - time.monotonic()))
    return len(procs)


def register_running(proc: Any) -> None:
    """A child that Ctrl-C (`interrupt_all`) must stop: anything with terminate(), kill() and is_alive()."""
    with _RUNNING_LOCK:
        _RUNNING[id(proc)] = proc


def unregister_running(proc: Any) -> None:
    with _RUNNING_LOCK:
        _RUNNING.pop(id(proc), None)


@functools.cache
def die_with_parent() -> Callable[[], None]:
    """What the child runs before exec: SIGTERM when the process that started it dies (even by SIGKILL). libc's
    prctl is looked up here, in the parent, so the child only calls it."""
    import ctypes  # only for children: a run that starts none (the judge talks through a pipe) never loads it

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None

    def set_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return set_signal


_PR_SET_PDEATHSIG = 1


def child_preexec() -> Callable[[], None] | None:
    """What a child runs before exec: (Linux, main thread) death with us, else nothing.

    The parent-death signal belongs to the forking *thread*: only children forked by the main thread,
    which lives as long as the process, get it."""
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        return die_with_parent()
    return None


def child_options(cmd: Command) -> dict[str, Any]:
    """sh options every child gets: its inherited fds, and `child_preexec`."""
    options: dict[str, Any] = {}
    if cmd.pass_fds:
        options["_pass_fds"] = set(cmd.pass_fds)
    if (preexec := child_preexec()) is not None:
        options["_preexec_fn"] = preexec
    return options


def stopping() -> bool:
    """Ctrl-C (or SIGTERM) was seen and this thread is not cleaning up after it: start nothing more."""
    return STOP.is_set() and not getattr(_CLEANUP, "on", False)


def end_process(proc: Any, grace: float = 2.0) -> None:
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


def wait_for(proc: Any) -> None:
    """Wait for a started child (an sh RunningCommand) that Ctrl-C may stop; whatever ends the wait early
    (Ctrl-C, SIGTERM raised as KeyboardInterrupt, anything) ends the child too: no orphan."""
    register_running(proc)
    try:
        proc.wait()
    except BaseException:
        end_process(proc)
        raise
    finally:
        unregister_running(proc)


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
        import sh

        return sh.Command(program)(
            *cmd.argv[1:], _in=stdin, _env=env, _cwd=str(cmd.cwd) if cmd.cwd else None, _bg=True, _bg_exc=False,
            _out=on_out, _err=on_out, _tty_out=False, _ok_code=list(range(256)), _new_session=True,
            _done=on_done, **child_options(cmd))

    @property
    def alive(self) -> bool:
        return not self._done.is_set()

    def stop(self, grace: float = 5.0) -> None:
        if not self._done.is_set():
            end_process(self.proc, grace)
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
        self.send(line)
        return self.receive(timeout)

    def send(self, line: str) -> None:
        """Send one request line without waiting: answers come back in the order asked (`receive`)."""
        if not self.alive:
            raise CommandFailed(self._died())
        assert self.proc.stdin is not None
        self.asked += 1
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise CommandFailed(self._died()) from e

    def receive(self, timeout: float | None = None) -> str:
        """The next answer line (without its newline)."""
        timeout = timeout if timeout is not None else self.cmd.timeout or 120
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise CommandFailed(f"`{self.cmd.shown()}` ({self.cmd.purpose}) gave no answer within "
                                f"{timeout:g}s") from None
        if answer is None:
            self._answers.put(None)   # the next receive learns it too
            raise CommandFailed(self._died())
        return answer.rstrip("\n")

    def _died(self) -> str:
        self.proc.wait(timeout=5)
        tail = redact(" ".join(s.strip() for s in self.stderr[-5:])) or "no output"
        return f"`{self.cmd.shown()}` ({self.cmd.purpose}) ended (exit {self.proc.returncode}): {tail}"

    def close(self, wait: bool = True) -> None:
        """End it by closing its stdin (it answers what it was asked, then exits); `wait=False` when this process
        is exiting anyway and need not watch it go."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                if wait:
                    self.proc.wait(timeout=5)
            except (OSError, Exception):
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> Conversation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
