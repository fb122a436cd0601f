"""A command whose bytes stream to or from the caller while it runs (started by `Executor.piped`).

pg_dump's archive is read from its stdout as it is written, and pg_restore reads that same stream on its stdin,
so a backup is hashed, verified, sealed and uploaded while it is dumped. The executor's rules hold: the command
is echoed (redacted) before it starts, refused under --dry-run when it changes anything, stopped by Ctrl-C
(`interrupt_all`), dies with us when started by the main thread, and its Result reaches the observers.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from bezgelor_tasks import processes
from bezgelor_tasks.command import Command, Result

if TYPE_CHECKING:
    from bezgelor_tasks.run import Executor


class Piped:
    """`stdin` (when fed) and `stdout` (when read) are binary pipes; what is not read is collected. Always
    `finish()` (or `stop()`) it."""

    def __init__(self, executor: Executor, program: str, cmd: Command, env: dict[str, str], *,
                 feed: bool, read: bool, nice: int = 0) -> None:
        self.executor, self.cmd, self.started = executor, cmd, time.monotonic()
        self.proc = subprocess.Popen(  # noqa: S603 - argv from a builder, never a shell
            [program, *cmd.argv[1:]], stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(cmd.cwd) if cmd.cwd else None,
            pass_fds=cmd.pass_fds, preexec_fn=processes.child_preexec())
        if nice:   # it yields the CPU to the rest of the pipeline (a reader that may run behind)
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, nice)
        self.stdin: IO[bytes] | None = self.proc.stdin
        self.stdout: IO[bytes] | None = self.proc.stdout if read else None
        self.result: Result | None = None
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._readers = [threading.Thread(target=self._collect, args=(self.proc.stderr, self._err), daemon=True)]
        if not read:
            self._readers.append(threading.Thread(target=self._collect, args=(self.proc.stdout, self._out),
                                                  daemon=True))
        for t in self._readers:
            t.start()
        processes.register_running(self)
        # Its command's timeout (else the executor's), from its start, as `Executor.run` allows: a dump that
        # stalls mid-stream is stopped then, which ends the pipeline reading it.
        self.limit = cmd.timeout if cmd.timeout is not None else executor.default_timeout
        self.timed_out = False
        self._timer = threading.Timer(self.limit, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.timed_out = True
        self.stop()

    @staticmethod
    def _collect(stream: Any, into: list[bytes]) -> None:
        for chunk in iter(lambda: stream.read1(1 << 16), b""):
            into.append(chunk)

    # what `processes.end_process` and `processes.interrupt_all` need
    def terminate(self) -> None:
        self.proc.terminate()

    def kill(self) -> None:
        self.proc.kill()

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def close_stdin(self) -> None:
        if self.stdin is not None and not self.stdin.closed:
            try:
                self.stdin.close()
            except OSError:   # it left early (pg_restore -l reads only the table of contents)
                pass

    def stop(self) -> None:
        """Stop it now (an abandoned pipeline); `finish()` still collects its result."""
        self.close_stdin()
        if self.is_alive():
            processes.end_process(self, grace=0.5)

    def finish(self, timeout: float | None = None) -> Result:
        """Wait for it to end (interruptibly; `timeout`: at most that long, a stopped pipeline's last wait); its
        Result, as `Executor.run` would give it (once: asked again, the same Result)."""
        if self.result is not None:
            return self.result
        self.close_stdin()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while self.is_alive():
                if deadline is not None and time.monotonic() > deadline:
                    self.stop()
                    break
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        finally:
            processes.unregister_running(self)
            self._timer.cancel()
        for t in self._readers:
            t.join(timeout=5)
        if self.timed_out:
            return self._result(124, f"timed out after {self.limit:g}s")
        code = self.proc.returncode
        if code is None:   # still ending after the last wait
            return self._result(124, f"did not end within {timeout:g}s of being stopped")
        return self._result(128 - code if code < 0 else code, f"killed by signal {-code}" if code < 0 else "")

    def _result(self, code: int, note: str) -> Result:
        err = b"".join(self._err).decode("utf-8", "replace") + (f"\n{note}" if note else "")
        result = Result(self.cmd, code, b"".join(self._out).decode("utf-8", "replace"), err.strip("\n"),
                        time.monotonic() - self.started)
        self.executor.observe(self.cmd, result)
        self.result = result
        return result
