"""Invoke entry point: `inv --list` shows every task. The tasks live in bezgelor_tasks/tasks/."""

from bezgelor_tasks.tasks import namespace as ns

__all__ = ["ns"]
