"""`inv db.backup` as users run it: through `fly proxy` (the fake flyctl forwarding to a real PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from invoke import Context
from invoke.exceptions import Exit

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import backup, manifest, remote, restore, verify
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.tasks import db_backup
from bezgelor_tasks.ui import UI

pytestmark = pytest.mark.postgres


def proxies_running() -> list[str]:
    """`fly proxy` processes of this test's fake account (other test runs may have their own)."""
    home = f"FAKE_FLY_HOME={os.environ['FAKE_FLY_HOME']}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                env = (d / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if " proxy 0:5432 " in cmd and home in env:
                found.append(cmd)
    return found


@pytest.fixture
def fly_env(fake_fly, pg_server, game_db, tmp_path, monkeypatch):
    fake_fly.add_pg_app("bezgelor-db", proxy_target=f"127.0.0.1:{pg_server.port}")
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    monkeypatch.setenv("BEZGELOR_DB_NAME", game_db)
    monkeypatch.setenv("BEZGELOR_DB_USER", pg_server.user)
    s = settings_load.load(tmp_path)
    ui = UI(color=False)
    return s, Executor(ui=ui), ui


def test_a_backup_goes_through_fly_proxy_and_closes_it_afterwards(fly_env, fake_fly, pg_server):
    s, ex, ui = fly_env
    made = backup.create_backup(s, ex, ui)
    assert made.row_counts["public.items"] == 3000
    assert fake_fly.argvs("proxy")[0][1:5] == ["proxy", "0:5432", "-a", "bezgelor-db"]
    assert proxies_running() == []
    assert verify.verify(ex, ui, manifest.load(made.path), "full")["ok"]
    for call in fake_fly.calls():
        assert pg_server.password not in " ".join(call["argv"])
    assert not any(pg_server.password in " ".join(r.command.argv) for r in ex.history)


def test_a_proxy_dropped_mid_dump_fails_clearly_and_the_next_backup_succeeds(fly_env, fake_fly):
    s, ex, ui = fly_env
    fake_fly.fault("proxy", "drop", after_bytes=40_000, times=1)
    with pytest.raises(UserError) as err:
        backup.create_backup(s, ex, ui)
    assert "connection to the database dropped" in str(err.value) and "Nothing was kept" in str(err.value)
    assert manifest.list_backups(s.backups_path) == [] and manifest.partials(s.backups_path) == []
    assert proxies_running() == []
    assert backup.create_backup(s, ex, ui).size > 0


def test_restoring_into_the_fly_database_needs_its_name_and_takes_a_fresh_backup_first(fly_env, pg_server, game_db):
    s, ex, ui = fly_env
    made = backup.create_backup(s, ex, ui)
    pg_server.sql("DELETE FROM \"Quest Log\"; DELETE FROM items WHERE id > 10;", dbname=game_db)
    b = manifest.load(made.path)
    with pytest.raises(UserError, match="--confirm-app bezgelor-db"):
        restore.restore(s, ex, ui, b, target="app", yes=True, confirm_app="bezgelor")
    with pytest.raises(UserError, match="nothing was restored"):
        restore.restore(s, ex, ui, b, target="app", ask=lambda _: "oops")
    report = restore.restore(s, ex, ui, b, target="app", yes=True, confirm_app="bezgelor-db")
    assert report["problems"] == [] and report["row_counts"]["public.items"] == 3000
    fresh = manifest.load(s.backups_path / report["fresh_backup"])
    assert fresh.row_counts["public.items"] == 10 and fresh.row_counts["public.Quest Log"] == 0


def test_a_flex_remote_backup_is_confirmed_with_backup_list(fly_env, fake_fly):
    s, ex, ui = fly_env
    with pytest.raises(UserError, match="backup enable"):
        remote.create_remote(s, ex, ui)
    fake_fly.update(lambda st: st["apps"]["bezgelor-db"]["pg"].__setitem__("backups_enabled", True))
    done = remote.create_remote(s, ex, ui)
    assert done["name"] in done["listed"] and "DONE" in done["listed"]
    fake_fly.update(lambda st: st["apps"]["bezgelor-db"]["pg"].__setitem__("backup_fails", True))
    with pytest.raises(UserError, match="listed as failed"):
        remote.create_remote(s, ex, ui)


def test_inv_db_backup_then_backups_lists_it_as_verified(fly_env, fake_fly, tmp_path, capsys):
    s, _, _ = fly_env
    db_backup.backup(Context(), root=str(tmp_path), verify="standard")
    capsys.readouterr()
    db_backup.backups(Context(), root=str(tmp_path))
    out = capsys.readouterr().out
    assert "bezgelor-db" in out and "verified (standard)" in out
    assert "fly-side: not available: Error: Backups are not enabled" in out


def test_inv_db_verify_backup_of_a_damaged_backup_exits_non_zero(fly_env, tmp_path, capsys):
    s, ex, ui = fly_env
    made = backup.create_backup(s, ex, ui)
    archive = made.path / "dump.pgc"
    archive.write_bytes(archive.read_bytes()[:-100])
    with pytest.raises(Exit):
        db_backup.verify_backup(Context(), root=str(tmp_path), tier="quick")
    assert "is damaged" in capsys.readouterr().err
    db_backup.backups(Context(), root=str(tmp_path), fly=False)
    assert "FAILED (quick)" in capsys.readouterr().out


def test_predeploy_backup_backs_up_verifies_and_records_the_release(fly_env):
    s, ex, ui = fly_env
    made = backup.predeploy_backup(s, ex, ui, "v12")
    assert made is not None and made.verification["ok"] and made.verification["tier"] == "standard"
    b = manifest.load(made.path)
    assert b.data["release_version"] == "v12" and b.verified
    assert proxies_running() == []
