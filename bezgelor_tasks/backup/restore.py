"""`inv db.restore -b BACKUP --target local|app`: all or nothing, both ways.

local — into a named database on a local PostgreSQL (libpq's PGHOST/PGPORT/PGUSER/PGPASSWORD apply),
        which must be new or empty. The backup is restored (`pg_restore -j`) into a temporary database,
        its row counts are checked there, and only then is it renamed to the name asked for: a restore that
        fails leaves no database behind (the temporary one is dropped) and an existing empty one untouched.
app   — into the Fly database through `fly proxy`, only after the user types the database app's name
        (or `--yes --confirm-app NAME`), only after a fresh backup of what is there now, and in one
        transaction that ends with exactly the backup's rows or changes nothing (atomic_restore.py).

Both: the archive is checked (sha256 + table of contents) first. A damaged backup is marked failed in its
manifest *before* that is reported (and `db.backups` then shows it failed); when a restore fails, a full
read of the archive tells a damaged backup from a server-side error. Every failure says what was and was
not changed, and a dry run restores nothing (it shows the commands and reads what it needs to).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

from bezgelor_tasks.backup import atomic_restore, commands, session, verify
from bezgelor_tasks.backup import backup as backup_mod
from bezgelor_tasks.backup.commands import Conn
from bezgelor_tasks.backup.manifest import Backup
from bezgelor_tasks.backup.session import Endpoint
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.processes import cleanup_after_interrupt
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI, confirm


def local_conn(database: str) -> Conn:
    """A local server as libpq would find it (PGHOST, PGPORT, PGUSER; the socket directory by default)."""
    return Conn(os.environ.get("PGHOST", "/var/run/postgresql"), int(os.environ.get("PGPORT", "5432")),
                os.environ.get("PGUSER", "postgres"), database)


def confirm_target(settings: Settings, *, yes: bool, confirm_app: str | None,
                   ask: Callable[[str], str] | None = None) -> None:
    """The user types the database app's name (or passes `--yes --confirm-app NAME`)."""
    name = settings.db_app
    if yes:
        if confirm_app != name:
            raise UserError(f"--yes restores into {name} only together with --confirm-app {name} "
                            f"(got {confirm_app or 'nothing'}).",
                            fix=f"add `--confirm-app {name}` after checking that this is the right database.")
        return
    question = f"This replaces the data in the Fly database {name}. Type its name to continue:"
    if ask is not None:
        typed_ok = ask(question + " ").strip() == name
    else:
        typed_ok = confirm(question, expect=name, no_terminal=UserError(
            f"Restoring into {name} replaces its data and needs a confirmation, and there is no terminal to ask on; "
            "nothing was restored.", fix=f"pass `--yes --confirm-app {name}` (or --dry-run to see the plan)."))
    if not typed_ok:
        raise UserError(f"The name typed was not {name!r}: nothing was restored.", fix="run again and type the name.")


def restore(settings: Settings, executor: Executor, ui: UI, b: Backup, *, target: str,
            database: str | None = None, yes: bool = False, confirm_app: str | None = None,
            jobs: int = 2, endpoint: Endpoint | None = None, password: str | None = None,
            ask: Callable[[str], str] | None = None, search: str | None = None) -> dict[str, Any]:
    if target not in ("local", "app"):
        raise UserError(f"Unknown restore target {target!r}.", fix="use --target local or --target app.")
    if b.last_verification is not None and not b.verified:
        raise UserError(f"Backup {b.name} failed its last verification ({'; '.join(b.last_verification['problems'])}); "
                        "nothing was restored.",
                        fix="choose another backup (`inv db.backups` shows which are verified).")
    quick = verify.verify(executor, ui, b, "quick", record=False, search=search)
    if not quick["ok"]:
        recorded = b.record_verification(executor, quick)  # on disk before it is said
        verify.require_ok(b, quick, recorded=recorded, nothing="nothing was restored")
    if target == "local":
        db = database or f"{settings.db_name}_restored"
        actual = restore_local(settings, executor, ui, b, local_conn(db), jobs=jobs, search=search)
        fresh = None
    else:
        if not executor.dry_run:  # a dry run changes nothing: there is nothing to confirm
            confirm_target(settings, yes=yes, confirm_app=confirm_app, ask=ask)
        elif yes:
            confirm_target(settings, yes=yes, confirm_app=confirm_app)  # a wrong name is refused all the same
        db = settings.db_name
        fresh, actual = _restore_app(settings, executor, ui, b, endpoint=endpoint, password=password, search=search)
    if executor.dry_run:
        ui.info(f"dry run: nothing was restored; {db} is as it was.")
        return {"backup": b.name, "target": target, "database": db, "dry_run": True, "row_counts": None,
                "problems": [], "fresh_backup": None}
    problems = verify.compare_counts(b.row_counts, actual)
    report = {"backup": b.name, "target": target, "database": db, "row_counts": actual, "problems": problems,
              "fresh_backup": fresh.name if fresh else None, "dry_run": False}
    if problems:
        ui.error("row counts differ from the manifest: " + "; ".join(problems))
    else:
        ui.ok(f"restored {b.name} into {db}: {len(actual)} tables, {sum(actual.values())} rows, "
              "every count matches the manifest")
    return report


