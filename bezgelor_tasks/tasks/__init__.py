"""The Invoke namespace: top-level `init`, `verify`, `demo`, and one collection per area."""

import sys

from invoke import Collection

# The task whose time is mostly the judge's boot (init spends its own writing, and starts the judge in its body,
# where Ctrl-C is handled); what shows help or lists tasks runs none.
JUDGED = frozenset({"verify"})
NO_TASK_RUNS = frozenset({"-l", "--list", "-h", "--help", "--complete", "-V", "--version", "--print-completion-script"})


def program_is_ours(argv: list[str]) -> bool:
    """This process is `inv`/`invoke`/`bezgelor-tasks` running tasks (not a test importing them)."""
    program = argv[0].replace("\\", "/") if argv else ""
    return program.rsplit("/", 1)[-1] in ("inv", "invoke", "bezgelor-tasks") or program.endswith("invoke/__main__.py")


def start_the_judge_early(argv: list[str]) -> None:
    """`inv verify` asks Elixir first thing: start its VM now, while Invoke and the library load
    (it boots in a process of its own, on the other core), instead of after them. A guess from the command
    line: a wrong one costs an Elixir start that this run then closes; a failure here is left for the task
    itself to report."""
    words = set(argv[1:])
    if program_is_ours(argv) and words & JUDGED and not words & NO_TASK_RUNS:
        from bezgelor_tasks import elixir

        try:
            elixir.judge().warm()
        except Exception:  # noqa: BLE001 (the task asks again and says what is wrong)
            pass


def exit_without_collecting(argv: list[str]) -> None:
    """The process is about to end: the garbage collector need not walk every object the run made (tens of
    milliseconds at exit with the library loaded; the memory goes back to the system either way)."""
    if program_is_ours(argv):
        import atexit
        import gc

        atexit.register(gc.freeze)


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
