"""Connecting to the Fly database: `fly proxy` on loopback, the password in a pgpass file, the right client.

Also the row-count SQL and the snapshot session that lets the manifest's row counts be read in the very
snapshot pg_dump dumps (`pg_export_snapshot()` + `pg_dump --snapshot`).
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bezgelor_tasks.backup import clients, commands, credentials, pgerrors
from bezgelor_tasks.backup.commands import Client, Conn
from bezgelor_tasks.errors import CommandFailed, UserError
from bezgelor_tasks.fly import postgres_commands
from bezgelor_tasks.fly.client import PROXY_READY, FlyClient
from bezgelor_tasks.processes import Background
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings

# Exact row counts of every ordinary table, as one JSON line (query_to_xml runs the count per table).
ROW_COUNTS_SQL = """\
SELECT 'ROWCOUNTS ' || coalesce(json_object_agg(t, n)::text, '{}') FROM (
  SELECT format('%s.%s', ns.nspname, c.relname) AS t,
         (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', ns.nspname, c.relname),
                                              false, true, '')))[1]::text::bigint AS n
  FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
  WHERE c.relkind = 'r' AND ns.nspname NOT IN ('pg_catalog', 'information_schema')
    AND ns.nspname NOT LIKE 'pg_toast%' AND ns.nspname NOT LIKE 'pg_temp%'
  ORDER BY 1) s;
