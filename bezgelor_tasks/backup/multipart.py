"""A multipart upload fed as a stream: parts are cut from what is written and uploaded by a small pool while the
writer goes on; nothing is visible in the bucket until `complete()`.

Each part's md5 is computed in the worker that sends it (hashlib releases the GIL: the hashing runs beside the
encryption) and compared with the ETag the server answers for that part; the sha256 of the whole object (for the
manifest) is computed in order by one more thread. A failed part, a failure of whoever writes, or Ctrl-C ends in
`abort()`: an unfinished multipart upload is never listed as an object (and `db.prune` aborts any that an abort
could not reach, e.g. with the server gone). The caller completes the upload only once everything it must check
(the dump's exit, its verification) has passed: verified before it counts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

from bezgelor_tasks.errors import UserError

MIN_PART = 5 << 20            # S3's smallest part but the last: the first part is this small, so sending starts early
ABORT_WAIT = 1.0             # seconds an abort may hold the caller (Ctrl-C within a second)
# An ETag that is an md5: of the bytes (a part, a single PUT), or of the parts' md5s with their count ("…-3");
# other services (SSE-KMS, some providers) answer something else, and are read back instead (store.py).
MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-\d+)?$")
Call = Callable[[str, Callable[[], Any]], Any]   # Store.call: one S3 call, its failure one clear UserError


class Pace:
    """At most `rate` bytes a second over every part being sent (BEZGELOR_OFFSITE_MAX_MBPS)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.lock, self.next_free = rate, threading.Lock(), time.monotonic()

    def take(self, n: int) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_free)
            self.next_free = start + n / self.rate
        if start > now:
            time.sleep(start - now)


class PacedBody(io.BytesIO):
    """A part's bytes, read (sent) no faster than the pace. (Payloads are not hashed to be signed: the store's
    client sends Content-MD5 instead, so every read is the send.)"""

    def __init__(self, data: bytes, pace: Pace) -> None:
        super().__init__(data)
        self.pace = pace

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if data:
            self.pace.take(len(data))
        return data


def _succeeded(future: Future[None]) -> bool:
    try:
        return future.exception() is None
    except CancelledError:   # an abandoned upload
        return False


