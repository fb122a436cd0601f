"""Nox sessions.

- `nox -s verify`        the check Bezgelor's CI runs on a checkout (BEZGELOR_ROOT or `-- --root PATH`):
                         `inv verify`, hadolint on the Dockerfile, shellcheck on the overlay scripts,
                         and the workflow check.
- `nox -s tests`         this project's test suite on the locked dependencies (uv.lock, frozen).
- `nox -s tests_latest`  the same suite on the newest release of every dependency, our upper bounds
                         lifted: a new release that breaks us shows up here before it reaches users.
- `nox -s tests_lowest`  the same suite on the lowest release each of our ranges allows.
- `nox -s lint`          ruff + mypy on this project (locked versions).

Sessions run in virtualenvs made by uv (`.ci/bootstrap` installs it next to nox); posargs go to pytest.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "uv"

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


def _sync_locked(session: nox.Session, *extras: str) -> None:
    """The session's venv gets exactly uv.lock's versions (the project itself editable)."""
    session.run_install("uv", "sync", "--frozen", "--no-default-groups", *(f"--extra={e}" for e in extras),
                        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}, external=True)


def _requirement_names(*extras: str) -> list[str]:
    """Our dependencies and the extras' by name only, without their version ranges."""
    project = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += [s for s in project["optional-dependencies"][extra] if not s.startswith(project["name"])]
    names = []
    for spec in specs:
        name = spec.split(";")[0]
        for stop in "<>=!~[ ":
            name = name.split(stop)[0]
        names.append(name.strip())
    return names


def _pytest(session: nox.Session) -> None:
    # Two workers per core: the stories wait on subprocesses, servers and polls much of the time (measured on
    # 2 cores, whole suite: 3 workers 6m51s, 4 workers 5m15s, 6 workers 5m23s).
    workers = str(2 * (os.cpu_count() or 1))
    # Every story starts `inv` in fresh interpreters, hundreds of times. With PYTHONDONTWRITEBYTECODE (set on
    # many CI machines) each would compile this package and its dependencies again; an installed tool has its
    # bytecode from the install (pip compiles), so the suite compiles once here, as .ci/bootstrap does.
    session.run("python", "-c", "import compileall, sys, sysconfig; [compileall.compile_dir(d, quiet=2, workers=0) "
                "for d in (sysconfig.get_paths()['purelib'], sys.argv[1])]",
                str(HERE / "bezgelor_tasks"), silent=True)
    session.run("pytest", *(session.posargs or ["-q", "-n", workers]))


@nox.session
def verify(session: nox.Session) -> None:
    """Offline deployment checks on a Bezgelor checkout: verify + hadolint + shellcheck + actionlint."""
    from bezgelor_tasks.nox_sessions import run_verify  # one definition, shared with checkouts' noxfiles

    root, rest = _root(session)
    run_verify(session, Path(root), rest)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on the locked dependencies (pytest in parallel workers; pytest options after --)."""
    _sync_locked(session, "test")
    _pytest(session)


@nox.session
def tests_latest(session: nox.Session) -> None:
    """The test suite on the newest release of every dependency, ignoring our upper bounds."""
    session.install("--no-deps", "-e", str(HERE))
    session.install("--upgrade", *_requirement_names("test"))
    session.run("uv", "pip", "list", external=True)  # the versions this run tested, in the log
    _pytest(session)


@nox.session
def tests_lowest(session: nox.Session) -> None:
    """The test suite on the lowest release of each direct dependency our ranges allow."""
    session.install("--resolution=lowest-direct", "-e", f"{HERE}[test]")
    _pytest(session)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy on bezgelor-tasks itself."""
    _sync_locked(session, "dev")
    session.run("ruff", "check", "bezgelor_tasks", "tests", "tasks.py", "noxfile.py", "benchmarks")
    session.run("mypy", "bezgelor_tasks")
