"""The off-site store: any S3-compatible bucket, through boto3 (AWS S3, Tigris, R2, B2, MinIO, SeaweedFS...).

`BEZGELOR_OFFSITE_URL=s3://bucket/prefix`, `BEZGELOR_OFFSITE_ENDPOINT` for a non-AWS service, credentials from
the standard AWS_* variables (boto3's own chain: never argv, never a log). Every change (an upload, a delete,
an aborted upload) passes through `Executor.change`, so a dry run shows it and does nothing.

Uploads are streamed (multipart.py: the sealed bytes are cut into parts sent by a small pool while they are
produced; nothing is held whole in memory or written twice). Every part is checked against the ETag the server
answers for it, and the whole object afterwards (its size, and the md5 of its parts), or, where a service's
ETag is something else, by reading the object back.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bezgelor_tasks.backup.crypto import HashingWriter
from bezgelor_tasks.backup.multipart import MD5_ETAG, MultipartWriter
from bezgelor_tasks.backup.offsite_values import parse_s3_url
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.redact import register
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings

CONCURRENCY = 4   # parts in flight: enough to fill a link, little memory (the watcher has 256 MB)


def content_md5(data: bytes) -> str:
    """The Content-MD5 header of a body: the server refuses it when the bytes it got differ."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class Store:
    def __init__(self, settings: Settings, executor: Executor) -> None:
        if not settings.offsite_url:
            raise UserError("No off-site store is set up: BEZGELOR_OFFSITE_URL is empty.",
                            fix="set BEZGELOR_OFFSITE_URL=s3://bucket/prefix (and BEZGELOR_OFFSITE_ENDPOINT for a "
                                "non-AWS service, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment).")
        self.settings, self.executor = settings, executor
        self.where = parse_s3_url(settings.offsite_url)
        self.endpoint = settings.offsite_endpoint or "AWS S3"
        self._client: Any = None
        self._client_lock = threading.Lock()   # one client, whichever thread asks first (see `warm`)

    # -- the client ---------------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        with self._client_lock:
            return self._make_client()

    def warm(self) -> None:
        """Build the client in a thread now (importing boto3 takes a few tenths of a second), while the caller
        does something else; the first use waits for it."""
        threading.Thread(target=lambda: self.client, name="s3-client", daemon=True).start()

    def _make_client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                register(os.environ.get(name))
            t = self.settings.offsite_timeout_s
            config = Config(connect_timeout=t, read_timeout=t, retries={"max_attempts": 3, "mode": "standard"},
                            signature_version="s3v4", request_checksum_calculation="when_required",
                            response_checksum_validation="when_required",
                            # Bodies carry Content-MD5 (the server refuses a damaged one), so botocore need not
                            # hash every part once more to sign it; a custom endpoint (an IP, a service without
                            # bucket subdomains) wants path-style URLs.
                            s3={"payload_signing_enabled": False,
                                **({"addressing_style": "path"} if self.settings.offsite_endpoint else {})})
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.settings.offsite_endpoint or None, region_name=region, config=config)
        return self._client

    def transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        part = self.settings.offsite_part_mb << 20
        cap = int(self.settings.offsite_max_mbps * 1e6) or None
        return TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=CONCURRENCY,
                              max_bandwidth=cap)

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one S3 call; its failure becomes one clear error (what, where, the fix)."""
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - botocore's exception tree: explained below, never a traceback
            raise self.explain(e, what) from None

    def explain(self, e: BaseException, what: str) -> UserError:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        where = f"{self.where.url()} at {self.endpoint}"
        if isinstance(e, UserError):
            return e
        if isinstance(e, NoCredentialsError):
            return UserError(f"Cannot {what}: no S3 credentials. boto3 found no AWS_ACCESS_KEY_ID / "
                             "AWS_SECRET_ACCESS_KEY in the environment (nor a profile).",
                             fix="export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the bucket's access key) "
                                 "from your secret store, then run again.")
        if isinstance(e, ClientError):
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchBucket",) or (status == 404 and not code.startswith("NoSuchKey")
                                             and what.startswith("reach")):
                return UserError(f"Cannot {what}: the bucket {self.where.bucket} does not exist at {self.endpoint}.",
                                 fix=f"create it with your provider (e.g. `aws s3 mb s3://{self.where.bucket}` or "
                                     "`fly storage create`), or correct BEZGELOR_OFFSITE_URL or "
                                     "BEZGELOR_OFFSITE_ENDPOINT.")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
                        "ExpiredToken", "403", "Forbidden") or status == 403:
                return UserError(f"Cannot {what}: {where} refused the credentials ({code or status}).",
                                 fix="check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a key with read, write, "
                                     "list and delete on this bucket), then run again.")
            return UserError(f"Cannot {what}: {where} answered {code or status}: "
                             f"{e.response.get('Error', {}).get('Message', '')}".rstrip(": "),
                             fix="read the message, check the bucket and its permissions, then run again.")
        if isinstance(e, EndpointConnectionError) or "Connect" in type(e).__name__ or isinstance(e, OSError):
            return UserError(f"Cannot {what}: the S3 service at {self.endpoint} did not answer ({type(e).__name__}).",
                             fix="check BEZGELOR_OFFSITE_ENDPOINT and your network, then run again; nothing "
                                 "incomplete counts as a backup.")
        return UserError(f"Cannot {what}: {type(e).__name__}: {e}", fix="run again; report it if it repeats.")

    # -- reading ------------------------------------------------------------------------------------------
    def check_access(self) -> None:
        """Before any work: the bucket exists and the credentials work (a listing of our prefix)."""
        self.call(f"reach the off-site store {self.where.url(self.where.prefix)}",
                  lambda: self.client.list_objects_v2(Bucket=self.where.bucket, Prefix=self.where.prefix, MaxKeys=1))

    def list_objects(self, under: str) -> list[ObjectInfo]:
        def go() -> list[ObjectInfo]:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.where.bucket, Prefix=self.where.key(under))
            return [ObjectInfo(o["Key"], int(o["Size"]), o["LastModified"])
                    for page in pages for o in page.get("Contents", [])]
        return self.call(f"list {self.where.url(self.where.key(under))}", go)

    def get_bytes(self, key: str) -> bytes:
        return self.call(f"read {self.where.url(key)}",
                         lambda: self.client.get_object(Bucket=self.where.bucket, Key=key)["Body"].read())

    def download(self, key: str, target: Path) -> tuple[str, int]:
        """Stream an object into `target`; (sha256, size) of what arrived."""
        with target.open("wb") as f:
            writer = HashingWriter(f)
            self.call(f"download {self.where.url(key)}", lambda: self.client.download_fileobj(
                self.where.bucket, key, writer, Config=self.transfer_config()))
        return writer.sha256.hexdigest(), writer.size

    def incomplete_uploads(self) -> list[dict[str, Any]]:
        def go() -> list[dict[str, Any]]:
            r = self.client.list_multipart_uploads(Bucket=self.where.bucket, Prefix=self.where.prefix)
            return [{"key": u["Key"], "id": u["UploadId"], "initiated": u["Initiated"]} for u in r.get("Uploads", [])]
        return self.call("list unfinished uploads", go)

    # -- changing (each through Executor.change) -------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes, *, shown: str = "") -> None:
        self.executor.change(shown or f"write {self.where.url(key)}", lambda: self.call(
            f"write {self.where.url(key)}",
            lambda: self.client.put_object(Bucket=self.where.bucket, Key=key, Body=data, ContentMD5=content_md5(data))))

    def delete(self, keys: list[str], *, shown: str) -> None:
        def go() -> None:
            for i in range(0, len(keys), 1000):
                batch = {"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True}
                self.call(f"delete under {self.where.url(self.where.prefix)}", functools.partial(
                    self.client.delete_objects, Bucket=self.where.bucket, Delete=batch))
        if keys:
            self.executor.change(shown, go)

    def abort_upload(self, upload: dict[str, Any]) -> None:
        self.executor.change(f"abort the unfinished upload of {self.where.url(upload['key'])}", lambda: self.call(
            "abort an unfinished upload", lambda: self.client.abort_multipart_upload(
                Bucket=self.where.bucket, Key=upload["key"], UploadId=upload["id"])))

    def upload_stream(self, key: str, produce: Callable[[MultipartWriter], None], *,
                      before_complete: Callable[[], None] | None = None) -> MultipartWriter | None:
        """Upload what `produce` writes as one object (a multipart upload fed while it writes, see module doc),
        then check it. `before_complete` runs after the last part is stored and before the object appears: what
        raises there (a failed dump or verification) aborts the upload. None under dry-run. Raises UserError
        when the upload or its check fails: nothing is then left that lists as an object."""
        return self.executor.change(f"upload to {self.where.url(key)} (streamed, multipart)",
                                    lambda: self._upload_stream(key, produce, before_complete))

    def multipart(self, key: str) -> MultipartWriter:
        return MultipartWriter(lambda: self.client, self.where.bucket, key, self.call,
                               part_size=self.settings.offsite_part_mb << 20, concurrency=CONCURRENCY,
                               max_bytes_per_s=self.settings.offsite_max_mbps * 1e6)

    def _upload_stream(self, key: str, produce: Callable[[MultipartWriter], None],
                       before_complete: Callable[[], None] | None) -> MultipartWriter:
        writer = self.multipart(key)
        try:
            try:
                produce(writer)
            except (UserError, KeyboardInterrupt):
                raise
            except Exception as e:  # noqa: BLE001 - pyrage's or the source's error: one sentence
                raise writer.error if isinstance(writer.error, UserError) else UserError(
                    f"Sealing the backup for upload failed: {e}. Nothing was kept off-site.",
                    fix="run again.") from None
            writer.close()
            if before_complete is not None:
                before_complete()
            writer.complete()
        except BaseException:
            writer.abort()
            raise
        finally:
            writer.shutdown()
        self._check_uploaded(key, writer)
        return writer

    def _check_uploaded(self, key: str, writer: MultipartWriter) -> None:
        head = self.call(f"check {self.where.url(key)}",
                         lambda: self.client.head_object(Bucket=self.where.bucket, Key=key))
        etag = str(head.get("ETag", "")).strip('"')
        problem = None
        if int(head.get("ContentLength", -1)) != writer.size:
            problem = f"the server holds {head.get('ContentLength')} bytes, {writer.size} were sent"
        elif MD5_ETAG.match(etag):
            if etag != writer.expected_etag():
                problem = f"the server's checksum (ETag {etag}) differs from what was sent ({writer.expected_etag()})"
        else:  # a service whose ETag is not an md5 (SSE-KMS, some providers): read it back
            back = HashingWriter(None)
            self.call(f"read back {self.where.url(key)}", lambda: self.client.download_fileobj(
                self.where.bucket, key, back, Config=self.transfer_config()))
            if back.sha256.hexdigest() != writer.sha256.hexdigest():
                problem = "reading it back gave other bytes (sha256 differs)"
        if problem:
            self.call("remove a damaged upload", lambda: self.client.delete_object(Bucket=self.where.bucket, Key=key))
            raise UserError(f"The upload to {self.where.url(key)} arrived damaged: {problem}. It was removed; "
                            "nothing incomplete counts as a backup.", fix="run the backup again.")
