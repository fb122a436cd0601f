"""Messages people can scan, and the executor's manners: a headline of at most ~120 characters, the detail,
then `Fix:` on its own line; one y/N helper for every question; commands never get the user's terminal; a bug
of ours is one paragraph (the traceback with --debug); `bezgelor-tasks --version`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Context, task
from invoke.exceptions import Exit

from bezgelor_tasks import __version__
from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError, split_headline
from bezgelor_tasks.run import Executor
from bezgelor_tasks.tasks._common import BUG_EXIT, user_task

PACKAGE = Path(__file__).resolve().parents[1] / "bezgelor_tasks"


def test_an_error_reads_headline_detail_fix() -> None:
    e = UserError("Backup 20261201T000000Z_bezgelor-db_bezgelor is damaged; nothing was restored. The archive ends "
                  "early: dump.pgc is 10 bytes, the manifest says 20.", detail="- one\n- two",
                  fix="take a new backup (`inv db.backup`).")
    lines = e.lines()
    assert lines[0] == "Backup 20261201T000000Z_bezgelor-db_bezgelor is damaged; nothing was restored."
    assert lines[1:4] == ["  The archive ends early: dump.pgc is 10 bytes, the manifest says 20.", "  - one", "  - two"]
    assert lines[-1] == "Fix: take a new backup (`inv db.backup`)."
    assert "\n" not in e.paragraph() and e.paragraph().endswith("Fix: take a new backup (`inv db.backup`).")


@pytest.mark.parametrize("text", [
    "Step `deploy` failed: The machines did not pass their health checks in time (`fly deploy -a bezgelor --image "
    "registry.fly.io/bezgelor:v0.2.0 --strategy rolling --wait-timeout 600s --yes` failed).",
    "The local database bezgelor_restored already has 5 tables; restoring into it would mix two databases. "
    "Nothing was restored.",
])
def test_long_messages_get_a_headline_that_fits_and_keep_every_word(text: str) -> None:
    head, rest = split_headline(text)
    assert len(head) <= 120 and f"{head} {rest}".split() == text.split()


def test_every_y_n_question_goes_through_the_one_confirm_helper() -> None:
    asking = [f"{p.relative_to(PACKAGE)}:{n}" for p in PACKAGE.rglob("*.py") for n, line in
              enumerate(p.read_text().splitlines(), 1) if re.search(r"(?<![\w.])input\(", line)]
    assert [where.split(":")[0] for where in asking] == ["ui.py"], asking  # confirm(), and nowhere else


def test_commands_get_dev_null_as_stdin_never_the_terminal() -> None:
    ran = Executor(echo=False).run(Command(("readlink", "/proc/self/fd/0"), mutates=False))
    assert ran.stdout.strip() == "/dev/null"


def test_a_dry_run_refuses_a_changing_background_command() -> None:
    with pytest.raises(UserError, match="dry run: would start `sleep 30`"):
        Executor(dry_run=True, echo=False).spawn(Command(("sleep", "30")), ready="never")


@task
@user_task
def _buggy(c: Context) -> None:
    {}["missing"]  # noqa: B018 (a bug, on purpose)


def test_a_bug_is_one_paragraph_and_the_traceback_comes_with_debug(capsys, monkeypatch) -> None:  # noqa: ANN001
    with pytest.raises(Exit) as stopped:
        _buggy(Context())
    said = capsys.readouterr().err
    assert stopped.value.code == BUG_EXIT
    assert said.startswith("bezgelor-tasks hit a bug: KeyError: 'missing'") and "Traceback" not in said
    assert f"bezgelor-tasks {__version__}" in said and "Python 3." in said and "--debug" in said
    assert said.count("\n") == 1
    monkeypatch.setenv("INVOKE_DEBUG", "1")
    with pytest.raises(Exit):
        _buggy(Context())
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_bezgelor_tasks_says_its_version() -> None:
    ran = subprocess.run([sys.executable, "-c", "from bezgelor_tasks.cli import program; program.run()", "--version"],
                         capture_output=True, text=True)
    assert ran.stdout.strip().splitlines()[0] == f"bezgelor-tasks {__version__}"
