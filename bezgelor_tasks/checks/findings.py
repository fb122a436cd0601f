"""A finding of `verify`: what is wrong, where, how bad, and how to fix it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    severity: str          # error | warning | info
    file: str              # relative to the checkout
    line: int | None       # 1-based; None when the problem is the file's absence or has no one line
    message: str           # what is wrong
    fix: str               # how to fix it
    check: str = ""        # which check found it (the module name)
    id: str = ""           # stable id (`check.kind`): what a user names to silence it (IGNORE_FILE)
    detail: str = ""       # more than one line of evidence (a diff of a file the tool owns), shown indented

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        return f"{self.severity} {self.where()} {self.message} — {self.fix}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def error(file: str, line: int | None, message: str, fix: str, id: str = "", detail: str = "") -> Finding:
    return Finding("error", file, line, message, fix, id=id, detail=detail)


def warning(file: str, line: int | None, message: str, fix: str, id: str = "", detail: str = "") -> Finding:
    return Finding("warning", file, line, message, fix, id=id, detail=detail)


def info(file: str, line: int | None, message: str, fix: str, id: str = "") -> Finding:
    return Finding("info", file, line, message, fix, id=id)


_CODE_OR_NAME = re.compile(r"`[^`]*`|\"[^\"]*\"|'[^']*'|\S*[/.:]\S*|\d+")
_WORD = re.compile(r"[a-z]+")
_FILLER = {"the", "a", "an", "is", "it", "its", "so", "of", "to", "and", "or", "in", "on", "for", "with", "no",
           "not", "has", "have", "there", "that", "this", "which", "be", "are", "as", "by", "at", "from"}


def default_id(check: str, message: str) -> str:
    """A stable id for a finding that names none: its check and the first words of what it says (code,
    names, paths and numbers left out, so the id is the same on every checkout)."""
    words = [w for w in _WORD.findall(_CODE_OR_NAME.sub(" ", message.lower())) if w not in _FILLER]
    return f"{check}." + "-".join(words[:3] or ["finding"])


def line_of(text: str, pattern: str, flags: int = 0, *, start: int = 0) -> int | None:
    """1-based line of the first match of `pattern` in `text` (at or after offset `start`), or None."""
    m = re.compile(pattern, flags).search(text, start)
    return text.count("\n", 0, m.start()) + 1 if m else None


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
