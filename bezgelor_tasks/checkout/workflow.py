""".github/workflows/bezgelor-fly.yml: verify on every push, deploy on version tags.

The Bezgelor repository does not contain bezgelor-tasks, so the workflow checks it out beside the
game (from the repository variable BEZGELOR_TASKS_REPO, e.g. `you/bezgelor-tasks`), installs it, and
runs what a user runs in the game checkout: `nox -s verify` and `inv deploy.full` (through the
noxfile.py and tasks.py that init writes there, see entrypoints.py). Elixir/OTP versions
come from Settings, like the Dockerfile's, so CI verifies with the toolchain the image builds with.
"""

from __future__ import annotations

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.files import FileChange, generated_change

WORKFLOW = ".github/workflows/bezgelor-fly.yml"
TOOLS_PATH = ".bezgelor-tasks"
PYTHON_VERSION = "3.11"


def render_workflow(co: Checkout) -> str:
    s = co.settings
    return f"""\
# Bezgelor on Fly.io (written by bezgelor-tasks `inv init`).
# - every push and pull request: offline deployment checks (`nox -s verify`: inv verify, hadolint,
#   shellcheck).
# - tags v*: `inv deploy.full --yes` (build, migrate, deploy, health gate, rollback on failure).
# Needs: repository variable BEZGELOR_TASKS_REPO (owner/name of your bezgelor-tasks copy; optional
# BEZGELOR_TASKS_REF) and repository secret FLY_API_TOKEN (`fly tokens create deploy -a {s.app}`).
name: bezgelor-fly

on:
  push:
    branches: ["**"]
    tags: ["v*"]
  pull_request:

permissions:
  contents: read

env:
  FLY_NO_UPDATE_CHECK: "1"
  BEZGELOR_FLY_APP: "{s.app}"
  BEZGELOR_FLY_DB_APP: "{s.db_app}"
  BEZGELOR_FLY_ORG: "{s.org}"
  BEZGELOR_FLY_REGION: "{s.region}"

jobs:
  verify:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - name: Check that bezgelor-tasks is configured
        env:
          TASKS_REPO: ${{{{ vars.BEZGELOR_TASKS_REPO }}}}
        run: |
          if [ -z "$TASKS_REPO" ]; then
            echo "::error::Set the repository variable BEZGELOR_TASKS_REPO (owner/name of bezgelor-tasks)."
            exit 1
          fi
      - uses: actions/checkout@v4
        with:
          path: game
      - uses: actions/checkout@v4
        with:
          repository: ${{{{ vars.BEZGELOR_TASKS_REPO }}}}
          ref: ${{{{ vars.BEZGELOR_TASKS_REF || 'main' }}}}
          path: {TOOLS_PATH}
      - uses: actions/setup-python@v5
        with:
          python-version: "{PYTHON_VERSION}"
      - uses: erlef/setup-beam@v1
        with:
          elixir-version: "{s.elixir_version}"
          otp-version: "{s.otp_version}"
      - name: Install bezgelor-tasks (it brings nox)
        run: python -m pip install -e "./{TOOLS_PATH}"
      - name: nox -s verify
        working-directory: game
        run: nox -s verify

  deploy:
    if: startsWith(github.ref, 'refs/tags/v')
    needs: verify
    runs-on: ubuntu-latest
    timeout-minutes: 60
    # One deploy at a time; a second tag waits instead of cancelling a deploy half-way.
    concurrency:
      group: bezgelor-fly-deploy
      cancel-in-progress: false
    steps:
      - uses: actions/checkout@v4
        with:
          path: game
          fetch-depth: 0          # git describe needs the tags (the image's APP_VERSION)
      - uses: actions/checkout@v4
        with:
          repository: ${{{{ vars.BEZGELOR_TASKS_REPO }}}}
          ref: ${{{{ vars.BEZGELOR_TASKS_REF || 'main' }}}}
          path: {TOOLS_PATH}
      - uses: actions/setup-python@v5
        with:
          python-version: "{PYTHON_VERSION}"
      - uses: superfly/flyctl-actions/setup-flyctl@master
      - name: Install bezgelor-tasks
        run: python -m pip install -e "./{TOOLS_PATH}"
      - name: inv deploy.full
        working-directory: game
        env:
          FLY_API_TOKEN: ${{{{ secrets.FLY_API_TOKEN }}}}
        run: inv deploy.full --yes
"""


def workflow_change(co: Checkout) -> FileChange:
    return generated_change(co.path(WORKFLOW), WORKFLOW, render_workflow(co),
                            "CI: verify on every push, inv deploy.full on v* tags")
