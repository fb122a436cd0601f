"""The Invoke namespace: top-level `init`, `verify`, `demo`, and one collection per area."""

import sys

from invoke import Collection

from bezgelor_tasks.early_start import exit_without_collecting, start_the_judge_early

start_the_judge_early(sys.argv)
exit_without_collecting(sys.argv)

# ruff: noqa: E402 (the task modules load after the judge started, above)
from bezgelor_tasks.tasks import (
    alert,
    build,
    db,
    deploy,
    ips,
    lock,
    maintenance,
    plan,
    release,
    rollback,
    secrets,
    watch,
)
from bezgelor_tasks.tasks.checkout_tasks import demo, init, verify
from bezgelor_tasks.tasks.game import announce, players
from bezgelor_tasks.tasks.ops import audit, logs
from bezgelor_tasks.tasks.world import console, restart, start, status, stop

namespace = Collection()
namespace.add_task(init)
namespace.add_task(verify)
namespace.add_task(demo)
namespace.add_task(players)
namespace.add_task(announce)
namespace.add_task(logs)
namespace.add_task(audit)
for emergency in (restart, stop, start, console, status):
    namespace.add_task(emergency)
for module in (build, release, db, secrets, ips, rollback, deploy, plan, maintenance, lock, alert, watch):
    namespace.add_collection(Collection.from_module(module))



def including(module_name: str) -> Collection:
    """Your tasks.py's own tasks plus every bezgelor-tasks task: end a tasks.py of yours with
    `ns = including(__name__)` so `inv deploy.full` works beside your tasks."""
    import sys

    ns = Collection.from_module(sys.modules[module_name])
    for name, task in namespace.tasks.items():
        if name not in ns.tasks:
            ns.add_task(task, name)
    for name, collection in namespace.collections.items():
        if name not in ns.collections:
            ns.add_collection(collection, name)
    return ns


def _quiet_broken_pipe(kind: type[BaseException], value: BaseException, tb: object) -> None:
    """`inv --list` piped into head: the reader left while Invoke was printing. Say nothing (as `ls | head` does)
    and keep Python's final flush from complaining again; any other error is reported as usual."""
    if issubclass(kind, BrokenPipeError):
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return
    _previous_hook(kind, value, tb)  # type: ignore[arg-type]


_previous_hook = sys.excepthook
sys.excepthook = _quiet_broken_pipe
