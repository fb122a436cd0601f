"""init is all or nothing: Ctrl-C before its write phase changes nothing and says so; every new text is staged
and renamed into place in one short phase; a checkout that cannot be written is named for the real reason (a
read-only file system; a file where a folder must be: tests/test_deploy_shared_account.py), never "chmod u+w"
for what chmod cannot fix."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bezgelor_tasks import files
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange
from bezgelor_tasks.processes import signals_deferred
from bezgelor_tasks.run import Executor
from tests.support.deployrun import REPO
from tests.support.inv import INTERRUPTED

pytestmark = pytest.mark.elixir


def git_status(root: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored"], cwd=root,
                          capture_output=True, text=True, check=True).stdout


def _descendant_running(parent: int, word: str) -> int | None:
    """A process under `parent` whose command line holds `word` (the Elixir judge: judge.exs)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    todo = list(children.get(parent, []))
    while todo:
        pid = todo.pop()
        try:
            if word.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
        todo += children.get(pid, [])
    return None


@pytest.mark.skipif(shutil.which("elixir") is None, reason="needs Elixir")
def test_ctrl_c_while_init_waits_on_elixir_changes_nothing_and_says_so(bezgelor_checkout: Path) -> None:
    before = git_status(bezgelor_checkout)
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(REPO), "init", "--root",
                             str(bezgelor_checkout), "--yes"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    judge = None
    while judge is None and proc.poll() is None:  # the judge starts first thing: catch it before it answers
        judge = _descendant_running(proc.pid, "BezgelorJudge")  # through the launcher or straight from erl
    assert judge is not None, proc.communicate()
    os.kill(judge, signal.SIGSTOP)  # Elixir is busy: init waits for its answer, before any write
    said: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            said.append(line)
            if line.startswith("interrupted:"):
                os.kill(judge, signal.SIGKILL)  # let the run's exit stop waiting for it

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    proc.send_signal(signal.SIGINT)  # the operator's Ctrl-C
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            os.kill(judge, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reader.join(timeout=10)

    assert proc.returncode in INTERRUPTED, "".join(said)
    assert "interrupted:" in "".join(said) and "before its write phase: nothing was changed" in "".join(said)
    assert git_status(bezgelor_checkout) == before  # not one file changed, no staged temporary file left


def test_a_signal_inside_the_rename_phase_waits_for_its_end() -> None:
    with signals_deferred() as caught:
        os.kill(os.getpid(), signal.SIGINT)
        finished = True  # the phase goes on: Ctrl-C is held until the block ends
    assert finished and caught == [signal.SIGINT]
    with pytest.raises(KeyboardInterrupt):  # and outside the phase, Ctrl-C is Ctrl-C again
        os.kill(os.getpid(), signal.SIGINT)


def test_a_rename_that_fails_in_the_phase_puts_back_what_was_already_written(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("mine\n")
    (tmp_path / "b.txt").mkdir()  # a folder where init wants a file: staging works, the rename cannot
    (tmp_path / "b.txt" / "keep").write_text("x")
    changes = [FileChange(tmp_path / "a.txt", "a.txt", "mine\n", "ours\n", "a"),
               FileChange(tmp_path / "b.txt", "b.txt", None, "ours\n", "b"),
               FileChange(tmp_path / "c.txt", "c.txt", None, "ours\n", "c")]
    with pytest.raises(UserError) as err:
        files.apply_changes(changes, executor=Executor())
    assert "writing b.txt failed" in err.value.message and "put back" in err.value.message
    assert (tmp_path / "a.txt").read_text() == "mine\n" and not (tmp_path / "c.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no staged file left behind


def test_a_dry_run_writes_nothing_and_shows_what_it_would_write(tmp_path: Path) -> None:
    import io

    from bezgelor_tasks.ui import UI

    ui = UI(stream=io.StringIO(), color=False)
    change = FileChange(tmp_path / "deep" / "fly.toml", "deep/fly.toml", None, "app = 'x'\n", "fly.toml")
    assert files.apply_changes([change], executor=Executor(ui=ui, dry_run=True)) == []
    assert list(tmp_path.iterdir()) == []
    assert "would write 1 file(s): deep/fly.toml" in ui.stream.getvalue()  # type: ignore[attr-defined]


def _read_only(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`inv ARGV` with `root` mounted read-only (a user namespace of its own: no root needed)."""
    script = (f'mount --bind "{root}" "{root}" && mount -o remount,bind,ro "{root}" && '
              f'exec "{sys.executable}" -m invoke -r "{REPO}" "$@"')
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *argv], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_a_read_only_checkout_is_named_read_only_not_a_chmod_away(bezgelor_checkout: Path) -> None:
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    before = git_status(bezgelor_checkout)
    ran = _read_only(bezgelor_checkout, "init", "--root", str(bezgelor_checkout), "--yes")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "read-only" in ran.stderr and "chmod" not in ran.stderr and "Traceback" not in ran.stderr
    assert "nothing was changed" in ran.stderr and "\nFix: " in ran.stderr
    assert git_status(bezgelor_checkout) == before
