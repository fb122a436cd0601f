"""Errors a user can act on: a headline, the detail, and the fix on a line of its own.

On a terminal a `UserError` reads

    error: <headline of at most ~120 characters>
      <detail: the rest of the message; a list stays a list, one item per line>
    Fix: <what to do>

`paragraph()` is the same text on one line, for journals and JSON.
"""

from __future__ import annotations

HEADLINE_MAX = 120


def split_headline(text: str, limit: int = HEADLINE_MAX) -> tuple[str, str]:
    """(headline, rest): the first sentence when it fits in `limit` characters; else that sentence cut at its
    last clause break that fits (`; `, `: `, `, `, or before ` (` / ` — `), the rest going below. A sentence
    with no such break stays whole (a phrase cut in two reads worse than a long line)."""
    text = text.strip()
    first, newline, below = text.partition("\n")
    head, rest = first, ""
    if len(first) > limit:
        ends = [i + 1 for i in range(len(first) - 1) if first[i] in ".?!" and first[i + 1] == " "
                and not first[max(0, i - 3):i + 1].endswith(("e.g.", "i.e.", "etc."))]
        sentence_end = ends[0] if ends else len(first)
        if sentence_end <= limit:
            cut = sentence_end
        else:
            breaks = [i + 1 for i in range(min(sentence_end, limit + 1) - 1)
                      if first[i] in ";:," and first[i + 1] == " "]
            breaks += [i for i in range(1, min(sentence_end, limit + 1)) if first.startswith((" (", " — "), i)]
            cut = max(breaks) if breaks else sentence_end
        head, rest = first[:cut].rstrip(), first[cut:].strip()
    if newline:
        rest = f"{rest}\n{below}" if rest else below
    return head, rest


class UserError(Exception):
    """Bad input or a broken world. Tasks print it (`lines()`) and exit non-zero; no traceback.

    `message` may be long: its first sentence becomes the headline (see `split_headline`), the rest the
    detail. `detail` adds lines below it (a list of problems, one per line)."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str = "", detail: str = "") -> None:
        self.message = message
        self.fix = fix
        self.detail = detail
        super().__init__(self.paragraph())

    def headline(self) -> str:
        return split_headline(self.message)[0]

    def lines(self) -> list[str]:
        """headline, the detail lines (indented), then `Fix: ...` on its own line."""
        head, rest = split_headline(self.message)
        body = [x for x in (rest, self.detail.strip("\n")) if x.strip()]
        out = [head]
        for part in body:
            out += ["  " + line.strip() if not line.startswith("  ") else line for line in part.splitlines()
                    if line.strip()]
        if self.fix.strip():
            out.append(f"Fix: {' '.join(self.fix.split())}")
        return out

    def paragraph(self) -> str:
        """The whole error on one line (journals, JSON, a step's report)."""
        text = self.message.strip()
        if self.detail.strip():
            text = f"{text} {self.detail.strip()}"
        if self.fix:
            text = f"{text} Fix: {self.fix.strip()}"
        return " ".join(text.split())


class CommandFailed(UserError):
    """An external command exited non-zero (or timed out). The message is already redacted."""

    def __init__(self, message: str, *, fix: str = "", returncode: int | None = None,
                 stdout: str = "", stderr: str = "", detail: str = "") -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(message, fix=fix, detail=detail)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) with what it means for the world: `said` is printed after "interrupted: "
    (e.g. "before the write phase: nothing was changed")."""

    def __init__(self, said: str) -> None:
        super().__init__(said)
        self.said = said
