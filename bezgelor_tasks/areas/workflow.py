""".github/workflows/bezgelor-fly.yml: verify on every push, deploy on version tags.

The Bezgelor repository does not contain bezgelor-tasks, so the workflow checks it out beside the game (from
the repository variable BEZGELOR_TASKS_REPO) at the tag of the version that wrote the workflow, installs it,
checks that the installed version is exactly that one, and runs what a user runs in the game checkout:
`nox -s verify` and `inv deploy.full` (through the noxfile.py and tasks.py of the entrypoints area). Elixir/OTP
come from the settings, like the Dockerfile's, and flyctl is pinned to the version of the grammar verify knows.
Rendered from templates/checkout/workflow.yml; the file is ours whole (changed by init, diffed by verify).
"""

from __future__ import annotations

from typing import Any

from bezgelor_tasks import __version__
from bezgelor_tasks.areas.docs import shell_line
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.files import FileChange, generated_change
from bezgelor_tasks.fly.grammar import FLYCTL_VERSION
from bezgelor_tasks.fly.operator_commands import deploy_token
from bezgelor_tasks.render import render
from bezgelor_tasks.settings import ENV_OF

WORKFLOW = ".github/workflows/bezgelor-fly.yml"
TOOLS_PATH = ".bezgelor-tasks"
PYTHON_VERSION = "3.11"
# The settings CI needs beside the checkout's .env (which a CI runner has only if it is committed).
CI_SETTINGS = ("app", "db_app", "org", "region", "pg_flavor")


def workflow_values(co: Checkout) -> dict[str, Any]:
    s = co.settings
    return {"s": s, "version": __version__, "flyctl_version": FLYCTL_VERSION, "tools_path": TOOLS_PATH,
            "python_version": PYTHON_VERSION, "deploy_token": shell_line(deploy_token(s)),
            "settings_env": [(ENV_OF[name], getattr(s, name)) for name in CI_SETTINGS],
            "jobs": [{"name": "verify", "deploy": False, "timeout": 30},
                     {"name": "deploy", "deploy": True, "timeout": 60}]}


def render_workflow(co: Checkout) -> str:
    return render("checkout/workflow.yml", **workflow_values(co))


def workflow_change(co: Checkout) -> FileChange:
    return generated_change(co.path(WORKFLOW), WORKFLOW, render_workflow(co),
                            f"CI: verify on every push, inv deploy.full on v* tags (bezgelor-tasks {__version__})")
