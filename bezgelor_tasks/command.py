"""Commands are data: `Command` (argv, stdin, environment, what it is for, whether it changes anything)
built by pure functions elsewhere, and the `Result` of running one. The one executor (run.py) runs them."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bezgelor_tasks.redact import redact


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