"""

T = TypeVar("T")

# (host, port) of something that speaks the PostgreSQL protocol, open while the context lasts.
Endpoint = Callable[[], AbstractContextManager[tuple[str, int]]]


class DatabaseMissing(UserError):
    """The server answers but the database does not exist (yet: before `fly postgres attach` creates it)."""


@dataclass(frozen=True)
class Server:
    conn: Conn
    client: Client
    version: str
    major: int


def fly_endpoint(settings: Settings, executor: Executor, *, ready_timeout: float = 60) -> Endpoint:
    @contextmanager
    def open_proxy() -> Iterator[tuple[str, int]]:
        # port 0: flyctl binds a free loopback port and names it in its ready line
        try:
            if settings.pg_flavor == "mpg":  # `fly mpg proxy <cluster id>`: the tunnel to Managed Postgres
                from bezgelor_tasks.backup import fly_restore

                cmd = postgres_commands.mpg_proxy(settings, fly_restore.cluster_id(settings, executor), 0)
                bg = executor.spawn(cmd, ready=PROXY_READY, ready_timeout=ready_timeout)
            else:
                bg = FlyClient(settings, executor).proxy(settings.db_app, 0, ready_timeout=ready_timeout)
        except CommandFailed as e:
            raise UserError(f"Could not open a tunnel to the {settings.db_app} database: {e.message}",
                            fix=f"check `fly status -a {settings.db_app}` and that you are logged in "
                                "(`fly auth whoami`), then try again.") from None
        with bg:  # closes the proxy on every exit path
            assert bg.match is not None
            yield "127.0.0.1", int(bg.match.group(1))

    return open_proxy


def direct_endpoint(host: str, port: int) -> Endpoint:
    """A database reachable without a tunnel (a local server, a test's server)."""

    @contextmanager
    def direct() -> Iterator[tuple[str, int]]:
        yield host, port

    return direct


def fetch_row_counts(executor: Executor, client: Client, conn: Conn) -> dict[str, int]:
    out = executor.run(commands.psql(client, conn, ROW_COUNTS_SQL, purpose="count rows per table",
                                     mutates=False)).stdout
    return parse_row_counts(out)


def parse_row_counts(out: str) -> dict[str, int]:
    for line in out.splitlines():
        if line.startswith("ROWCOUNTS "):
            return {k: int(v) for k, v in json.loads(line[len("ROWCOUNTS "):]).items()}
    raise UserError("Could not read the row counts from psql's output.",
                    fix="run with the same flags again; if it repeats, report it with the output above.")


def probe(executor: Executor, conn: Conn, *, search: str | None = None, settings: Settings | None = None,
          source: str = "") -> Server:
    """Ask the server its version and pick the client that matches it."""
    search = search or clients.default_search(settings.pg_bindir if settings else "")
    any_client = clients.newest(search, need=("psql", "pg_dump"))
    r = executor.run(commands.psql(any_client, conn, "SHOW server_version_num;\nSHOW server_version;\n",
                                   purpose="ask the server its version", timeout=60, mutates=False), check=False)
    if not r.ok:
        raise connect_error(r.stderr.strip() or r.stdout.strip() or f"exit {r.returncode}", conn, settings, source)
    lines = [x.strip() for x in r.stdout.splitlines() if x.strip()] or [""]
    return _server(conn, lines[0], lines[-1], search)


def _server(conn: Conn, version_num: str, version: str, search: str) -> Server:
    """The server as its version says, with the client that dumps it: the newest at least as new, found where
    `search` looks (the caller's, else BEZGELOR_PG_BINDIR then the standard places)."""
    major = clients.server_major(version_num)
    return Server(conn, clients.choose(major, clients.installed(search)), version, major)


def connect_error(text: str, conn: Conn, settings: Settings | None, source: str) -> UserError:
    """What a client's failure to connect means, as one error (a missing database, a refused password...)."""
    if m := re.search(r'database "([^"]*)" does not exist', text):
        return DatabaseMissing(f"The database {m.group(1)} does not exist on the server.",
                               fix="check BEZGELOR_DB_NAME; `fly postgres attach` creates the database.")
    if settings is not None and (said := pgerrors.explain(text, settings, user=conn.user, source=source)):
        return ConnectFailed(said.sentence, fix=said.fix, kind=said.kind)
    detail = text.splitlines()
    msg = detail[-1] if detail else "no output"
    fix = ("check the password (BEZGELOR_DB_PASSWORD, or the .bezgelor/<db app>.password file) and "
           "BEZGELOR_DB_USER.") if "password" in msg.lower() else \
        "check that the database is running (`fly status -a <db app>`) and try again."
    return UserError(f"Could not connect to PostgreSQL as {conn.user}: {msg}", fix=fix)


def reported_major(settings: Settings, executor: Executor) -> int | None:
    """The server's major as Fly reports it, before any tunnel: a Flex machine's image tag
    (flyio/postgres-flex:<major>). None when Fly does not say (Managed Postgres, no machines, an odd tag):
    the server is then asked through the tunnel."""
    if settings.pg_flavor != "flex":
        return None
    r = executor.run(postgres_commands.image_show(settings, settings.db_app), check=False)
    if not r.ok:
        return None
    try:
        machines = json.loads(r.stdout or "[]")
    except ValueError:
        return None
    majors = set()
    for m in machines if isinstance(machines, list) else []:
        repo, tag = str(m.get("Repository", "")), str(m.get("Tag", ""))
        if repo.endswith("postgres-flex") and (found := re.match(r"v?(\d{2})(?:\.|$)", tag)):
            majors.add(int(found.group(1)))
    return max(majors) if majors else None


def preflight(settings: Settings, executor: Executor, search: str | None = None) -> Client:
    """Refuse before any tunnel opens when no local client can dump the server Fly reports."""
    major = reported_major(settings, executor)
    return clients.require(major, search or clients.default_search(settings.pg_bindir))


class ConnectFailed(UserError):
    """A wrong password, a refusal, or a closed connection (`kind`), already said in one sentence."""

    def __init__(self, message: str, *, fix: str = "", kind: str = "") -> None:
        super().__init__(message, fix=fix)
        self.kind = kind


@contextmanager
def connect(settings: Settings, executor: Executor, endpoint: Endpoint, *, dbname: str | None = None,
            password: str | None = None, search: str | None = None) -> Iterator[Server]:
    """Open the endpoint, hand the password over in memory, probe the server; everything closed afterwards.

    A cached password that the server refuses is fetched from Fly once more (it may have been rotated)."""
    with _logged_in(settings, executor, endpoint, dbname, password) as attempt:
        yield attempt(lambda conn, source: probe(executor, conn, search=search, settings=settings, source=source))


@contextmanager
def connect_in_snapshot(settings: Settings, executor: Executor, endpoint: Endpoint, workdir: Path, *,
                        password: str | None = None, password_from: str = "caller",
                        search: str | None = None) -> Iterator[tuple[Server, Snapshot]]:
    """`connect` and `snapshot` in one psql session: it reports the server's version, then opens the snapshot
    pg_dump is to dump, so pg_dump starts after one connection, not two. `password_from` names where a given
    password came from, for the message when the server refuses it (pgerrors.explain)."""
    search = search or clients.default_search(settings.pg_bindir)
    any_client = clients.newest(search, need=("psql", "pg_dump"))
    with _logged_in(settings, executor, endpoint, None, password, password_from) as attempt, ExitStack() as held:
        snap = attempt(lambda conn, source: held.enter_context(snapshot(
            executor, any_client, conn, workdir, first=VERSION_SQL, settings=settings, source=source)))
        yield _server(snap.conn, snap.version_num, snap.version, search), snap


@contextmanager
def _logged_in(settings: Settings, executor: Executor, endpoint: Endpoint, dbname: str | None,
               password: str | None,
               password_from: str = "caller") -> Iterator[Callable[[Callable[[Conn, str], T]], T]]:
    """The endpoint open and a login ready; yields `attempt(first)`, which runs `first(conn, source)` and, when
    the server refuses a cached password, fetches it from Fly once more and runs `first` again."""
    login = credentials.Login(settings.db_user, password, password_from) if password is not None else \
        credentials.login(settings, executor)
    with endpoint() as (host, port), ExitStack() as stack:
        def attempt(first: Callable[[Conn, str], T]) -> T:
            nonlocal login
            for n in (1, 2):
                pf = stack.enter_context(credentials.pgpass(login.user, login.password))
                conn = Conn(host, port, login.user, dbname or settings.db_name, passfile=pf.path, pass_fds=pf.fds)
                try:
                    return first(conn, login.source)
                except ConnectFailed as e:
                    if e.kind == "wrong_password" and login.source == "cache" and n == 1:
                        fresh = credentials.from_fly(settings, executor)
                        if fresh is not None and fresh.password != login.password:
                            login = fresh
                            continue
                    raise
            raise AssertionError("unreachable")

        yield attempt


# How many ordinary tables there are (a catalog read: instant), and the newest Ecto migration (when the
# database has Ecto's schema_migrations table), for the manifest and the restore drill.
TABLES_SQL = """\
SELECT 'TABLES ' || count(*) FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
  WHERE c.relkind = 'r' AND ns.nspname NOT IN ('pg_catalog', 'information_schema')
    AND ns.nspname NOT LIKE 'pg_toast%' AND ns.nspname NOT LIKE 'pg_temp%';
"""
NEWEST_MIGRATION_SQL = """\
SELECT 'MIGRATION ' || coalesce((SELECT (xpath('/row/v/text()', query_to_xml(
  'SELECT max(version)::text AS v FROM public.schema_migrations', false, true, '')))[1]::text
  WHERE to_regclass('public.schema_migrations') IS NOT NULL), '');
"""


VERSION_SQL = ("SELECT 'VERSION ' || current_setting('server_version_num') || ' ' || "
               "current_setting('server_version');\n")


@dataclass
class Snapshot:
    """The dump's snapshot: its id and table count at once; the row counts (read IN that snapshot, while
    pg_dump runs, so they cost no time before it starts) and the newest migration once `wait()` returns."""

    id: str
    tables: int
    bg: Background
    conn: Conn
    version_num: str = ""
    version: str = ""
    counts: dict[str, int] | None = None
    newest_migration: str | None = None

    def wait(self, timeout: float = 900) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while self.counts is None:
            try:
                line = self.bg.lines.get(timeout=max(0.01, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                line = None
            if line and line.startswith("MIGRATION "):
                self.newest_migration = line[len("MIGRATION "):].strip() or None
            elif line and line.startswith("ROWCOUNTS "):
                self.counts = parse_row_counts(line)
            elif (line == "" and not self.bg.alive) or time.monotonic() > deadline:
                tail = " ".join(x.strip() for x in self.bg.output[-2:]) or "no output"
                raise UserError(f"Counting the rows in the dump's snapshot failed: {tail}",
                                fix="run the backup again; nothing was kept.")
        return self.counts


@contextmanager
def snapshot(executor: Executor, client: Client, conn: Conn, workdir: Path, ready_timeout: float = 900, *,
             first: str = "", settings: Settings | None = None, source: str = "") -> Iterator[Snapshot]:
    """A REPEATABLE READ transaction held open while the caller dumps (see `Snapshot`); `first`: SQL run before
    it (the server's version). A psql that cannot connect is explained like `probe` explains it.

    psql reads its script from a FIFO we hold open, so the transaction lives until we send COMMIT. The
    row counts are asked for as soon as the snapshot exists: they run beside pg_dump, in the same snapshot.
    """
    fifo = workdir / f".snapshot-{os.getpid()}-{threading.get_ident()}.sql"
    os.mkfifo(fifo, 0o600)
    fd = os.open(fifo, os.O_RDWR)  # O_RDWR: neither side blocks, and psql sees no EOF while we hold it
    try:
        os.write(fd, (first + "SET lock_timeout = '60s';\n"
                      "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n" + TABLES_SQL +
                      "SELECT 'SNAPSHOT ' || pg_export_snapshot();\n").encode())
        try:
            bg = executor.spawn(commands.psql_script_session(client, conn, fifo), ready=r"^SNAPSHOT ",
                                ready_timeout=ready_timeout)
        except CommandFailed as e:
            raise connect_error(e.message, conn, settings, source) from None
        with bg:
            text = "\n".join(bg.output)
            m, tables = re.search(r"^SNAPSHOT (\S+)", text, re.M), re.search(r"^TABLES (\d+)", text, re.M)
            if m is None or tables is None:
                raise UserError("psql did not report a snapshot id.", fix="try again; report it if it repeats.")
            version = re.search(r"^VERSION (\d+) (.*)$", text, re.M)
            os.write(fd, (NEWEST_MIGRATION_SQL + ROW_COUNTS_SQL).encode())
            num, said = version.groups() if version else ("", "")
            yield Snapshot(m.group(1), int(tables.group(1)), bg, conn, num, said)
            os.write(fd, b"COMMIT;\n\\q\n")
    finally:
        os.close(fd)
        fifo.unlink(missing_ok=True)
