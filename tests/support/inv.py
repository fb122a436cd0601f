"""Run `inv ...` as a user would: a real subprocess of this project's tasks, in the test's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent


def run_inv(*args: str, stdin: str | None = "", cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`inv <args>` with stdin (not a TTY); returns the finished process (check .returncode yourself)."""
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(PROJECT), *args],
                          input=stdin, capture_output=True, text=True, cwd=cwd, env=dict(os.environ),
                          timeout=timeout)


# An interrupted run exits 130, or is ended by SIGINT itself: CPython (3.8+) re-raises SIGINT at exit when a
# KeyboardInterrupt once escaped code run through exec() of a string (dataclass and namedtuple methods are
# made that way), even after our handler caught it and exited 130. A shell reports both as $? = 130.
INTERRUPTED = (130, -2)
