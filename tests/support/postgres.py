"""A real PostgreSQL 15 on 127.0.0.1 for the tests, with a password-authenticated (scram) role.

`pg_server` (session-scoped) starts one cluster for the whole run with the same scratch-cluster code
the verify tier uses; `game_db` creates a fresh seeded game-like database per test.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from bezgelor_tasks.backup import clients, commands, scratch
from bezgelor_tasks.backup.commands import Client, Conn
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI

GAME_ROLE = "bezgelor"

SEED_SQL = """\
CREATE TABLE accounts (
  id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, inserted_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE characters (
  id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts(id), name text NOT NULL,
  level int NOT NULL, race smallint NOT NULL, appearance jsonb NOT NULL DEFAULT '{}');
CREATE TABLE items (
  id bigserial PRIMARY KEY, character_id bigint NOT NULL REFERENCES characters(id), item_id int NOT NULL,
  slot int, stats jsonb NOT NULL);
CREATE TABLE guilds (id serial PRIMARY KEY, name text NOT NULL, settings jsonb);
CREATE TABLE "Quest Log" (character_id bigint REFERENCES characters(id), quest int, progress jsonb,
  PRIMARY KEY (character_id, quest));
CREATE INDEX items_stats ON items USING gin (stats);
INSERT INTO accounts (email) SELECT 'player' || g || '@example.test' FROM generate_series(1, {accounts}) g;
INSERT INTO characters (account_id, name, level, race, appearance)
  SELECT 1 + (g % {accounts}), 'Hero' || g, 1 + g % 50, g % 8,
         jsonb_build_object('hair', g % 12, 'tattoos', jsonb_build_array(g % 3, g % 5), 'note', E'tab\\there "q"')
  FROM generate_series(1, {characters}) g;
INSERT INTO items (character_id, item_id, slot, stats)
  SELECT 1 + (g % {characters}), g * 7 % 40000, CASE WHEN g % 4 = 0 THEN NULL ELSE g % 30 END,
         jsonb_build_object('str', g % 97, 'ünïcode', 'Ω≈ç', 'mods', jsonb_build_array(g, g + 1))
  FROM generate_series(1, {items}) g;
INSERT INTO guilds (name, settings) VALUES ('Dominion', '{"motd": "hi"}'), ('Exiles', NULL);
INSERT INTO "Quest Log" SELECT id, q, jsonb_build_object('step', q) FROM characters, generate_series(1, 3) q;
"""


@dataclass(frozen=True)
class PgServer:
    cluster: scratch.ScratchCluster
    client: Client
    executor: Executor
    password: str
    user: str = GAME_ROLE

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.cluster.port

    def admin(self, dbname: str = "postgres") -> Conn:
        return self.cluster.socket_conn(dbname)

    def sql(self, text: str, dbname: str = "postgres") -> str:
        return self.executor.run(commands.psql(self.client, self.admin(dbname), text, purpose="test sql",
                                               mutates=True)).stdout

    def create_game_db(self, name: str, *, accounts: int = 300, characters: int = 900, items: int = 3000) -> str:
        self.sql(f'CREATE DATABASE "{name}" OWNER {self.user};')
        seed = SEED_SQL.replace("{accounts}", str(accounts)).replace("{characters}", str(characters)) \
            .replace("{items}", str(items))
        self.sql(f"SET ROLE {self.user};\n{seed}", dbname=name)
        return name

    @contextmanager
    def dumps_wait(self, dbname: str, *, rows: bool = False) -> Iterator[None]:
        """pg_dump of `dbname` blocks for the block (so it is surely mid-dump when a test strikes): a partitioned
        table whose parent (ONLY the parent) another session holds locked. Row counts read the partitions and
        pass; pg_dump must lock the parent and waits."""
        self.sql("SET ROLE bezgelor; CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);"
                 "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');"
                 + ("INSERT INTO events VALUES (1, '2026-05-01');" if rows else ""), dbname=dbname)
        locker = subprocess.Popen(
            [str(self.client.bindir / "psql"), "-X", "-q", "-A", "-t", "-h", str(self.cluster.socket_dir),
             "-p", str(self.port), "-U", "postgres", "-d", dbname],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert locker.stdin is not None and locker.stdout is not None
            locker.stdin.write("BEGIN; LOCK TABLE ONLY events IN ACCESS EXCLUSIVE MODE; SELECT 'LOCKED';\n")
            locker.stdin.flush()
            assert locker.stdout.readline().strip() == "LOCKED"
            yield
        finally:
            locker.kill()
            locker.wait()

    def dump_contents(self, dbname: str) -> str:
        """Every row of every table, ordered, as text: compares contents across databases."""
        tables = self.sql("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                          "WHERE schemaname = 'public' ORDER BY 1;", dbname).splitlines()
        parts = []
        for t in tables:
            parts.append(t + "\n" + self.sql(f"SELECT t::text FROM {t} t ORDER BY t::text;", dbname))
        return "\n".join(parts)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        client = clients.newest(need=("initdb", "pg_ctl", "pg_dump", "pg_restore", "psql"))
    except Exception as e:  # noqa: BLE001 — no PostgreSQL here: say so, don't fail obscurely
        pytest.skip(f"PostgreSQL server programs not installed: {e}")
    ex = Executor(ui=UI(color=False), echo=False)
    with scratch.scratch_cluster(ex, client, prefix="bezgelor-test-pg-") as cluster:
        password = "pw-" + secrets.token_urlsafe(12)
        ex.run(commands.psql(client, cluster.socket_conn(),
                             f"CREATE ROLE {GAME_ROLE} LOGIN CREATEDB PASSWORD '{password}';",
                             purpose="create the game role", mutates=True))
        yield PgServer(cluster, client, ex, password)


@pytest.fixture
def game_db(pg_server: PgServer) -> str:
    return pg_server.create_game_db(f"game_{secrets.token_hex(4)}")
