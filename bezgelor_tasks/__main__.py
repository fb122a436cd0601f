"""`python -m bezgelor_tasks TASK` — the same as the `bezgelor-tasks` console script."""

from bezgelor_tasks.cli import program

program.run()
