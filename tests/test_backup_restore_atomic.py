"""`db.restore --target app` is all or nothing: the Fly database (the fake's proxy forwarding to a real
PostgreSQL 15) ends with exactly the backup's rows, even over a schema that moved on, or exactly as it was."""

from __future__ import annotations

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import backup, manifest, restore
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI

pytestmark = pytest.mark.postgres

MOVE_ON = """\
SET ROLE bezgelor;
CREATE TABLE achievements (id serial PRIMARY KEY, character_id bigint NOT NULL REFERENCES characters(id),
                           name text NOT NULL);
INSERT INTO achievements (character_id, name) SELECT id, 'first kill' FROM characters WHERE id <= 50;
ALTER TABLE accounts ADD COLUMN banned boolean NOT NULL DEFAULT false;
DELETE FROM "Quest Log" WHERE quest = 3;
UPDATE guilds SET name = 'Renamed';
"""


@pytest.fixture
def fly_env(fake_fly, pg_server, game_db, tmp_path, monkeypatch):
    fake_fly.add_pg_app("bezgelor-db", proxy_target=f"127.0.0.1:{pg_server.port}")
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    s = settings_load.load(tmp_path, environ={"BEZGELOR_DB_NAME": game_db, "BEZGELOR_DB_USER": pg_server.user})
    ui = UI(color=False)
    return s, Executor(ui=ui, echo=False), ui


def _tables(pg_server, db: str) -> list[str]:
    return pg_server.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;", db).split()


def test_a_restore_over_a_schema_that_moved_on_ends_with_exactly_the_backups_rows(fly_env, pg_server, game_db):
    s, ex, ui = fly_env
    made = backup.create_backup(s, ex, ui)
    at_backup = pg_server.dump_contents(game_db)
    pg_server.sql(MOVE_ON, dbname=game_db)  # a new table with a foreign key to a restored one, a new column
    assert pg_server.dump_contents(game_db) != at_backup

    report = restore.restore(s, ex, ui, manifest.load(made.path), target="app", yes=True, confirm_app="bezgelor-db")
    assert report["problems"] == []
    assert pg_server.dump_contents(game_db) == at_backup
    assert "achievements" not in _tables(pg_server, game_db)
    assert "banned" not in pg_server.sql("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_name = 'accounts';", game_db)
    fresh = manifest.load(s.backups_path / report["fresh_backup"])  # what was there, kept before replacing it
    assert fresh.row_counts["public.achievements"] == 50
    # the app's role can still use the schema the restore recreated
    pg_server.sql("SET ROLE bezgelor; CREATE TABLE later (id int); DROP TABLE later;", dbname=game_db)


def test_a_restore_that_fails_half_way_leaves_the_database_exactly_as_it_was(fly_env, pg_server, game_db):
    s, ex, ui = fly_env
    made = backup.create_backup(s, ex, ui)
    pg_server.sql(MOVE_ON, dbname=game_db)
    # something outside the backup's schemas makes the restore fail after it dropped and recreated
    # several tables: an event trigger refusing to create `items`
    pg_server.sql("""
        CREATE SCHEMA guard;
        CREATE FUNCTION guard.no_items() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'public.items') THEN
            RAISE EXCEPTION 'items may not be created today';
          END IF;
        END $$;
        CREATE EVENT TRIGGER no_items ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION guard.no_items();
    """, dbname=game_db)
    before = pg_server.dump_contents(game_db)
    with pytest.raises(UserError) as err:
        restore.restore(s, ex, ui, manifest.load(made.path), target="app", yes=True, confirm_app="bezgelor-db")
    text = str(err.value)
    assert "items may not be created today" in text and "rolled back as a whole" in text
    assert pg_server.dump_contents(game_db) == before
    assert "achievements" in _tables(pg_server, game_db)
