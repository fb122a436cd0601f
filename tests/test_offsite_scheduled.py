"""The watcher's backup jobs, called as its job table calls them: `(settings, executor, ui) -> Outcome`."""

from __future__ import annotations

import secrets

import pyrage
import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import offsite, scheduled
from bezgelor_tasks.backup.store import Store
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI
from bezgelor_tasks.watch import backups

pytestmark = pytest.mark.postgres


@pytest.fixture
def watcher(s3_server, fake_fly, pg_server, game_db, tmp_path, monkeypatch):
    """The watcher app's environment: the database URL (as `fly postgres attach` writes it), the bucket, the
    recipients; for drills also the identity. No `fly proxy`: the job runs next to the database."""
    for k, v in s3_server.env(s3_server.new_bucket("bezgelor-tests"), f"w-{secrets.token_hex(4)}").items():
        monkeypatch.setenv(k, v)
    identity = pyrage.x25519.Identity.generate()
    monkeypatch.setenv("BEZGELOR_BACKUP_AGE_RECIPIENTS", str(identity.to_public()))
    monkeypatch.setenv("DATABASE_URL", f"postgres://{pg_server.user}:{pg_server.password}@{pg_server.host}:"
                                       f"{pg_server.port}/{game_db}?sslmode=disable")
    return identity


def test_the_scheduled_backup_dumps_next_to_the_database_and_a_drill_then_proves_it(watcher, tmp_path,
                                                                                        monkeypatch):
    ui = UI(color=False)
    s = settings_load.load(tmp_path)
    done = scheduled.scheduled_backup(s, Executor(ui=ui), ui)
    assert done.ok, done.summary
    assert "verified, uploaded" in done.summary and done.details["via"] == "DATABASE_URL"
    assert not s.backups_path.exists()   # the watcher keeps no local copy
    (copy,) = offsite.list_offsite(Store(s, Executor(ui=ui)))
    assert copy.verified and copy.data["row_counts"]["public.items"] == 3000
    newest = backups.offsite(s)  # what the watcher's backup-age alert (BEZGELOR_BACKUP_MAX_AGE) reads
    assert newest is not None and newest.name == copy.name and newest.age_s is not None and newest.age_s < 600

    no_key = scheduled.scheduled_drill(s, Executor(ui=ui), ui)
    assert not no_key.ok and "No age identity" in no_key.summary
    monkeypatch.setenv("BEZGELOR_BACKUP_AGE_IDENTITY", str(watcher))
    drilled = scheduled.scheduled_drill(s, Executor(ui=ui), ui)
    assert drilled.ok and drilled.details["restore_seconds"] > 0 and drilled.details["backup"] == copy.name
    summary = scheduled.status_summary(s, Executor(ui=ui))
    assert summary["offsite"]["name"] == copy.name and summary["last_drill"]["ok"]
    assert any(line.startswith("last drill               ok") for line in summary["lines"])


