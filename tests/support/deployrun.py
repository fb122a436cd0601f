"""Helpers for the deploy tests (not a plugin): run `inv` as a user would, and a deployable checkout.

`deployable_checkout` is the fixture umbrella after `inv init` (with the loopback servers' ports),
committed and tagged v0.1.0, so `inv verify` is clean and `git describe` gives a clean version.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_AUTHOR_NAME": "Fixture", "GIT_AUTHOR_EMAIL": "fixture@example.com",
           "GIT_COMMITTER_NAME": "Fixture", "GIT_COMMITTER_EMAIL": "fixture@example.com"}

# What generated secrets look like: SECRET_KEY_BASE is 86 url-safe base64 characters, CLOAK_KEY 44 base64.
SECRET_SHAPES = (re.compile(r"[A-Za-z0-9_-]{80,}"), re.compile(r"[A-Za-z0-9+/]{43}="))


@dataclass
class Ran:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def inv(*args: str, env: dict[str, str] | None = None, timeout: float = 180, stdin: str | None = "") -> Ran:
    """`inv -r <this repo> ARGS` in a subprocess with the test's environment (the fake first on PATH)."""
    argv = [sys.executable, "-m", "invoke", "-r", str(REPO), *args]
    proc = subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, input=stdin)
    return Ran(argv, proc.returncode, proc.stdout, proc.stderr)


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, env={**os.environ, **GIT_ENV}, capture_output=True,
                          text=True, check=True)
    return proc.stdout.strip()


def commit_all(root: Path, message: str, tag: str | None = None) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    if tag:
        git(root, "tag", "-f", tag)


@pytest.fixture
def deployable_checkout(bezgelor_checkout: Path, game_servers: object) -> Path:
    # After game_servers: its ports are in the environment, so init writes the ports the servers use.
    init = inv("init", "--root", str(bezgelor_checkout), timeout=600)
    assert init.returncode == 0, init.output
    commit_all(bezgelor_checkout, "inv init", tag="v0.1.0")
    return bezgelor_checkout
