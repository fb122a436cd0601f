"""Managed Postgres end to end against the fake `fly mpg` (flyctl's commands, flags, JSON and messages,
each cluster a database on a real PostgreSQL 15): create → attach → backup through `fly mpg proxy` with
credentials from `fly mpg status` → a Fly-side backup → point-in-time restore into a new cluster →
attach → redeploy. Every step is planned, dry-runnable and journalled; the old cluster is kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from invoke import Context
from invoke.exceptions import Exit

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import manifest
from bezgelor_tasks.pg_flavor import release_command, repo_runtime_options
from bezgelor_tasks.tasks import db_backup

pytestmark = pytest.mark.postgres


@pytest.fixture
def mpg(fake_fly, pg_server, game_db, tmp_path, monkeypatch):
    fake_fly.set_mpg_backend(pg_server.host, pg_server.port, pg_server.user, pg_server.password, game_db)
    fake_fly.add_app("bezgelor")
    fake_fly.start_machine("bezgelor", "registry.fly.io/bezgelor:deployment-1")
    monkeypatch.setenv("BEZGELOR_PG_FLAVOR", "mpg")
    monkeypatch.setenv("BEZGELOR_PG_MAJOR", "17")
    monkeypatch.setenv("BEZGELOR_DB_NAME", game_db)
    return tmp_path


def _journal(root) -> list[dict]:
    path = root / ".bezgelor" / "journal.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_managed_postgres_create_attach_backup_pitr_restore_attach_redeploy(mpg, fake_fly, pg_server, game_db,
                                                                             capsys):
    root = str(mpg)
    db_backup.create(Context(), root=root, dry_run=True)
    out = capsys.readouterr().out
    assert "mpg create --name bezgelor-db" in out and "--pg-major-version 17" in out and "mpg attach" in out
    assert fake_fly.calls("mpg create") == [] and not _journal(mpg), "a dry run changes nothing"

    db_backup.create(Context(), root=root)
    (cluster,) = fake_fly.mpg_clusters()
    assert cluster["name"] == "bezgelor-db" and cluster["pg_major"] == 17 and cluster["plan"] == "basic"
    app = fake_fly.app("bezgelor")
    assert "pgbouncer." in app["machine_env"]["DATABASE_URL"]
    assert set(app["secrets"]) >= {"DATABASE_URL", "DIRECT_DATABASE_URL"}
    assert app["secrets"]["DIRECT_DATABASE_URL"]["digest"] == fake_fly.digest_of(
        f"postgresql://{pg_server.user}:{pg_server.password}@direct.{cluster['id']}.flympg.net/{game_db}")

    # a backup with no local password: credentials from `fly mpg status`, the tunnel is `fly mpg proxy`
    db_backup.backup(Context(), root=root, verify="standard")
    assert fake_fly.argvs("mpg proxy")[0][1:] == ["mpg", "proxy", cluster["id"], "--local-port", "0"]
    (local,) = manifest.list_backups(mpg / ".bezgelor" / "backups")
    assert local.row_counts["public.items"] == 3000

    db_backup.backup(Context(), root=root, remote=True)
    assert fake_fly.argvs("mpg backup create")[0][-2:] == ["--type", "full"]
    capsys.readouterr()
    db_backup.backups(Context(), root=root)
    assert "fly-side: " in capsys.readouterr().out
    good_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pg_server.sql("DELETE FROM \"Quest Log\"; DELETE FROM items WHERE id > 100;", dbname=game_db)  # the accident

    db_backup.restore(Context(), root=root, point_in_time=good_time, dry_run=True)
    assert fake_fly.calls("mpg restore") == []
    db_backup.restore(Context(), root=root, point_in_time=good_time, yes=True, confirm_app="bezgelor-db")
    out = capsys.readouterr().out
    new = next(c for c in fake_fly.mpg_clusters() if c["id"] != cluster["id"])
    assert fake_fly.argvs("mpg restore")[0][2:5] == ["restore", cluster["id"], "--pitr-time"]
    assert pg_server.sql("SELECT count(*) FROM items;", new["dbname"]).strip() == "3000"
    assert pg_server.sql("SELECT count(*) FROM items;", game_db).strip() == "100", "the old cluster is kept"
    app = fake_fly.app("bezgelor")
    assert new["dbname"] in app["machine_env"]["DATABASE_URL"] and "bezgelor" in new["attached_apps"]
    assert fake_fly.calls("secrets deploy"), "redeployed with the new secrets"
    assert f"BEZGELOR_FLY_DB_APP={new['name']}" in out and "the way back" in out

    steps = [(e["step"], e["status"]) for e in _journal(mpg) if e["event"] == "db.fly_restore.step"]
    assert ("redeploy with the new secrets", "done") in steps and all(s != "failed" for _, s in steps)
    journal_text = (mpg / ".bezgelor" / "journal.jsonl").read_text()
    assert pg_server.password not in journal_text and pg_server.password not in out

    # backups now come from the restored cluster
    db_backup.backup(Context(), root=root, verify="none")
    settings = settings_load.load(root, environ={"BEZGELOR_FLY_DB_APP": new["name"], "BEZGELOR_PG_FLAVOR": "mpg"})
    assert settings.db_app == new["name"]


def test_a_pitr_time_outside_the_recovery_window_stops_before_anything_is_attached(mpg, fake_fly, capsys):
    root = str(mpg)
    db_backup.create(Context(), root=root)
    before = dict(fake_fly.app("bezgelor")["machine_env"])
    with pytest.raises(Exit):
        db_backup.restore(Context(), root=root, point_in_time="2020-01-01T00:00:00Z", yes=True,
                          confirm_app="bezgelor-db")
    err = capsys.readouterr()
    assert "outside the recovery window" in err.err and "the way back" in err.out + err.err
    assert fake_fly.app("bezgelor")["machine_env"] == before and len(fake_fly.mpg_clusters()) == 1


def test_the_runtime_choices_per_flavor_live_in_one_place():
    assert repo_runtime_options("mpg").prepare == ":unnamed" and repo_runtime_options("mpg").ssl is True
    assert repo_runtime_options("flex").prepare == ":named" and repo_runtime_options("flex").ssl is False
    assert release_command("mpg") == "/bin/sh -lc 'DATABASE_URL=$DIRECT_DATABASE_URL /app/bin/migrate'"
    assert release_command("flex") == "/app/bin/migrate"


def test_deploy_fulls_database_step_with_mpg_creates_and_attaches_the_cluster_once(fake_fly, tmp_path, monkeypatch):
    from bezgelor_tasks.deploy.context import DeployContext
    from bezgelor_tasks.deploy.provision_steps import database
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.journal import Journal
    from bezgelor_tasks.run import Executor
    from bezgelor_tasks.ui import UI

    fake_fly.set_mpg_backend("127.0.0.1", 5432, "fly-user", "pw-not-used-here", "fly-db")
    fake_fly.add_app("bezgelor")  # before the first deploy: no machines yet
    s = settings_load.load(tmp_path, environ={"BEZGELOR_PG_FLAVOR": "mpg"})
    ui = UI(color=False)
    ex = Executor(ui=ui, echo=False)
    ctx = DeployContext(s, FlyClient(s, ex), ui, ex, Journal(tmp_path, ex))
    step = database(ctx)
    assert not step.check().done
    assert [c.argv[1:3] for c in step.plan()] == [("mpg", "create"), ("mpg", "attach"), ("secrets", "import")]
    step.run()
    assert step.check().done and len(fake_fly.mpg_clusters()) == 1
    step.run()  # a second run (a resumed deploy) changes nothing
    assert len(fake_fly.calls("mpg create")) == 1 and len(fake_fly.calls("mpg attach")) == 1
