"""`bezgelor-tasks`: the same tasks as `inv` in this repository, runnable from anywhere once installed."""

from invoke import Program

from bezgelor_tasks import __version__
from bezgelor_tasks.tasks import namespace

program = Program(namespace=namespace, version=__version__, name="bezgelor-tasks", binary="bezgelor-tasks")
