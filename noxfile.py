"""Nox sessions.

- `nox -s verify`   the check Bezgelor's CI runs on a checkout (BEZGELOR_ROOT or `-- --root PATH`):
                    `inv verify`, hadolint on the Dockerfile, shellcheck on the overlay scripts,
                    and the workflow check.
- `nox -s tests`    this project's test suite (real Elixir and PostgreSQL where installed).
- `nox -s lint`     ruff + mypy on this project.

Sessions reuse one virtualenv per session and install this project into it; posargs pass through.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # this tree's bezgelor_tasks, not another installed copy


def _root(session: nox.Session) -> tuple[str, list[str]]:
    args = list(session.posargs)
    root = os.environ.get("BEZGELOR_ROOT", ".")
    if "--root" in args:
        i = args.index("--root")
        root = args[i + 1]
        del args[i : i + 2]
    return str(Path(root).resolve()), args


@nox.session
def verify(session: nox.Session) -> None:
    """Offline deployment checks on a Bezgelor checkout: verify + hadolint + shellcheck + actionlint."""
    from bezgelor_tasks.nox_sessions import run_verify  # one definition, shared with checkouts' noxfiles

    root, rest = _root(session)
    run_verify(session, Path(root), rest)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (pytest in parallel workers; pass pytest options after --)."""
    session.install("-e", f"{HERE}[test]")
    # One worker more than cores: the stories wait on subprocesses, servers and polls much of the time
    # (measured on 2 cores: 2 workers 8m42s, 3 workers 7m00s for the whole suite).
    workers = str((os.cpu_count() or 1) + 1)
    session.run("pytest", *(session.posargs or ["-q", "-n", workers]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy on bezgelor-tasks itself."""
    session.install("-e", f"{HERE}[dev]")
    session.run("ruff", "check", "bezgelor_tasks", "tests", "tasks.py", "noxfile.py", "benchmarks")
    session.run("mypy", "bezgelor_tasks")
