"""The one executor: argv in, result out.

Commands are data (`Command`); builders elsewhere are pure functions that return them. Dry-run,
echo, redaction, timeouts and retries live here and only here. Secret values travel on stdin,
which is never echoed, logged or put in an exception.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from typing import Any, TypeVar

from bezgelor_tasks.command import Command, Result
from bezgelor_tasks.errors import CommandFailed, UserError
from bezgelor_tasks.processes import (
    STOP,
    Background,
    Conversation,
    child_options,
    register_running,
    stopping,
    unregister_running,
    wait_for,
)
from bezgelor_tasks.redact import redact, register
from bezgelor_tasks.ui import UI

Observer = Callable[[Command, "Result"], None]
T = TypeVar("T")

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
        register_running(proc)
        try:
            code = proc.wait()
        except BaseException:
            proc.terminate()
            raise
        finally:
            unregister_running(proc)
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
        import sh  # here, not at import: a run that only asks the judge (verify) never loads it

        program = self._resolve(cmd)
        timeout = cmd.timeout if cmd.timeout is not None else self.default_timeout
        started = time.monotonic()
        if stopping():
            raise KeyboardInterrupt("interrupted: not starting " + cmd.shown())
        streamed: list[str] = []
        extra: dict[str, Any] = {}
        progress = None
        if cmd.stream:
            progress = self.ui.progress(cmd.purpose or cmd.shown())
            on_line = self._line_reader(progress.__enter__(), streamed)
            extra = {"_out": on_line, "_err": on_line}
        stdin: Any = cmd.stdin if cmd.stdin is not None else open(os.devnull, "rb")  # noqa: SIM115 (closed below)
        try:
            proc = sh.Command(program)(
                *cmd.argv[1:], _in=stdin, _env=self._env(cmd), _cwd=str(cmd.cwd) if cmd.cwd else None,
                _timeout=timeout, _tty_out=False, _ok_code=list(range(256)), _decode_errors="replace",
                _bg=True, _bg_exc=False, **child_options(cmd), **extra)
            wait_for(proc)
            if cmd.stream:
                out, err = "".join(streamed), ""
            else:
                out = proc.stdout.decode("utf-8", "replace")
                err = proc.stderr.decode("utf-8", "replace")
            code = proc.exit_code
            if stopping() and code != 0:
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

    def _line_reader(self, shown: Any, streamed: list[str]) -> Callable[[str], None]:
        """What a streamed command's output lines go through: kept, given to the watchers, shown redacted."""

        def on_line(line: str) -> None:
            streamed.append(line)
            text = line.rstrip("\n")
            for watch in self.line_watchers:
                watch(text)
            if text.strip():
                shown.note(redact(text.strip()))

        return on_line

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
        if stopping():
            raise KeyboardInterrupt("interrupted: not starting " + cmd.shown())
        if self.echo:
            self.ui.command(cmd.shown())
        return Piped(self, self._resolve(cmd), cmd, self._env(cmd), feed=feed, read=read, nice=nice)

    def converse(self, cmd: Command) -> Conversation:
        """Start a command that answers request lines on stdin with answer lines on stdout (it only reads,
        so it runs in dry-run too). Quiet: the questions are not commands a person would type."""
        self.refuse_in_dry_run(cmd)
        return Conversation(self._resolve(cmd), cmd, self._env(cmd))
