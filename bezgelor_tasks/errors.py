"""Errors a user can act on: one paragraph that says what went wrong and names the fix."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a broken world. Tasks print `str(e)` and exit non-zero; no traceback."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str = "") -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.paragraph())

    def paragraph(self) -> str:
        text = self.message.strip()
        if self.fix:
            text = f"{text} Fix: {self.fix.strip()}"
        return " ".join(text.split())


class CommandFailed(UserError):
    """An external command exited non-zero (or timed out). The message is already redacted."""

    def __init__(self, message: str, *, fix: str = "", returncode: int | None = None,
                 stdout: str = "", stderr: str = "") -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(message, fix=fix)
