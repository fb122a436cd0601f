"""`bezgelor-tasks`: the same tasks as `inv` in this repository, runnable from anywhere once installed."""

import sys

from bezgelor_tasks.early_start import start_the_judge_early

start_the_judge_early(sys.argv)   # before Invoke loads: the judge's boot is `verify`'s critical path

# ruff: noqa: E402 (Invoke and the tasks load after the judge started, above)
from invoke import Program

from bezgelor_tasks import __version__
from bezgelor_tasks.tasks import namespace

program = Program(namespace=namespace, version=__version__, name="bezgelor-tasks", binary="bezgelor-tasks")