def test_a_failing_scheduled_backup_is_a_failed_outcome_with_one_line_never_an_exception(watcher, tmp_path,
                                                                                           monkeypatch):
    ui = UI(color=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    out = scheduled.scheduled_backup(settings_load.load(tmp_path), Executor(ui=ui), ui)
    assert not out.ok and "refused the credentials" in out.summary and "\n" not in out.summary
    monkeypatch.delenv("DATABASE_URL")
    out = scheduled.scheduled_backup(settings_load.load(tmp_path), Executor(ui=ui), ui)
    assert not out.ok and "no database URL" in out.summary
    monkeypatch.delenv("BEZGELOR_OFFSITE_URL")
    assert scheduled.scheduled_backup(settings_load.load(tmp_path), Executor(ui=ui), ui).summary.startswith("skipped")


def test_after_the_database_password_changed_the_scheduled_backup_says_to_deploy_the_watcher_again(
        watcher, pg_server, game_db, tmp_path, monkeypatch):
    ui = UI(color=False)
    stale = "an-old-password"
    monkeypatch.setenv("DATABASE_URL", f"postgres://{pg_server.user}:{stale}@{pg_server.host}:{pg_server.port}/"
                                       f"{game_db}?sslmode=disable")
    s = settings_load.load(tmp_path)
    out = scheduled.scheduled_backup(s, Executor(ui=ui), ui)
    assert not out.ok and "the password has changed since" in out.summary
    assert "run `inv watch.deploy` again" in out.details["error"]
    assert stale not in out.summary + out.details["error"]
    assert offsite.list_offsite(Store(s, Executor(ui=ui))) == []


def test_a_dry_run_of_the_scheduled_backup_opens_no_session_on_the_database_and_uploads_nothing(watcher, tmp_path):
    ui = UI(color=False)
    s = settings_load.load(tmp_path)
    ex = Executor(ui=ui, dry_run=True)
    out = scheduled.scheduled_backup(s, ex, ui)
    assert out.ok and out.summary.startswith("dry run")
    assert not [r for r in ex.history if r.command.argv[0].endswith(("psql", "pg_dump"))]
    assert offsite.list_offsite(Store(s, Executor(ui=ui))) == []


def test_the_watcher_needs_these_secrets_and_settings_and_never_their_values(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    s = settings_load.load(tmp_path, environ={"BEZGELOR_PG_FLAVOR": "mpg"})
    needed = {r.name: r for r in scheduled.watcher_requirements(s)}
    assert {"DATABASE_URL", "DIRECT_DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "BEZGELOR_OFFSITE_URL", "BEZGELOR_BACKUP_AGE_RECIPIENTS", "BEZGELOR_BACKUP_AGE_IDENTITY"} <= set(needed)
    assert needed["AWS_SECRET_ACCESS_KEY"].secret and not needed["BEZGELOR_OFFSITE_URL"].secret
    assert "s3cr3t-value" not in repr(needed)


def test_a_dump_that_fails_half_way_uploads_nothing_and_the_unfinished_upload_is_aborted(watcher, pg_server,
                                                                                        game_db, tmp_path):
    """A table someone added with row-level security the backup's role may not bypass: pg_dump has streamed the
    tables before it when it fails on that one."""
    pg_server.sql("CREATE TABLE zz_private (secret text); INSERT INTO zz_private VALUES ('x');"
                  "ALTER TABLE zz_private ENABLE ROW LEVEL SECURITY; CREATE POLICY everyone ON zz_private "
                  f"USING (true); GRANT SELECT ON zz_private TO {pg_server.user};", game_db)
    ui = UI(color=False)
    s = settings_load.load(tmp_path)
    out = scheduled.scheduled_backup(s, Executor(ui=ui), ui)
    assert not out.ok and "The backup failed" in out.summary and "zz_private" in out.details["error"]
    store = Store(s, Executor(ui=ui))
    assert offsite.list_offsite(store) == [] and store.list_objects("") == []   # no object, not even a part one


def test_the_s3_server_killed_mid_stream_leaves_nothing_listed_and_the_next_backup_succeeds(watcher, tmp_path,
                                                                                           monkeypatch):
    import os

    from tests.support.s3 import S3Server

    server = S3Server.start(tmp_path / "s3", owner=os.getpid())
    try:
        bucket = server.new_bucket()
        for k, v in server.env(bucket).items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("BEZGELOR_OFFSITE_MAX_MBPS", "0.02")   # a few seconds for the dump: the kill lands in it
        killer = server.kill_once_uploading(bucket)
        ui = UI(color=False)
        out = scheduled.scheduled_backup(settings_load.load(tmp_path), Executor(ui=ui), ui)
        killer.join()
        assert not out.ok and "did not answer" in out.summary
        server = S3Server.start(tmp_path / "s3", ports=server.ports, owner=os.getpid(),
                                access_key=server.access_key, secret_key=server.secret_key)
        monkeypatch.delenv("BEZGELOR_OFFSITE_MAX_MBPS")
        s = settings_load.load(tmp_path)
        store = Store(s, Executor(ui=ui))
        assert offsite.list_offsite(store) == []
        assert scheduled.scheduled_backup(s, Executor(ui=ui), ui).ok
        assert len(offsite.list_offsite(store)) == 1
    finally:
        server.kill()
