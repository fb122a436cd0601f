"""After `inv init`, the user's habit works in their own repository: `inv deploy.full`, `inv db.backup`,
`inv verify` and `nox -s verify`, through a tasks.py and a noxfile.py that init writes (and never
writes over one of the user's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bezgelor_tasks.areas.entrypoints import ADD_TO_NOXFILE_PY, ADD_TO_TASKS_PY
from tests.support.inv import run_inv

PROJECT = Path(__file__).resolve().parents[1]


def in_checkout(root: Path, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A command run inside the checkout, with this tree's bezgelor_tasks importable (as if installed)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run(list(argv), cwd=cwd or root, env=env, capture_output=True, text=True, timeout=300)


def invoke(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return in_checkout(root, sys.executable, "-m", "invoke", *args, cwd=cwd)


def init(root: Path) -> subprocess.CompletedProcess[str]:
    proc = run_inv("init", "--root", str(root), cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_after_init_the_tasks_and_nox_verify_work_inside_the_checkout(bezgelor_checkout):
    root = bezgelor_checkout
    out = init(root).stdout
    assert "tasks.py" in out and "noxfile.py" in out

    listed = invoke(root, "--list")
    assert listed.returncode == 0, listed.stderr
    for name in ("deploy.full", "db.backup", "verify", "init"):
        assert name in listed.stdout

    verified = invoke(root, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verify: the checkout is ready to deploy" in verified.stdout + verified.stderr

    # From a folder below, the tasks still work on this checkout (tasks.py says where it is).
    planned = invoke(root, "db.backup", "--dry-run", cwd=root / "apps")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert f"{root}/.bezgelor/backups" in planned.stdout + planned.stderr

    # The generated noxfile registers the shared `verify` session (not run here: it builds a venv).
    sessions = in_checkout(root, sys.executable, "-c",
                           "import runpy, nox.registry; runpy.run_path('noxfile.py'); "
                           "print(sorted(nox.registry.get()))")
    assert sessions.returncode == 0, sessions.stderr
    assert "verify" in sessions.stdout

    again = run_inv("init", "--root", str(root), cwd=root)
    assert again.returncode == 0 and "nothing to change" in again.stdout + again.stderr


def test_a_tasks_py_and_noxfile_of_the_users_are_kept_and_init_says_the_line_to_add(bezgelor_checkout):
    root = bezgelor_checkout
    mine = 'from invoke import task\n\n\n@task\ndef seed(c):\n    """Load my test accounts."""\n'
    (root / "tasks.py").write_text(mine)
    (root / "noxfile.py").write_text("import nox\n")
    out = init(root)
    text = out.stdout + out.stderr
    assert (root / "tasks.py").read_text() == mine and (root / "noxfile.py").read_text() == "import nox\n"
    assert ADD_TO_TASKS_PY in text and ADD_TO_NOXFILE_PY in text
    assert not (root / "tasks.py.orig").exists()

    # The user adds the line: their task and ours are listed together.
    (root / "tasks.py").write_text(mine + "\n\n" + ADD_TO_TASKS_PY.replace("; ", "\n") + "\n")
    listed = invoke(root, "--list")
    assert listed.returncode == 0, listed.stderr
    assert "seed" in listed.stdout and "deploy.full" in listed.stdout and "db.backup" in listed.stdout

    (root / "noxfile.py").write_text("import nox\n" + ADD_TO_NOXFILE_PY.replace("; ", "\n") + "\n")
    sessions = in_checkout(root, sys.executable, "-c",
                           "import runpy, nox.registry; runpy.run_path('noxfile.py'); "
                           "print(sorted(nox.registry.get()))")
    assert "verify" in sessions.stdout, sessions.stderr
    # Now that both hand over to bezgelor_tasks, init has nothing more to say about them.
    quiet = run_inv("init", "--root", str(root), cwd=root)
    assert ADD_TO_TASKS_PY not in quiet.stdout + quiet.stderr
