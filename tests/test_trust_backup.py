"""Backup state is recorded before it is reported, and a local restore is all or nothing: a damaged backup is
marked failed in its manifest (and `db.backups` lists it failed) before the restore says so; a restore that
fails half-way leaves no database behind; every failure says what was and was not changed, then a Fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Context

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import backup, manifest, restore, session
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.tasks import db_backup
from bezgelor_tasks.ui import UI

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(pg_server, game_db, tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    for key, value in (("PGHOST", pg_server.host), ("PGPORT", str(pg_server.port)), ("PGUSER", pg_server.user),
                       ("PGPASSWORD", pg_server.password)):
        monkeypatch.setenv(key, value)  # the local target of `db.restore --target local`
    s = settings_load.load(tmp_path, environ={}, db_name=game_db, db_user=pg_server.user)
    ui = UI(color=False)
    made = backup.create_backup(s, Executor(ui=ui, echo=False), ui,
                                endpoint=session.direct_endpoint(pg_server.host, pg_server.port))
    return s, Executor(ui=ui, echo=False), ui, made.path


def _truncate(path: Path, *, rechecksum: bool = False) -> None:
    archive = path / "dump.pgc"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    if rechecksum:  # damaged before its checksum was taken: only reading it all (or restoring it) tells
        b = manifest.load(path)
        b.data["files"] = manifest.file_digests(archive, path)
        manifest.write(Executor(), path, b.data)


def _databases(pg_server) -> list[str]:  # noqa: ANN001
    return pg_server.sql("SELECT datname FROM pg_database ORDER BY 1;").split()


def test_restoring_a_truncated_backup_marks_it_failed_before_saying_so(env, pg_server, tmp_path, capsys) -> None:  # noqa: ANN001
    s, ex, ui, path = env
    _truncate(path)
    with pytest.raises(UserError) as err:
        restore.restore(s, ex, ui, manifest.load(path), target="local", database="restored_game")
    said = err.value
    assert "is damaged; nothing was restored" in said.message and said.fix
    assert "It is marked as failed in its manifest" in said.detail
    on_disk = manifest.load(path)
    assert not on_disk.verified and on_disk.last_verification["ok"] is False  # recorded, as said
    assert "restored_game" not in _databases(pg_server)

    capsys.readouterr()
    db_backup.backups(Context(), root=str(tmp_path), fly=False)
    assert f"{path.name}" in (listed := capsys.readouterr().out) and "FAILED (quick)" in listed


def test_a_local_restore_that_fails_half_way_leaves_no_database_behind(env, pg_server) -> None:  # noqa: ANN001
    s, ex, ui, path = env
    _truncate(path, rechecksum=True)  # passes the quick check: pg_restore finds the damage mid-restore
    before = _databases(pg_server)
    with pytest.raises(UserError) as err:
        restore.restore(s, ex, ui, manifest.load(path), target="local", database="half_restored")
    said = err.value
    assert "Nothing was changed" in said.message and "half_restored was not created" in said.message
    assert "is damaged" in said.message and "now marked as failed in its manifest" in said.message
    assert said.fix
    assert _databases(pg_server) == before  # neither the target nor the temporary database
    assert manifest.load(path).last_verification["ok"] is False


def test_a_local_restore_is_renamed_into_place_only_when_every_count_matches(env, pg_server, game_db) -> None:  # noqa: ANN001
    s, ex, ui, path = env
    report = restore.restore(s, ex, ui, manifest.load(path), target="local", database="copy_of_the_game")
    assert report["problems"] == [] and "copy_of_the_game" in _databases(pg_server)
    assert pg_server.dump_contents("copy_of_the_game") == pg_server.dump_contents(game_db)
    assert not [d for d in _databases(pg_server) if "_restoring_" in d]


def test_a_dry_run_restore_restores_nothing_anywhere(env, pg_server) -> None:  # noqa: ANN001
    s, _, ui, path = env
    before = _databases(pg_server)
    dry = Executor(ui=ui, dry_run=True, echo=False)
    report = restore.restore(s, dry, ui, manifest.load(path), target="local", database="not_made")
    assert report["dry_run"] and report["row_counts"] is None
    assert _databases(pg_server) == before
