"""What a run starts before anything else loads: the Elixir judge for `verify` (its VM boots on the other core
while Python loads Invoke and the library), and an exit that skips the garbage collector's final walk.

No Invoke here: `bezgelor-tasks` / `python -m bezgelor_tasks` (the entry CI's `nox -s verify` runs) call this
before importing it, and the task namespace calls it again for `inv` (a second call finds the judge running).
"""

from __future__ import annotations

# The task whose time is mostly the judge's boot (init spends its own writing, and starts the judge in its body,
# where Ctrl-C is handled); what shows help or lists tasks runs none.
JUDGED = frozenset({"verify"})
NO_TASK_RUNS = frozenset({"-l", "--list", "-h", "--help", "--complete", "-V", "--version", "--print-completion-script"})


def program_is_ours(argv: list[str]) -> bool:
    """This process is `inv`/`invoke`/`bezgelor-tasks` running tasks (not a test importing them)."""
    program = argv[0].replace("\\", "/") if argv else ""
    return (program.rsplit("/", 1)[-1] in ("inv", "invoke", "bezgelor-tasks")
            or program.endswith(("invoke/__main__.py", "bezgelor_tasks/__main__.py")))


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
