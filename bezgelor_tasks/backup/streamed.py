"""The watcher's backup as one stream: pg_dump's archive is hashed, verified, sealed and uploaded while it is dumped.

    pg_dump -Fc (stdout) ─┬─ sha256 of the archive (the manifest's)
                          ├─ pg_restore -l            (the table of contents has every table's data)
                          ├─ pg_restore -f /dev/null  (a full read: truncation, corruption)
                          └─ age (pyrage) ─ multipart upload (parts sent while the rest is still being dumped)

Nothing of the archive touches the disk and no stage waits for the one before it to finish. The object appears
only after pg_dump exited cleanly, the row counts were read in its snapshot and both reads passed (the standard
tier, on the very bytes that were sealed); then its manifest, then the record of that check. Any failure —
pg_dump, a reader, the store, Ctrl-C — stops every process and aborts the upload: nothing lists as a backup.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bezgelor_tasks.backup import backup, commands, crypto, manifest, offsite, session, verify
from bezgelor_tasks.backup.multipart import MultipartWriter
from bezgelor_tasks.backup.session import Endpoint
from bezgelor_tasks.backup.store import Store
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI

ARCHIVE = "dump.pgc"
PIPE_DEPTH = 1 << 20   # bytes the dump may run ahead of the sealing
FEED_DEPTH = 32 << 20  # bytes the full read may run behind the dump (it yields the CPU to pg_dump: READER_NICE)
READER_NICE = 10
PIPE_READ = 64 << 10   # what one read of pg_dump's stdout gives at most (a pipe's default capacity)


@dataclass
class Streamed:
    name: str
    key: str
    size: int               # the archive's bytes (what pg_restore reads)
    row_counts: dict[str, int]
    seconds: float


class _Feed:
    """One reader's stdin, written by its own thread from a queue: a reader that runs behind (it runs at a lower
    priority) holds up to FEED_DEPTH bytes, not the dump; one that left early (pg_restore -l) is skipped."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=FEED_DEPTH // PIPE_READ)
        self.thread = threading.Thread(target=self._run, name="feed", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        open_ = True
        while (chunk := self.chunks.get()) is not None:
            if open_:
                try:
                    self.reader.stdin.write(chunk)
                except (BrokenPipeError, ValueError, OSError):   # it has read all it wanted
                    open_ = False
        self.reader.close_stdin()


class _Fanout:
    """pg_dump's stdout, read in one thread, handed to the hash, the readers and the sealing pipe."""

    def __init__(self, dump: Any, readers: list[Any], sink_fd: int) -> None:
        self.dump, self.feeds, self.sink_fd = dump, [_Feed(r) for r in readers], sink_fd
        self.sha256, self.size = hashlib.sha256(), 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="dump-fanout", daemon=True)

    def _run(self) -> None:
        try:
            with os.fdopen(self.sink_fd, "wb", buffering=0) as sink:
                for chunk in iter(lambda: self.dump.stdout.read1(crypto.BLOCK), b""):
                    self.sha256.update(chunk)
                    self.size += len(chunk)
                    for feed in self.feeds:
                        feed.chunks.put(chunk)
                    sink.write(chunk)
        except BaseException as e:  # noqa: BLE001 - the sealing side left (its own error is the one said)
            self.error = e
        finally:
            for feed in self.feeds:
                feed.chunks.put(None)


