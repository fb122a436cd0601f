"""`inv db.backup`: pg_dump through the tunnel into a temporary name, then the manifest, then the rename.

A backup directory gets its final name only after the archive and manifest are complete and fsynced,
so a killed, failed or disk-full backup leaves at most a `.partial-*` directory (removed on every exit
path we control, and by `db.prune` otherwise). Existing backups are never overwritten.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bezgelor_tasks import files
from bezgelor_tasks.backup import clients, commands, manifest, pgerrors, session
from bezgelor_tasks.backup.session import Endpoint
from bezgelor_tasks.command import Command, Result
from bezgelor_tasks.errors import CommandFailed, UserError
from bezgelor_tasks.fly import postgres_commands
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI


@dataclass
class BackupResult:
    name: str
    path: Path
    size: int
    row_counts: dict[str, int]
    server_version: str
    pg_dump_major: int
    seconds: float
    format: str
    verification: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def _fsync_tree(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def dump_failure(settings: Settings, result: Result, user: str = "") -> UserError:
    """Turn pg_dump's failure into what happened and what to do."""
    err = (result.stderr or "") + (result.stdout or "")
    low = err.lower()
    said = pgerrors.explain(err, settings, user=user or settings.db_user)
    if said is not None and said.kind != "refused":
        return UserError(f"The backup failed: {said.sentence} Nothing was kept: no partial backup is left "
                         "that could pass for a complete one.", fix=said.fix)
    if result.returncode >= 128 and "killed by signal" in low:
        why, fix = "pg_dump was killed before it finished", "run `inv db.backup` again."
    elif "no space left" in low:
        why, fix = "the disk holding the backups is full", (
            f"free space under {settings.backups_path} (`inv db.prune`), or point BEZGELOR_BACKUP_DIR at a "
            "bigger disk, then run `inv db.backup` again.")
    elif "lock" in low and "timeout" in low:
        why, fix = "pg_dump waited too long for a table lock (a migration or long transaction holds it)", \
            "run the backup again when the migration has finished."
    elif "connection" in low or "server closed" in low or "could not receive" in low or "eof" in low:
        why, fix = "the connection to the database dropped during the dump (the `fly proxy` tunnel closed)", (
            f"check `fly status -a {settings.db_app}` and your network, then run `inv db.backup` again.")
    else:
        why, fix = f"pg_dump exited {result.returncode}", "read pg_dump's message above, fix it, and run again."
    tail = " ".join(err.strip().splitlines()[-2:]) or "no output"
    return UserError(f"The backup failed: {why} ({tail}). Nothing was kept: no partial backup is left "
                     "that could pass for a complete one.", fix=fix)


@contextmanager
def _nothing_kept_on_failure(root: Path) -> Iterator[None]:
    """A backup that fails says why and that nothing was kept (the caller removes the partial folder)."""
    try:
        yield
    except OSError as e:
        raise UserError(f"Writing the backup under {root} failed: {e.strerror or e}. Nothing was kept.",
                        fix="free space or fix permissions there (or set BEZGELOR_BACKUP_DIR), then run again.") \
            from None
    except CommandFailed as e:
        raise UserError(f"The backup failed: {e.message} Nothing was kept.", fix=e.fix or "run it again.") from None


def create_backup(settings: Settings, executor: Executor, ui: UI, *, endpoint: Endpoint | None = None,
                  jobs: int = 1, release_version: str | None | Callable[[], str | None] = None,
                  now: datetime | None = None,
                  search: str | None = None, password: str | None = None,
                  skip_empty: bool = False, before_dump: Callable[[], None] | None = None) -> BackupResult | None:
    """Dump the database into a new backup directory; None (nothing written) if `skip_empty` and no tables,
    or under a dry run (which shows the commands and writes nothing).

    Through Fly, a server newer than every local pg_dump is refused before any tunnel opens. `before_dump` runs
    once the snapshot is open, just before pg_dump starts (checks that ran beside the tunnel: what raises there
    stops the backup with nothing kept)."""
    if executor.dry_run:
        show_plan(settings, ui, jobs)
        return None
    search = search or clients.default_search(settings.pg_bindir)
    if endpoint is None:
        session.preflight(settings, executor, search)
    endpoint = endpoint or session.fly_endpoint(settings, executor)
    root = settings.backups_path
    started = time.monotonic()
    when = now or datetime.now(UTC)
    base_name = f"{manifest.stamp(when)}_{settings.db_app}_{settings.db_name}"
    _make_backups_dir(executor, root)
    partial = root / f"{manifest.PARTIAL_PREFIX}{base_name}-{secrets.token_hex(3)}"
    fmt, archive_name = ("directory", "dump.dir") if jobs > 1 else ("custom", "dump.pgc")
    try:
        with _nothing_kept_on_failure(root):
            files.make_dir(executor, partial, mode=0o700)
            with session.connect_in_snapshot(settings, executor, endpoint, partial, search=search,
                                             password=password) as (server, snap):
                ui.info(f"PostgreSQL {server.version} on {settings.db_app}; using pg_dump {server.client.major}")
                if skip_empty and not snap.tables:
                    ui.info(f"{settings.db_app}/{settings.db_name} has no tables yet: nothing to back up")
                    return None
                if before_dump is not None:
                    before_dump()
                _dump(settings, executor, server, snap.id, partial / archive_name, jobs)
                snap.wait()
            digests = manifest.file_digests(partial / archive_name, partial)
            data = manifest_data(settings, when, server, snap, release_version, fmt, archive_name, digests)
            manifest.write(executor, partial, data)
            _fsync_tree(partial)
            final = _unused_path(root, base_name)
            files.rename(executor, partial, final)
    except session.DatabaseMissing:
        if skip_empty:
            ui.info(f"database {settings.db_name} does not exist on {settings.db_app} yet: nothing to back up")
            return None
        raise
    finally:
        if partial.exists():
            files.remove(executor, partial)
    size = sum(f["size"] for f in digests.values())
    counts = snap.counts or {}
    ui.ok(f"backup {final.name}: {size / 1e6:.1f} MB, {sum(counts.values())} rows in {len(counts)} tables")
    return BackupResult(final.name, final, size, counts, server.version, server.client.major,
                        time.monotonic() - started, fmt)


