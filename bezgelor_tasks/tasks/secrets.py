"""`inv secrets.*` tasks (thin: flags → library calls → output)."""

from invoke import task  # noqa: F401
