"""Top-level tasks on a checkout: init, verify, demo."""

from invoke import task


@task
def init(c, root=None):
    """Apply the deployment plan to a Bezgelor checkout (idempotent)."""


@task
def verify(c, root=None):
    """Check a checkout's deployment config offline; exit 1 on errors."""


@task
def demo(c):
    """Copy the bundled example checkout and run init, verify and a dry-run deploy on it."""