class MultipartWriter:
    """`write()` bytes, then `close()` (every part sent and checked), then `complete()` or `abort()`."""

    def __init__(self, client: Callable[[], Any], bucket: str, key: str, call: Call, *, part_size: int,
                 concurrency: int, max_bytes_per_s: float = 0) -> None:
        """`client()` gives the S3 client: asked for in the pool, so writing (sealing, cutting parts) starts while
        it is still being built (boto3's import takes a few tenths of a second)."""
        self.client, self.bucket, self.key, self.call = client, bucket, key, call
        self.part_size, self.concurrency = max(part_size, MIN_PART), concurrency
        self.pace = Pace(max_bytes_per_s) if max_bytes_per_s > 0 else None
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.etags: dict[int, str] = {}
        self.md5s: dict[int, bytes] = {}
        self.error: BaseException | None = None
        self._buf, self._fill = bytearray(min(MIN_PART, self.part_size)), 0   # the first part is the smallest
        self._free: list[bytearray] = []   # buffers of sent parts, filled again (list.append/pop are atomic)
        self._parts: list[Future[None]] = []
        self._slots = threading.Semaphore(concurrency)   # parts held in memory at once (backpressure)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3-part")
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")   # in order
        self._created: Future[str] = self._pool.submit(self._create)
        self.completed = False

    # -- feeding ---------------------------------------------------------------------------------------------
    def _create(self) -> str:
        return str(self.call(f"start the upload of {self.key}", lambda: self.client().create_multipart_upload(
            Bucket=self.bucket, Key=self.key))["UploadId"])

    def write(self, data: Any) -> int:
        """Copy `data` into the part being filled (one copy; a full part is sent as it is)."""
        self._raise_failed()
        view = memoryview(data).cast("B")
        while len(view):
            take = min(len(view), len(self._buf) - self._fill)
            self._buf[self._fill:self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == len(self._buf):
                self._send(self._buf)
                self._buf, self._fill = self._spare(), 0
        return len(data)

    def flush(self) -> None:
        """Nothing to flush before `close()`: parts are cut at their size."""

    def _send(self, part: bytearray) -> None:
        while not self._slots.acquire(timeout=0.2):   # every worker busy: wait, but notice a failure at once
            self._raise_failed()
        number = len(self._parts) + 1
        self.size += len(part)
        hashed = self._hasher.submit(self.sha256.update, part)
        self._parts.append(self._pool.submit(self._upload_part, number, part, hashed))

    def _spare(self) -> bytearray:
        """A part-sized buffer: one a sent part gave back, or a new one (reusing them spares the kernel zeroing
        fresh pages for every part, a tenth of the CPU an upload costs)."""
        try:
            return self._free.pop()
        except IndexError:
            return bytearray(self.part_size)

    def _upload_part(self, number: int, part: bytearray, hashed: Future[None]) -> None:
        try:
            if self.error is not None:
                return
            md5 = hashlib.md5(part, usedforsecurity=False)
            upload_id = self._created.result()
            body: Any = part if self.pace is None else PacedBody(bytes(part), self.pace)
            answer = self.call(f"upload part {number} of {self.key}", lambda: self.client().upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id, PartNumber=number, Body=body,
                ContentMD5=base64.b64encode(md5.digest()).decode()))   # the server refuses a damaged part
            etag = str(answer.get("ETag", "")).strip('"')
            if MD5_ETAG.match(etag) and etag != md5.hexdigest():
                raise UserError(f"Part {number} of {self.key} arrived damaged: the server's checksum (ETag {etag}) "
                                f"differs from what was sent ({md5.hexdigest()}).", fix="run the backup again.")
            self.etags[number], self.md5s[number] = etag, md5.digest()
        except BaseException as e:
            if self.error is None:
                self.error = e
            raise
        finally:
            if len(part) == self.part_size and _succeeded(hashed):   # sent and hashed: it may be filled again
                self._free.append(part)
            self._slots.release()

    def _raise_failed(self) -> None:
        if self.error is not None:
            raise self.error

    # -- ending ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Send what is left and wait (interruptibly) until every part is stored and checked."""
        if self._fill or not self._parts:
            self._send(self._buf[:self._fill])
            self._buf, self._fill = bytearray(), 0
        for f in self._parts:
            while True:
                try:
                    f.result(timeout=0.2)
                    break
                except TimeoutError:
                    self._raise_failed()
        self._raise_failed()
        self._hasher.shutdown(wait=True)

    def expected_etag(self) -> str:
        """What an S3 server answers for the whole object: md5 of the parts' md5s, a dash, the count."""
        parts = [self.md5s[n] for n in sorted(self.md5s)]
        return hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest() + f"-{len(parts)}"

    def complete(self) -> None:
        """Make the object appear (the store then checks what arrived, and removes it if it is damaged)."""
        upload_id = self._created.result()
        parts = [{"PartNumber": n, "ETag": f'"{self.etags[n]}"'} for n in sorted(self.etags)]
        self.call(f"finish the upload of {self.key}", lambda: self.client().complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=upload_id, MultipartUpload={"Parts": parts}))
        self.completed = True

    def abort(self) -> None:
        """Drop the unfinished upload (best effort, and bounded: a second at most, so Ctrl-C stays quick and a
        server that is gone does not hold us; `db.prune` aborts what this could not reach)."""
        if self.error is None:
            self.error = UserError("The upload was abandoned.", fix="run the backup again.")
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._hasher.shutdown(wait=False, cancel_futures=True)
        if self.completed:
            return

        def drop() -> None:
            try:
                upload_id = self._created.result(timeout=0.5)
                self.client().abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
            except Exception:  # noqa: BLE001 - the server may be gone: prune aborts stale uploads later
                pass

        dropping = threading.Thread(target=drop, name="s3-abort", daemon=True)
        dropping.start()
        dropping.join(timeout=ABORT_WAIT)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)
        self._hasher.shutdown(wait=False)
