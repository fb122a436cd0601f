"""`inv db.restore BACKUP --target local|app`.

local — into a named database on a local PostgreSQL (libpq's PGHOST/PGPORT/PGUSER/PGPASSWORD apply);
        the database must be new or empty.
app   — into the Fly database through `fly proxy`, only after the user types the database app's name
        (or `--yes --confirm-app NAME`), and only after a fresh backup of what is there now.
Both: the archive is checked (sha256 + table of contents) first. local: `pg_restore -j --exit-on-error`
into the new database. app: one transaction that ends with exactly the backup's rows or changes nothing
(atomic_restore.py). Then every table's row count is compared with the manifest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from bezgelor_tasks.backup import atomic_restore, commands, session, verify
from bezgelor_tasks.backup import backup as backup_mod
from bezgelor_tasks.backup.commands import Conn
from bezgelor_tasks.backup.manifest import Backup
from bezgelor_tasks.backup.session import Endpoint
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI


def local_conn(database: str) -> Conn:
    """A local server as libpq would find it (PGHOST, PGPORT, PGUSER; the socket directory by default)."""
    return Conn(os.environ.get("PGHOST", "/var/run/postgresql"), int(os.environ.get("PGPORT", "5432")),
                os.environ.get("PGUSER", "postgres"), database)


def confirm_target(settings: Settings, *, yes: bool, confirm_app: str | None,
                   ask: Callable[[str], str] | None = None) -> None:
    name = settings.db_app
    if yes:
        if confirm_app != name:
            raise UserError(f"--yes restores into {name} only together with --confirm-app {name} "
                            f"(got {confirm_app or 'nothing'}).",
                            fix=f"add `--confirm-app {name}` after checking that this is the right database.")
        return
    if ask is None:
        if not sys.stdin.isatty():
            raise UserError(f"Restoring into {name} replaces its data and needs a confirmation, and there is no "
                            "terminal to ask on.", fix=f"pass `--yes --confirm-app {name}`.")
        ask = input
    typed = ask(f"This replaces the data in the Fly database {name}. Type its name to continue: ").strip()
    if typed != name:
        raise UserError(f"You typed {typed!r}, not {name!r}: nothing was restored.", fix="run again and type the name.")


def restore(settings: Settings, executor: Executor, ui: UI, b: Backup, *, target: str,
            database: str | None = None, yes: bool = False, confirm_app: str | None = None,
            jobs: int = 2, endpoint: Endpoint | None = None, password: str | None = None,
            ask: Callable[[str], str] | None = None, search: str | None = None) -> dict[str, Any]:
    if target not in ("local", "app"):
        raise UserError(f"Unknown restore target {target!r}.", fix="use --target local or --target app.")
    if b.last_verification is not None and not b.verified:
        raise UserError(f"Backup {b.name} failed its last verification ({'; '.join(b.last_verification['problems'])}).",
                        fix="choose another backup (`inv db.backups` shows which are verified).")
    verify.require_ok(b, verify.verify(executor, ui, b, "quick", record=False, search=search))
    client = verify.restore_client(b, search)
    fresh = None
    if target == "local":
        db = database or f"{settings.db_name}_restored"
        conn = local_conn(db)
        _restore_local(executor, ui, b, conn, jobs=jobs, search=search, timeout=settings.command_timeout_s)
        actual = session.fetch_row_counts(executor, client, conn)
    else:
        confirm_target(settings, yes=yes, confirm_app=confirm_app, ask=ask)
        ui.info(f"taking a fresh backup of {settings.db_app} before replacing its data")
        fresh = backup_mod.create_backup(settings, executor, ui, endpoint=endpoint, password=password,
                                         search=search)
        assert fresh is not None  # skip_empty is off: a backup (maybe of an empty database) or an error
        endpoint = endpoint or session.fly_endpoint(settings, executor)
        with session.connect(settings, executor, endpoint, password=password, search=search) as server:
            atomic_restore.restore(
                executor, client, server, b, timeout=settings.command_timeout_s,
                fix=f"fix the cause and run the restore again; backup {fresh.name} (taken just now) also holds "
                    "the data as it is.")
            actual = session.fetch_row_counts(executor, server.client, server.conn)
            db = settings.db_name
    problems = verify.compare_counts(b.row_counts, actual)
    report = {"backup": b.name, "target": target, "database": db, "row_counts": actual, "problems": problems,
              "fresh_backup": fresh.name if fresh else None}
    if problems:
        ui.error("row counts differ from the manifest: " + "; ".join(problems))
    else:
        ui.ok(f"restored {b.name} into {db}: {len(actual)} tables, {sum(actual.values())} rows, "
              "every count matches the manifest")
    return report


def _restore_local(executor: Executor, ui: UI, b: Backup, conn: Conn, *, jobs: int, search: str | None,
                   timeout: float | None) -> None:
    server = session.probe(executor, conn.with_db("postgres"), search=search)
    exists = executor.run(commands.psql(server.client, server.conn,
                                        f"SELECT 1 FROM pg_database WHERE datname = '{_lit(conn.dbname)}';",
                                        purpose="does the database exist")).stdout.strip()
    if exists:
        tables = session.fetch_row_counts(executor, server.client, conn)
        if tables:
            raise UserError(f"The local database {conn.dbname} already has {len(tables)} tables; restoring into it "
                            "would mix two databases.", fix="pick a new name with --database NAME, or drop it first.")
    else:
        executor.run(commands.psql(server.client, server.conn, f'CREATE DATABASE "{_ident(conn.dbname)}";',
                                   purpose=f"create database {conn.dbname}", mutates=True))
    r = executor.run(commands.pg_restore(verify.restore_client(b, search), conn, b.archive, jobs=jobs,
                                         timeout=timeout), check=False)
    if not r.ok:
        raise UserError(f"The restore into {conn.dbname} stopped at the first error: "
                        f"{' '.join(r.stderr.strip().splitlines()[-2:])}",
                        fix=f"drop the half-restored database {conn.dbname}, fix the error, and run again.")


def _lit(s: str) -> str:
    return s.replace("'", "''")


def _ident(s: str) -> str:
    return s.replace('"', '""')
