"""What every Invoke task shares: settings, UI and executor from its flags; errors → one paragraph + exit code.

Tasks stay thin: parse flags, call `session(...)`, call library functions, print. Each task body is
wrapped by `@user_task` so a `UserError` becomes a one-paragraph message and a non-zero exit, never
a traceback (and never a secret: messages are redacted).

`session()` is the one place settings are loaded for a task, and it validates them all
(`settings_load.load_checked`) before the task can write anything.

This module and the task modules import only Invoke and light modules at import time: `inv --list`
and `bezgelor-tasks --list` must not pay for the library. Import library modules inside task bodies.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from invoke.exceptions import Exit

from bezgelor_tasks.errors import UserError

if TYPE_CHECKING:
    from bezgelor_tasks.run import Executor
    from bezgelor_tasks.settings import Settings
    from bezgelor_tasks.ui import UI

F = TypeVar("F", bound=Callable[..., Any])

# The --root flag means the same everywhere, so it is described once.
ROOT_HELP = "The Bezgelor checkout (umbrella root); default: BEZGELOR_ROOT or the current folder."


@dataclass
class Session:
    settings: Settings
    ui: UI
    executor: Executor
    dry_run: bool
    json_mode: bool


def session(root: str | None = None, *, dry_run: bool = False, json_mode: bool = False,
            echo: bool = True, validate: bool = True, new_root: bool = False) -> Session:
    """Settings (validated: a bad value stops the task before it writes anything), UI and executor.

    The checkout must exist (a mistyped --root is an error, never a folder we create), unless `new_root`
    (the demo makes its own). `validate` is accepted for older callers and ignored: every task validates.
    """
    from bezgelor_tasks import settings_load
    from bezgelor_tasks.run import Executor
    from bezgelor_tasks.settings import ENV_OF
    from bezgelor_tasks.ui import UI

    s = settings_load.load_checked(root)
    if not new_root:
        from bezgelor_tasks.deploy.state import require_checkout

        require_checkout(s)
    ui = UI(json_mode=json_mode)
    for name, given, used in s.overruled():
        ui.warn(f"{ENV_OF[name]}={given} is set, but the checkout's Dockerfile puts the release {used} in the "
                f"image, so {used} is used (unset {ENV_OF[name]}, or change the Dockerfile: `inv init` writes it "
                "from mix.exs)")
    ex = Executor(ui=ui, dry_run=dry_run, echo=echo, default_timeout=s.command_timeout_s)
    return Session(s, ui, ex, dry_run, json_mode)


def user_task(fn: F) -> F:
    """Turn UserError (and Ctrl-C) into a clear message and an exit code; keep the signature for Invoke."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bezgelor_tasks.processes import termination_raises

        try:
            with termination_raises():
                return fn(*args, **kwargs)
        except UserError as e:
            from bezgelor_tasks.redact import redact

            print(redact("error: " + "\n".join(e.lines())), file=sys.stderr)
            raise Exit(code=e.exit_code) from None
        except KeyboardInterrupt as e:
            from bezgelor_tasks import processes
            from bezgelor_tasks.errors import Interrupted

            stopped = processes.interrupt_all()
            said = e.said if isinstance(e, Interrupted) else "nothing more was started."
            print("interrupted: " + (f"stopped {stopped} running command(s); " if stopped else "") + said,
                  file=sys.stderr)
            _exit_now_if_threads_linger(130)
            raise Exit(code=130) from None
        except BrokenPipeError:  # `inv ... | head`: the reader left; nothing to report to it
            _quiet_stdout()
            raise Exit(code=0) from None
        except (Exit, SystemExit):
            raise
        except Exception as e:  # a bug of ours: one paragraph, the traceback only with --debug
            print(bug_report(e, fn.__name__), file=sys.stderr)
            raise Exit(code=BUG_EXIT) from None

    return wrapper  # type: ignore[return-value]


BUG_EXIT = 70  # EX_SOFTWARE: not the user's input, not the world: our bug


def debugging() -> bool:
    """`--debug` (Invoke's flag, `inv --debug TASK` / `bezgelor-tasks --debug TASK`) or INVOKE_DEBUG=1."""
    import logging
    import os

    return bool(os.environ.get("INVOKE_DEBUG")) or logging.getLogger().isEnabledFor(logging.DEBUG)


def versions() -> str:
    """bezgelor-tasks, Python and the libraries that shape what it does, for a bug report."""
    import platform
    from importlib import metadata

    from bezgelor_tasks import __version__

    found = [f"bezgelor-tasks {__version__}", f"Python {platform.python_version()}"]
    for dist in ("invoke", "sh", "tomlkit", "python-dotenv", "jinja2"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def bug_report(e: BaseException, task: str) -> str:
    """One paragraph for an unexpected exception (redacted); with --debug, the traceback after it."""
    import traceback

    from bezgelor_tasks.redact import redact

    where = ""
    tb = traceback.extract_tb(e.__traceback__)
    if tb:
        last = tb[-1]
        where = f" at {last.filename.rsplit('bezgelor_tasks/', 1)[-1]}:{last.lineno}"
    text = (f"bezgelor-tasks hit a bug: {type(e).__name__}: {e}{where} (task {task}; {versions()}). "
            "Nothing after that point was done. Rerun with --debug (`inv --debug ...`) to see the traceback, and "
            "report it with that output.")
    if debugging():
        text += "\n" + "".join(traceback.format_exception(e))
    return redact(text)


def _exit_now_if_threads_linger(code: int) -> None:
    """After Ctrl-C, a worker thread still inside a network wait (one health poll: up to 5 s) would
    hold the interpreter's exit; the locks are freed and the journal written by now, so leave at once."""
    import os

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass
        os._exit(code)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so Python's final flush does not raise BrokenPipeError again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
