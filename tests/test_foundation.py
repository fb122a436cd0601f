"""The foundation every task stands on: one settings source, one executor, redaction everywhere."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bezgelor_tasks import redact, settings
from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import CommandFailed, UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI

REPO = Path(__file__).resolve().parents[1]


def quiet_executor(**kw) -> Executor:
    import io

    return Executor(ui=UI(stream=io.StringIO()), **kw)


def test_env_example_documents_every_setting_with_its_default():
    assert (REPO / ".env.example").read_text() == settings.env_example()
    text = settings.env_example()
    for f in settings.FIELDS:
        assert f"{f.metadata['env']}=" in text


def test_settings_come_from_environment_then_dotenv_then_defaults(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("BEZGELOR_FLY_APP=from-dotenv\nBEZGELOR_VM_MEMORY_MB=6144\n")
    monkeypatch.setenv("BEZGELOR_FLY_APP", "from-env")
    s = settings.load()
    assert s.app == "from-env"
    assert s.vm_memory_mb == 6144
    assert s.region == "sjc"
    assert s.ports.all() == {"portal": 4000, "auth": 6600, "realm": 23115, "world": 24000}


def test_root_flag_wins_and_checkout_dotenv_is_read(tmp_path, monkeypatch):
    co = tmp_path / "co"
    co.mkdir()
    (co / ".env").write_text("BEZGELOR_FLY_REGION=ams\n")
    monkeypatch.setenv("BEZGELOR_ROOT", "/nonexistent")
    s = settings.load(co)
    assert s.root == co.resolve()
    assert s.region == "ams"


def test_a_bad_number_or_app_name_is_named_with_the_form_expected(monkeypatch):
    monkeypatch.setenv("BEZGELOR_VM_MEMORY_MB", "lots")
    with pytest.raises(UserError, match="BEZGELOR_VM_MEMORY_MB=lots .*is not a whole number of megabytes"):
        settings.load()
    monkeypatch.setenv("BEZGELOR_VM_MEMORY_MB", "4GiB")  # Fly's spelling, in a setting counted in MB
    with pytest.raises(UserError, match="4GiB is 4096 MB, so write 4096"):
        settings.load()
    monkeypatch.delenv("BEZGELOR_VM_MEMORY_MB")
    monkeypatch.setenv("BEZGELOR_FLY_APP", "Bad_Name")
    with pytest.raises(UserError, match="BEZGELOR_FLY_APP=Bad_Name is not a name Fly accepts"):
        settings.load().validate()


def test_executor_runs_argv_and_feeds_stdin_without_showing_it():
    ex = quiet_executor()
    result = ex.run(Command(("cat",), stdin="SECRET_KEY_BASE=hunter2hunter2\n"))
    assert result.stdout == "SECRET_KEY_BASE=hunter2hunter2\n"
    shown = ex.ui.stream.getvalue()
    assert "hunter2" not in shown and "(stdin)" in shown


def test_dry_run_skips_commands_that_change_things_but_runs_queries():
    ex = quiet_executor(dry_run=True)
    assert ex.run(Command(("false",), mutates=True)).dry_run
    assert ex.run(Command(("echo", "hi"), mutates=False)).stdout == "hi\n"
    assert "would run false" in ex.ui.stream.getvalue()


def test_failures_timeouts_and_retries_are_reported_with_secrets_masked():
    redact.register("s3cr3t-value")
    ex = quiet_executor(retry_delay=0)
    with pytest.raises(CommandFailed) as err:
        code = "import sys; print('Error: bad s3cr3t-value', file=sys.stderr); sys.exit(1)"
        ex.run(Command((sys.executable, "-c", code), purpose="a failing step", retries=2))
    assert "s3cr3t-value" not in str(err.value) and "***" in str(err.value)
    assert "a failing step" in str(err.value)
    assert len(ex.history) == 1  # one logical run, retried inside
    with pytest.raises(CommandFailed, match="timed out"):
        ex.run(Command(("sleep", "10"), timeout=0.5))


def test_missing_program_names_the_fix():
    with pytest.raises(UserError, match="not installed"):
        quiet_executor().run(Command(("definitely-not-a-program-xyz",)))


def test_background_command_waits_for_its_ready_line_and_stops():
    ex = quiet_executor()
    code = "import time,sys; print('Proxying localhost:15432 to remote', flush=True); time.sleep(60)"
    with ex.spawn(Command((sys.executable, "-c", code)), ready=r"Proxying localhost:(\d+)") as bg:
        assert bg.match and bg.match.group(1) == "15432"
        assert bg.alive
    assert not bg.alive


def test_redaction_masks_registered_values_urls_and_secret_assignments():
    redact.register("abcdef123456")
    text = "x abcdef123456 postgres://postgres:pw0rd@host:5432/db CLOAK_KEY=zzz"
    out = redact.redact(text)
    assert "abcdef123456" not in out and "pw0rd" not in out and "zzz" not in out


def test_atomic_write_replaces_whole_and_keeps_mode(tmp_path):
    from bezgelor_tasks.files import atomic_write

    p = tmp_path / "f.sh"
    atomic_write(p, "one", executable=True)
    assert os.access(p, os.X_OK)
    atomic_write(p, "two")
    assert p.read_text() == "two" and os.access(p, os.X_OK)
    assert [x.name for x in tmp_path.iterdir()] == ["f.sh"]


def test_every_task_has_a_one_line_help_and_bezgelor_tasks_lists_the_same_as_inv():
    import subprocess

    listed = subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "--list"], capture_output=True,
                            text=True, check=True).stdout
    rows = [line.split(maxsplit=1) for line in listed.splitlines()[2:] if line.startswith("  ")
            and not line.startswith("   ")]
    names = [row[0] for row in rows]
    assert {"init", "verify", "deploy.full", "db.backup", "db.restore", "rollback.app", "plan.size"} <= set(names)
    assert [row[0] for row in rows if len(row) < 2] == [], "every task shows a one-line help"
    standalone = subprocess.run([sys.executable, "-c", "from bezgelor_tasks.cli import program; program.run()",
                                 "--list"], capture_output=True, text=True, check=True).stdout
    assert [n for n in names if n not in standalone] == []
