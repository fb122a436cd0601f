"""Output for people (coloured lines, progress for long waits) and for machines (`--json`).

In JSON mode the human lines go to stderr so stdout carries exactly one JSON document.
Every line passes through `redact`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from colorama import Fore, Style

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.redact import redact

_SEVERITY_COLOR = {"error": Fore.RED, "warning": Fore.YELLOW, "info": Fore.CYAN, "ok": Fore.GREEN}


class UI:
    def __init__(self, *, json_mode: bool = False, color: bool | None = None, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stream = stream or (sys.stderr if json_mode else sys.stdout)
        if color is None:
            color = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.color = color
        self._lock = threading.Lock()

    def _paint(self, text: str, color: str) -> str:
        return f"{color}{text}{Style.RESET_ALL}" if self.color else text

    def line(self, text: str = "") -> None:
        with self._lock:
            try:
                print(redact(text), file=self.stream, flush=True)
            except BrokenPipeError:  # `inv ... | head`: the reader left; stop quietly
                pass

    def say(self, severity: str, text: str) -> None:
        tag = self._paint(severity.upper() if severity != "ok" else "ok", _SEVERITY_COLOR.get(severity, ""))
        self.line(f"{tag} {text}")

    def info(self, text: str) -> None:
        self.say("info", text)

    def ok(self, text: str) -> None:
        self.say("ok", text)

    def warn(self, text: str) -> None:
        self.say("warning", text)

    def error(self, text: str) -> None:
        self.say("error", text)

    def heading(self, text: str) -> None:
        self.line(self._paint(text, Style.BRIGHT))

    def command(self, shown: str, *, dry_run: bool = False) -> None:
        prefix = "would run" if dry_run else "$"
        self.line(self._paint(f"{prefix} {shown}", Style.DIM))

    def change(self, shown: str) -> None:
        """An in-process change a dry run refused: `would write fly.toml`, `would delete ...`."""
        self.line(self._paint(f"would {shown}", Style.DIM))

    def diff(self, text: str) -> None:
        for raw in text.splitlines():
            color = Fore.GREEN if raw.startswith("+") and not raw.startswith("+++") else \
                Fore.RED if raw.startswith("-") and not raw.startswith("---") else ""
            self.line(self._paint(raw, color) if color else raw)

    def emit_json(self, data: Any) -> None:
        """The machine-readable result, on stdout, redacted."""
        print(redact(json.dumps(data, indent=2, sort_keys=True, default=str)), flush=True)

    @contextmanager
    def progress(self, what: str) -> Iterator[Progress]:
        """A ticking status line for long waits (plain lines when not on a terminal)."""
        p = Progress(self, what)
        try:
            yield p
        finally:
            p.finish()


class Progress:
    def __init__(self, ui: UI, what: str) -> None:
        self.ui, self.what, self.started = ui, what, time.monotonic()
        self.last_note = ""
        self.tty = ui.stream.isatty() and not ui.json_mode
        self.ui.line(f"… {what}")

    def note(self, text: str) -> None:
        if text == self.last_note:
            return
        self.last_note = text
        elapsed = time.monotonic() - self.started
        msg = f"  [{elapsed:5.1f}s] {what_short(self.what)}: {text}"
        if self.tty:
            import shutil

            width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)  # one line, rewritten in place
            with self.ui._lock:
                self.ui.stream.write("\r\033[K" + redact(msg)[:width])
                self.ui.stream.flush()
        else:
            self.ui.line(msg)

    def finish(self) -> None:
        if self.tty and self.last_note:
            with self.ui._lock:
                self.ui.stream.write("\n")
                self.ui.stream.flush()


def confirm(question: str, *, no_terminal: UserError, expect: str | None = None) -> bool:
    """The one question before a change: y/N on the terminal, or typing `expect` (a name) exactly.

    Without a terminal it raises `no_terminal` (which names the flag that answers it, e.g. --yes); an
    answer other than y/yes (or `expect`), or end of input, is False: the caller stops or keeps the file."""
    if sys.stdin is None or not sys.stdin.isatty():
        raise no_terminal
    try:
        answer = input(f"{question} [y/N] " if expect is None else f"{question} ").strip()
    except EOFError:
        return False
    return answer == expect if expect is not None else answer.lower() in ("y", "yes")


def what_short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
