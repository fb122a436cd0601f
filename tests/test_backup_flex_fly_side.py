"""Flex on Fly's own backups: created with them on, listed beside local backups, and a point-in-time
restore through `fly postgres backup restore <new app> --restore-target-time T`, then attach and
redeploy, the old cluster kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from invoke import Context
from invoke.exceptions import Exit

from bezgelor_tasks import settings_load
from bezgelor_tasks.fly import postgres_commands
from bezgelor_tasks.run import Executor
from bezgelor_tasks.tasks import db_backup
from bezgelor_tasks.ui import UI


@pytest.fixture
def flex(fake_fly, tmp_path):
    s = settings_load.load(tmp_path, environ={})
    ex = Executor(ui=UI(color=False), echo=False)
    ex.run(postgres_commands.postgres_create(s))
    fake_fly.add_app("bezgelor")
    fake_fly.start_machine("bezgelor", "registry.fly.io/bezgelor:deployment-1")
    ex.run(postgres_commands.postgres_attach(s))
    return s


def test_a_flex_point_in_time_restore_goes_into_a_new_app_which_is_attached_and_deployed(flex, fake_fly, capsys):
    root = str(flex.root)
    db_backup.backup(Context(), root=root, remote=True)
    capsys.readouterr()
    db_backup.backups(Context(), root=root, json=True)
    listed = json.loads(capsys.readouterr().out)
    assert listed["local"] == [] and "DONE" in listed["fly"][0]["line"]
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    db_backup.restore(Context(), root=root, point_in_time=when, dry_run=True)
    assert fake_fly.calls("postgres backup restore") == []
    db_backup.restore(Context(), root=root, point_in_time=when, yes=True, confirm_app="bezgelor-db")
    argv = fake_fly.argvs("postgres backup restore")[0]
    new = argv[4]
    assert argv[argv.index("--restore-target-time") + 1] == when and argv[argv.index("-a") + 1] == "bezgelor-db"
    assert argv[argv.index("--image-ref") + 1] == "flyio/postgres-flex:15"
    assert fake_fly.app(new)["restored_from"] == "bezgelor-db" and "bezgelor-db" in fake_fly.state()["apps"]
    assert fake_fly.argvs("postgres attach")[-1][3] == new
    assert fake_fly.calls("secrets deploy")
    out = capsys.readouterr().out
    assert f"BEZGELOR_FLY_DB_APP={new}" in out
    cached = (flex.state_dir / f"{new}.password").read_text()
    assert "PASSWORD=" in cached and "Password" not in out


def test_a_flex_point_in_time_before_every_backup_changes_nothing(flex, fake_fly, capsys):
    root = str(flex.root)
    db_backup.backup(Context(), root=root, remote=True)
    with pytest.raises(Exit):
        db_backup.restore(Context(), root=root, point_in_time="2020-01-01T00:00:00Z", yes=True,
                          confirm_app="bezgelor-db")
    # refused before flyctl is asked: the time is outside the window `inv db.backups` shows
    assert "outside the recovery window Fly keeps" in capsys.readouterr().err
    assert fake_fly.calls("postgres attach")[-1:] == fake_fly.calls("postgres attach")[:1]
