"""A game database is backed up, verified by a real restore, and restored into a fresh database."""

from __future__ import annotations

import json

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import backup, manifest, restore, session, verify
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(pg_server, game_db, tmp_path, monkeypatch):
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    s = settings_load.load(tmp_path, environ={}, db_name=game_db, db_user=pg_server.user)
    ui = UI(color=False)
    return s, Executor(ui=ui), ui, session.direct_endpoint(pg_server.host, pg_server.port)


def test_a_backup_of_the_game_database_restores_into_a_fresh_database_with_identical_rows(env, pg_server, game_db,
                                                                                             monkeypatch):
    s, ex, ui, endpoint = env
    made = backup.create_backup(s, ex, ui, endpoint=endpoint, release_version="42")
    assert made.row_counts["public.items"] == 3000 and made.row_counts["public.Quest Log"] == 2700
    b = manifest.load(made.path)
    assert b.data["release_version"] == "42" and b.data["server_version"].startswith("15.")
    assert b.data["pg_dump_version"] == 15 and b.data["format"] == "custom"
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in b.data["files"].values())

    result = verify.verify(ex, ui, b, "full")
    assert result["ok"], result["problems"]
    assert manifest.load(made.path).verified

    monkeypatch.setenv("PGHOST", pg_server.host)
    monkeypatch.setenv("PGPORT", str(pg_server.port))
    monkeypatch.setenv("PGUSER", pg_server.user)
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    report = restore.restore(s, ex, ui, b, target="local", database=f"{game_db}_copy")
    assert report["problems"] == [] and report["row_counts"] == made.row_counts
    assert pg_server.dump_contents(f"{game_db}_copy") == pg_server.dump_contents(game_db)


def test_a_big_database_backed_up_with_jobs_uses_directory_format_and_verifies(env):
    s, ex, ui, endpoint = env
    made = backup.create_backup(s, ex, ui, endpoint=endpoint, jobs=3)
    b = manifest.load(made.path)
    assert b.data["format"] == "directory" and (made.path / "dump.dir" / "toc.dat").is_file()
    assert len(b.data["files"]) > 3
    assert verify.verify(ex, ui, b, "full")["ok"]


def test_backups_are_named_to_sort_by_time_and_never_overwrite_each_other(env):
    s, ex, ui, endpoint = env
    first = backup.create_backup(s, ex, ui, endpoint=endpoint)
    second = backup.create_backup(s, ex, ui, endpoint=endpoint)
    assert first.path != second.path and first.path.is_dir() and second.path.is_dir()
    names = [b.name for b in manifest.list_backups(s.backups_path)]
    assert names == sorted(names) and first.name in names and second.name in names
    assert not manifest.partials(s.backups_path)


def test_the_password_never_appears_in_any_command_line(env, pg_server):
    s, ex, ui, endpoint = env
    made = backup.create_backup(s, ex, ui, endpoint=endpoint)
    verify.verify(ex, ui, manifest.load(made.path), "full")
    argvs = [" ".join(r.command.argv) for r in ex.history]
    assert any("pg_dump" in a for a in argvs)
    assert not any(pg_server.password in a for a in argvs)
    assert not any(pg_server.password in json.dumps(dict(r.command.env)) for r in ex.history)
    assert pg_server.password not in (made.path / manifest.MANIFEST).read_text()


def test_the_password_comes_from_the_file_deploy_full_wrote_when_the_environment_has_none(env, pg_server,
                                                                                            monkeypatch):
    s, ex, ui, endpoint = env
    monkeypatch.delenv("BEZGELOR_DB_PASSWORD")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    s.state_dir.mkdir(parents=True, exist_ok=True)
    (s.state_dir / f"{s.db_app}.password").write_text(f"# written by deploy.full\nPASSWORD={pg_server.password}\n")
    assert backup.create_backup(s, ex, ui, endpoint=endpoint).size > 0


def test_a_wrong_password_is_a_clear_error_naming_where_the_password_comes_from(env, monkeypatch):
    s, ex, ui, endpoint = env
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", "not-the-password")
    with pytest.raises(Exception) as err:
        backup.create_backup(s, ex, ui, endpoint=endpoint)
    assert "password" in str(err.value).lower() and "BEZGELOR_DB_PASSWORD" in str(err.value)
    assert not manifest.list_backups(s.backups_path) and not manifest.partials(s.backups_path)


def test_predeploy_backup_skips_an_empty_database_and_backs_up_one_with_tables(pg_server, tmp_path, monkeypatch):
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    pg_server.sql(f"CREATE DATABASE empty_one OWNER {pg_server.user};")
    s = settings_load.load(tmp_path, environ={}, db_name="empty_one", db_user=pg_server.user)
    ui = UI(color=False)
    ex = Executor(ui=ui)
    endpoint = session.direct_endpoint(pg_server.host, pg_server.port)
    assert backup.create_backup(s, ex, ui, endpoint=endpoint, skip_empty=True) is None
    assert not manifest.list_backups(s.backups_path) and not manifest.partials(s.backups_path)


def test_predeploy_backup_on_a_first_deploy_before_the_database_exists_backs_up_nothing(pg_server, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    s = settings_load.load(tmp_path, environ={}, db_name="not_created_yet", db_user=pg_server.user)
    ui = UI(color=False)
    endpoint = session.direct_endpoint(pg_server.host, pg_server.port)
    assert backup.create_backup(s, Executor(ui=ui), ui, endpoint=endpoint, skip_empty=True) is None
    with pytest.raises(session.DatabaseMissing, match="BEZGELOR_DB_NAME"):
        backup.create_backup(s, Executor(ui=ui), ui, endpoint=endpoint)
    assert backup.predeploy_backup(s, Executor(ui=ui, dry_run=True), ui, "7") is None
    assert not s.backups_path.exists() or not any(s.backups_path.iterdir())