def dump_offsite(settings: Settings, executor: Executor, ui: UI, store: Store, *, endpoint: Endpoint,
                 password: str | None, release_version: Callable[[], str | None] | str | None,
                 now: datetime | None = None, search: str | None = None,
                 password_from: str = "caller") -> Streamed | None:
    """Dump, verify, seal and upload in one pass (module doc). None under dry-run (nothing is uploaded)."""
    seal = crypto.sealing(settings)   # fail closed before anything starts
    started, when = time.monotonic(), now or datetime.now(UTC)
    name = f"{manifest.stamp(when)}_{settings.db_app}_{settings.db_name}"
    key = offsite.object_key(store, name, ARCHIVE + seal.suffix)
    if executor.dry_run:   # no session on the database, no client for the bucket: the plan only
        ui.info(f"dry run: would dump {settings.db_name} next to it, verify it while it streams, "
                f"{'seal it with age and ' if seal.encrypted else ''}upload it to {store.where.url(key)}")
        return None
    store.warm()   # boto3's import and client are built while psql connects and pg_dump starts
    if not seal.encrypted:
        ui.warn(f"uploading {name} UNENCRYPTED (BEZGELOR_OFFSITE_PLAINTEXT=yes)")
    workdir = Path(tempfile.mkdtemp(prefix="bezgelor-stream-"))   # the snapshot's FIFO, nothing of the archive
    try:
        with session.connect_in_snapshot(settings, executor, endpoint, workdir, password=password,
                                         password_from=password_from, search=search) as (server, snap):
            ui.info(f"PostgreSQL {server.version} on {settings.db_app}; using pg_dump {server.client.major}; "
                    f"streaming to {store.where.url(key)}")
            run = _Run(settings, executor, server, snap, seal)
            run.start()
            try:
                writer = store.upload_stream(key, run.produce, before_complete=run.check)
            finally:
                run.stop()   # (a no-op when everything finished)
            if writer is None:
                return None
        verified = {"tier": "standard", "ok": True, "problems": [], "seconds": round(time.monotonic() - started, 3),
                    "note": "verified from the dump's own stream before the upload was completed"}
        data = backup.manifest_data(settings, when, server, snap, release_version, "custom", ARCHIVE,
                                    {ARCHIVE: {"size": run.fanout_size, "sha256": run.archive_sha256}})
        offsite.finish_upload(store, ui, name, data, key, writer, seal, verified)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    counts = snap.counts or {}
    return Streamed(name, key, run.fanout_size, counts, time.monotonic() - started)


class _Run:
    """One streamed dump: `produce` feeds the upload, `check` decides whether the object may appear."""

    def __init__(self, settings: Settings, executor: Executor, server: session.Server, snap: session.Snapshot,
                 seal: crypto.Sealing) -> None:
        self.settings, self.executor, self.server, self.snap, self.seal = settings, executor, server, snap, seal
        self.procs: list[Any] = []
        self.fanout: _Fanout | None = None
        self.read_fd, self.sealing_started = -1, False
        self.fanout_size, self.archive_sha256 = 0, ""

    def start(self) -> None:
        """pg_dump, its two readers, and the fan-out between them (it waits on the sealing pipe until `produce`)."""
        client, ex = self.server.client, self.executor
        try:
            dump = ex.piped(commands.pg_dump(client, self.server.conn, None, snapshot=self.snap.id,
                                             timeout=self.settings.command_timeout_s), read=True)
            self.procs.append(dump)
            readers = [ex.piped(commands.pg_restore_list(client, None), feed=True),
                       ex.piped(commands.pg_restore_read_all(client, None), feed=True, nice=READER_NICE)]
            self.procs += readers
            self.read_fd, write_fd = os.pipe()
            with contextlib.suppress(OSError):   # a deeper pipe (Linux): the dump runs ahead while S3 is reached
                fcntl.fcntl(write_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_DEPTH)
            self.fanout = _Fanout(dump, readers, write_fd)
            self.fanout.thread.start()
        except BaseException:
            self.stop()
            raise

    def produce(self, writer: MultipartWriter) -> None:
        try:
            self.sealing_started = True
            crypto.seal_in_thread(lambda: os.fdopen(self.read_fd, "rb", buffering=crypto.BLOCK), writer, self.seal)
        except BaseException:
            self.stop()
            raise

    def check(self) -> None:
        """Everything the object's appearance depends on; raising here aborts the upload."""
        try:
            assert self.fanout is not None
            while self.fanout.thread.is_alive():
                self.fanout.thread.join(timeout=0.2)
            if self.fanout.error is not None:
                raise self.fanout.error
            dump, toc, read_all = self.procs
            result = dump.finish()
            if not result.ok:
                raise backup.dump_failure(self.settings, result, self.server.conn.user)
            counts = self.snap.wait()
            problems = verify.toc_problems(toc.finish(), counts) + verify.read_problems(read_all.finish())
        except BaseException:
            self.stop()
            raise
        if problems:
            raise UserError("The dump failed its verification while it streamed, so it was not uploaded (the "
                            "unfinished upload was aborted).", detail="\n".join(f"- {p}" for p in problems),
                            fix="run the backup again; if it fails again, check the database (`inv db.backup`).")
        self.fanout_size, self.archive_sha256 = self.fanout.size, self.fanout.sha256.hexdigest()

    def stop(self) -> None:
        if self.read_fd >= 0 and self.fanout is not None and not self.sealing_started:
            with contextlib.suppress(OSError):
                os.close(self.read_fd)   # the fan-out's pipe was never handed to the sealing thread
        for proc in self.procs:
            proc.stop()
        for proc in self.procs:
            proc.finish(timeout=2)