def _restore_app(settings: Settings, executor: Executor, ui: UI, b: Backup, *, endpoint: Endpoint | None,
                 password: str | None, search: str | None) -> tuple[Any, dict[str, int]]:
    """A fresh backup of what is there, then the one-transaction restore. (fresh backup, row counts)."""
    ui.info(f"taking a fresh backup of {settings.db_app} before replacing its data")
    try:
        fresh = backup_mod.create_backup(settings, executor, ui, endpoint=endpoint, password=password,
                                         search=search)
    except UserError as e:
        raise UserError(f"The fresh backup before the restore failed, so nothing was restored: {e.message}",
                        fix=e.fix, detail=f"{settings.db_app} is as it was.") from None
    endpoint = endpoint or session.fly_endpoint(settings, executor)
    with session.connect(settings, executor, endpoint, password=password, search=search) as server:
        kept = f"backup {fresh.name} (taken just now) also holds the data as it is" if fresh else ""
        try:
            atomic_restore.restore(executor, verify.restore_client(b, search), server, b,
                                   timeout=settings.command_timeout_s,
                                   fix=f"fix the cause and run the restore again; {kept}." if kept else
                                   "fix the cause and run the restore again.")
        except UserError as e:
            raise _if_damaged(executor, ui, b, e, search) from None
        actual = {} if executor.dry_run else session.fetch_row_counts(executor, server.client, server.conn)
    return fresh, actual


def restore_local(settings: Settings, executor: Executor, ui: UI, b: Backup, conn: Conn, *, jobs: int,
                  search: str | None) -> dict[str, int]:
    """Restore into a temporary database, check it, then rename it to `conn.dbname`; returns the row counts.
    Any failure drops the temporary database: the target is as it was (absent, or empty)."""
    server = session.probe(executor, conn.with_db("postgres"), search=search)
    exists = executor.run(commands.psql(server.client, server.conn,
                                        f"SELECT 1 FROM pg_database WHERE datname = '{_lit(conn.dbname)}';",
                                        purpose="does the database exist", mutates=False)).stdout.strip()
    if exists:
        tables = session.fetch_row_counts(executor, server.client, conn)
        if tables:
            raise UserError(f"The local database {conn.dbname} already has {len(tables)} tables; restoring into it "
                            "would mix two databases. Nothing was restored.",
                            fix="pick a new name with --database NAME, or drop it first.")
    temp = f"{conn.dbname[:40]}_restoring_{secrets.token_hex(3)}"

    def sql(text: str, purpose: str) -> None:
        executor.run(commands.psql(server.client, server.conn, text, purpose=purpose))

    sql(f'CREATE DATABASE "{_ident(temp)}";', f"create the temporary database {temp}")
    renamed = False
    try:
        r = executor.run(commands.pg_restore(verify.restore_client(b, search), conn.with_db(temp), b.archive,
                                             jobs=jobs, timeout=settings.command_timeout_s), check=False)
        if not r.ok:
            why = " ".join((r.stderr.strip() or r.stdout.strip()).splitlines()[-2:]) or f"exit {r.returncode}"
            raise _if_damaged(executor, ui, b, UserError(
                f"The restore into {conn.dbname} stopped at the first error ({why}). Nothing was changed: the "
                f"temporary database {temp} was dropped and {conn.dbname} "
                + ("is as it was (empty)." if exists else "was not created."),
                fix="fix the error and run the restore again."), search)
        actual = {} if executor.dry_run else session.fetch_row_counts(executor, server.client, conn.with_db(temp))
        problems = [] if executor.dry_run else verify.compare_counts(b.row_counts, actual)
        if problems:
            raise UserError(f"The restored row counts differ from the backup's manifest; nothing was changed: "
                            f"the temporary database {temp} was dropped.",
                            detail="\n".join(f"- {p}" for p in problems),
                            fix="verify the backup (`inv db.verify-backup`) and restore another one.")
        if exists:
            sql(f'DROP DATABASE "{_ident(conn.dbname)}";', f"drop the empty database {conn.dbname}")
        sql(f'ALTER DATABASE "{_ident(temp)}" RENAME TO "{_ident(conn.dbname)}";',
            f"rename {temp} to {conn.dbname}")
        renamed = True
        return actual
    finally:
        if not renamed and not executor.dry_run:
            with cleanup_after_interrupt():
                executor.run(commands.psql(server.client, server.conn, f'DROP DATABASE IF EXISTS "{_ident(temp)}";',
                                           purpose=f"drop the temporary database {temp}"), check=False)


def _if_damaged(executor: Executor, ui: UI, b: Backup, error: UserError, search: str | None) -> UserError:
    """After a failed restore: is the backup itself damaged? A full read of the archive tells. If it is,
    the failure goes into its manifest before it is reported, and the error says so."""
    if executor.dry_run:
        return error
    check = verify.verify(executor, ui, b, "standard", record=False, search=search)
    if check["ok"]:
        return error
    recorded = b.record_verification(executor, check)
    marked = "it is now marked as failed in its manifest" if recorded else "its manifest could not be updated"
    return UserError(f"Backup {b.name} is damaged ({'; '.join(check['problems'])}); {marked}. {error.message}",
                     fix="restore another backup (`inv db.backups` lists the verified ones).")


def _lit(s: str) -> str:
    return s.replace("'", "''")


def _ident(s: str) -> str:
    return s.replace('"', '""')