def _make_backups_dir(executor: Executor, root: Path) -> None:
    try:
        files.make_dir(executor, root)
    except OSError as e:
        raise UserError(f"Cannot create the backup directory {root}: {e.strerror}.",
                        fix="set BEZGELOR_BACKUP_DIR to a writable directory.") from None


def _dump(settings: Settings, executor: Executor, server: session.Server, snapshot_id: str, archive: Path,
          jobs: int) -> None:
    """pg_dump in the snapshot; a pg_dump built without zstd (rare) dumps again with gzip, which every build has."""
    cmd = commands.pg_dump(server.client, server.conn, archive, jobs=jobs,
                           snapshot=snapshot_id, timeout=settings.command_timeout_s)
    result = executor.run(cmd, check=False)
    if not result.ok and "does not support compression" in result.stderr:
        files.remove(executor, archive)
        cmd = commands.pg_dump(server.client, server.conn, archive, jobs=jobs,
                               snapshot=snapshot_id, compress=commands.compression(server.client, "gzip"),
                               timeout=settings.command_timeout_s)
        result = executor.run(cmd, check=False)
    if not result.ok:
        raise dump_failure(settings, result, server.conn.user)


def _unused_path(root: Path, base_name: str) -> Path:
    """Never overwrite: a second backup in the same second gets a suffix."""
    final = root / base_name
    n = 1
    while final.exists():
        n += 1
        final = root / f"{base_name}-{n}"
    return final


def manifest_data(settings: Settings, when: datetime, server: session.Server, snap: session.Snapshot,
                  release_version: str | None | Callable[[], str | None], fmt: str, archive_name: str,
                  digests: dict[str, Any]) -> dict[str, Any]:
    """What a backup's manifest says (a local one, and the off-site one a streamed backup writes)."""
    return {
        "format_version": manifest.FORMAT_VERSION,
        "app": settings.app,
        "db_app": settings.db_app,
        "database": settings.db_name,
        "release_version": release_version() if callable(release_version) else release_version,  # read late
        "created_at": when.isoformat(),
        "pg_dump_version": server.client.major,
        "server_version": server.version,
        "format": fmt,
        "archive": archive_name,
        "files": digests,
        "row_counts": snap.counts,
        "newest_migration": snap.newest_migration,
        "verifications": [],
    }


def current_release(settings: Settings, executor: Executor) -> str | None:
    """The app's live release version (for the manifest), or None when it cannot be read."""
    try:
        version = FlyClient(settings, executor).status(settings.app).version
    except UserError:  # no app yet, or not logged in: the backup is still worth having
        return None
    return None if version is None else str(version)


def predeploy_backup(settings: Settings, executor: Executor, ui: UI,
                     release_version: str | None) -> BackupResult | None:
    """deploy.full's backup slot: back up when the database has tables, verify (standard), prune.

    Returns None when the database does not exist or has no tables yet (first deploy), and under
    dry-run (after printing the commands). Needs `fly` logged in; the password comes from the
    environment, the `.bezgelor/<db_app>.password` cache, or Fly itself (credentials.py). Raises
    UserError when the backup or its verification fails: the deploy should stop then, since it is
    about to run migrations.
    """
    from bezgelor_tasks.backup import prune as prune_mod
    from bezgelor_tasks.backup import verify as verify_mod

    result = create_backup(settings, executor, ui, release_version=release_version, skip_empty=True)
    if result is None:
        return None
    b = manifest.load(result.path)
    result.verification = verify_mod.verify(executor, ui, b, "standard", timeout=settings.command_timeout_s)
    verify_mod.require_ok(b, result.verification)
    prune_mod.prune(settings, ui, executor)
    return result


def show_plan(settings: Settings, ui: UI, jobs: int = 1) -> None:
    """What a backup would run, as a dry run shows it: `fly proxy` and psql would be real processes, so
    they are described, never started."""
    for cmd in describe(settings, jobs):
        ui.command(cmd.shown(), dry_run=True)
    ui.info(f"the backup would go to {settings.backups_path}/<time>_{settings.db_app}_{settings.db_name}/")


def describe(settings: Settings, jobs: int = 1) -> list[Command]:
    """What `inv db.backup` would run, for --dry-run (paths and ports are placeholders)."""
    try:  # the client a real run would start from (the server's major may still rule it out)
        client = clients.newest(clients.default_search(settings.pg_bindir), need=clients.DUMP_TOOLS)
    except UserError:
        client = clients.Client(settings.pg_create_major, Path(f"<PostgreSQL {settings.pg_create_major}+ bin>"))
    conn = commands.Conn("127.0.0.1", 0, settings.db_user, settings.db_name, passfile=Path("<temporary pgpass>"))
    archive = settings.backups_path / f"{manifest.PARTIAL_PREFIX}<time>" / ("dump.dir" if jobs > 1 else "dump.pgc")
    tunnel = postgres_commands.mpg_proxy(settings, "<cluster id>", 0) if settings.pg_flavor == "mpg" else \
        postgres_commands.proxy(settings, settings.db_app, 0)
    return [tunnel, commands.pg_dump(client, conn, archive, jobs=jobs, snapshot="<exported snapshot>")]
