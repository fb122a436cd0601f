"""How the fake fails: like flyctl, `Error: <msg>` on stderr and exit 1."""

from __future__ import annotations


class FlyError(Exception):
    """A flyctl error: printed as `Error: <message>` (+ suggestion lines) on stderr, exit `code`."""

    def __init__(self, message: str, code: int = 1, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.suggestion = suggestion


class UsageError(FlyError):
    """A command line flyctl's parser rejects: usage on stdout, the error on stderr."""


NON_INTERACTIVE = "prompt: non interactive"
YES_REQUIRED = "yes flag must be specified when not running interactively"
NOT_LOGGED_IN = "no access token available. Please login with 'flyctl auth login'"


def app_not_found(name: str) -> FlyError:
    return FlyError(f'failed to get app: Could not find App "{name}"')
