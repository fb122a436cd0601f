"""Off-site backups against the plain alternatives, as ratios measured in one run.

(a) link   the watcher's scheduled path (dump next to the database, only sealed compressed bytes cross) against
           a plain `pg_dump | gzip` pulled across the same link: two network namespaces made here (the database
           and the job in one, the S3 server and the puller in the other) joined by a veth pair shaped to
           BENCH_LINK_MBIT (default 50) with `tc`; every address is inside them; removed at the end. Needs root.
(b) local  `bezgelor-tasks db.backup` (through the fake flyctl's real `fly proxy`) against `pg_dump -Fc > file`,
           and the time from the task's start to pg_dump's start (read from /proc).
(c) upload `offsite.upload` (seal with age + multipart upload + ETag check) against boto3's own `upload_file`
           of the sealed file, on loopback SeaweedFS: throughput ratio.

    python benchmarks/bench_offsite.py            # BENCH_OFFSITE_MB=128 of game data, BENCH_UPLOAD_MB=200
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_backup import SCHEMA, fill_sql  # noqa: E402

from bezgelor_tasks import settings as settings_mod  # noqa: E402
from bezgelor_tasks.backup import clients, commands, crypto, manifest, offsite, scratch  # noqa: E402
from bezgelor_tasks.run import Executor  # noqa: E402
from bezgelor_tasks.ui import UI  # noqa: E402
from tests.support.s3 import S3Server, weed_binary  # noqa: E402

PY = sys.executable
NS_DB, NS_STORE = "bzo-db", "bzo-store"
IP_DB, IP_STORE = "10.231.7.1", "10.231.7.2"


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    r = subprocess.run(argv, check=False, text=True, capture_output=True, **kw)
    if check and r.returncode:
        raise SystemExit(f"{' '.join(argv[:6])} … failed ({r.returncode}): {(r.stdout + r.stderr)[-1500:]}")
    return r


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.monotonic()
    value = fn()
    return value, time.monotonic() - t


# -- (a) the shaped link ---------------------------------------------------------------------------------

def make_link(mbit: float) -> None:
    sh("ip", "netns", "add", NS_DB)
    sh("ip", "netns", "add", NS_STORE)
    sh("ip", "link", "add", "bzo-a", "netns", NS_DB, "type", "veth", "peer", "name", "bzo-b", "netns", NS_STORE)
    for ns, dev, ip in ((NS_DB, "bzo-a", IP_DB), (NS_STORE, "bzo-b", IP_STORE)):
        sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{mbit}mbit",
           "burst", "32kbit", "latency", "50ms")


def remove_link() -> None:
    for ns in (NS_DB, NS_STORE):
        sh("ip", "netns", "pids", ns, check=False)
        for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", ns, check=False)


def in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def link_bench(mb: int, mbit: float, work: Path, client: clients.Client, ex: Executor) -> tuple[float, float, int]:
    make_link(mbit)
    try:
        return _link_bench(mb, work, client, ex)
    finally:
        remove_link()


def _link_bench(mb: int, work: Path, client: clients.Client, ex: Executor) -> tuple[float, float, int]:
    pgdir, password = work / "pg", secrets.token_urlsafe(12)
    pgdir.mkdir()
    os.chown(pgdir, *_postgres_ids())
    (work / "pw").write_text(password + "\n")
    os.chown(work / "pw", *_postgres_ids())
    ex.run(commands.Command(commands.as_postgres_user((client.tool("initdb"), "-D", str(pgdir / "data"), "-U",
                                                       "postgres", "--auth-host=scram-sha-256", "--auth-local=trust",
                                                       f"--pwfile={work / 'pw'}", "--no-sync"))))
    with (pgdir / "data" / "pg_hba.conf").open("a") as hba:   # the job (same namespace) and the puller (the other)
        hba.write("host all all 10.231.7.0/30 scram-sha-256\n")
    opts = f"-c listen_addresses={IP_DB} -p 5432 -c unix_socket_directories={pgdir} -c fsync=off"
    ex.run(commands.Command(in_ns(NS_DB, *commands.as_postgres_user((client.tool("pg_ctl"), "-D", str(pgdir / "data"),
                                                                     "-l", str(pgdir / "log"), "-o", opts, "-w",
                                                                     "start")))))
    admin = commands.Conn(str(pgdir), 5432, "postgres", "postgres")
    ex.run(commands.psql(client, admin, "CREATE DATABASE game;", purpose="bench", mutates=True))
    ex.run(commands.psql(client, admin.with_db("game"), SCHEMA + fill_sql(mb), purpose="fill", mutates=True,
                         timeout=None))
    size = int(ex.run(commands.psql(client, admin, "SELECT pg_database_size('game');", purpose="size")).stdout)
    s3dir = work / "s3"
    s3dir.mkdir()
    weed = weed_binary()
    assert weed
    s3 = subprocess.Popen(in_ns(NS_STORE, weed, "server", f"-ip={IP_STORE}", f"-ip.bind={IP_STORE}",
                                f"-dir={s3dir}", "-master.telemetry=false", "-s3", "-filer", "-s3.port=8333",
                                "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.max=50"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = dict(os.environ, AWS_ACCESS_KEY_ID="any", AWS_SECRET_ACCESS_KEY="any", AWS_REGION="us-east-1",
                   BEZGELOR_OFFSITE_URL="s3://bench/offsite", BEZGELOR_OFFSITE_ENDPOINT=f"http://{IP_STORE}:8333",
                   BEZGELOR_BACKUP_AGE_RECIPIENTS=str(__import__("pyrage").x25519.Identity.generate().to_public()),
                   DATABASE_URL=f"postgres://postgres:{password}@{IP_DB}:5432/game", BEZGELOR_ROOT=str(work),
                   PGPASSWORD=password)
        ready = (f"import boto3,time\nc=boto3.client('s3',endpoint_url='http://{IP_STORE}:8333')\n"
                 "for i in range(600):\n"
                 " try:\n  c.create_bucket(Bucket='bench'); c.put_object(Bucket='bench',Key='x',Body=b'x'); break\n"
                 " except Exception: time.sleep(0.1)\n")
        sh(*in_ns(NS_STORE, PY, "-c", ready), env=env)
        job = ("from bezgelor_tasks import settings; from bezgelor_tasks.backup import scheduled;"
               "from bezgelor_tasks.run import Executor; from bezgelor_tasks.ui import UI; u=UI(color=False);"
               "o=scheduled.scheduled_backup(settings.load(), Executor(ui=u, echo=False), u); print(o.summary);"
               "assert o.ok")
        _, ours = timed(lambda: sh(*in_ns(NS_DB, PY, "-c", job), env=env, cwd=str(ROOT)))
        plain_cmd = f"{client.tool('pg_dump')} -h {IP_DB} -U postgres -d game | gzip > {work / 'plain.sql.gz'}"
        _, plain = timed(lambda: sh(*in_ns(NS_STORE, "bash", "-c", "set -o pipefail; " + plain_cmd),
                                    env=env))
        return ours, plain, size
    finally:
        s3.kill()
        s3.wait()
        subprocess.run(commands.as_postgres_user((client.tool("pg_ctl"), "-D", str(pgdir / "data"), "-m",
                                                  "immediate", "stop")), capture_output=True)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


# -- (b) local db.backup against pg_dump -Fc ---------------------------------------------------------------

def _start(pid: int) -> float:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")


def local_bench(mb: int, work: Path, client: clients.Client, ex: Executor) -> tuple[float, float, float, int]:
    from tests.fakes.flyctl_fake.commands.common import new_app
    from tests.fakes.flyctl_fake.store import Home

    with scratch.scratch_cluster(ex, client, prefix="bezgelor-bench-pg-") as pg:
        pw = secrets.token_urlsafe(12)
        ex.run(commands.psql(client, pg.socket_conn(), f"CREATE ROLE bench LOGIN PASSWORD '{pw}';"
                                                       "CREATE DATABASE game OWNER bench;", purpose="b", mutates=True))
        ex.run(commands.psql(client, pg.socket_conn("game"), "SET ROLE bench;\n" + SCHEMA + fill_sql(mb),
                             purpose="fill", mutates=True, timeout=None))
        size = int(ex.run(commands.psql(client, pg.socket_conn(), "SELECT pg_database_size('game');",
                                        purpose="size")).stdout)
        home = work / "fly"
        home.mkdir()
        with Home(str(home)).transaction() as st:
            app = new_app(st, "bezgelor-db", "personal", "postgres")
            app.update(status="deployed", proxy_target=f"127.0.0.1:{pg.port}")
        co = work / "checkout"
        co.mkdir()
        env = dict(os.environ, PATH=f"{ROOT / 'tests/fakes/bin'}:{os.environ['PATH']}", FAKE_FLY_HOME=str(home),
                   FLY_NO_UPDATE_CHECK="1", BEZGELOR_DB_PASSWORD=pw, BEZGELOR_DB_USER="bench", BEZGELOR_DB_NAME="game",
                   PGPASSWORD=pw, NO_COLOR="1")
        plain = ["pg_dump", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "bench", "-d", "game", "-Fc",
                 "-f", str(work / "plain.pgc")]
        _, t_plain = timed(lambda: sh(client.tool("pg_dump"), *plain[1:], env=env))
        tool = str(Path(PY).parent / "bezgelor-tasks")
        proc = subprocess.Popen([tool, "db.backup", "--verify", "none", "--root", str(co)], env=env, cwd=co,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0, started, to_dump = time.monotonic(), _start(proc.pid), None
        while proc.poll() is None:
            if to_dump is None:
                for d in Path("/proc").iterdir():
                    try:
                        if d.name.isdigit() and (d / "comm").read_text().strip() == "pg_dump" and \
                                str(co) in (d / "cmdline").read_text():
                            to_dump = _start(int(d.name)) - started
                    except OSError:
                        continue
            time.sleep(0.005)
        t_ours = time.monotonic() - t0
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        return t_ours, t_plain, to_dump or float("nan"), size


# -- (c) upload throughput -------------------------------------------------------------------------------

def upload_bench(mb: int, work: Path) -> tuple[float, float]:
    import pyrage

    server = S3Server.start(work / "s3up", owner=os.getpid())
    saved = dict(os.environ)
    try:
        bucket = server.new_bucket("bench")
        for k, v in server.env(bucket, "up").items():
            os.environ[k] = v
        os.environ["BEZGELOR_OFFSITE_PART_MB"] = "16"
        os.environ["BEZGELOR_BACKUP_AGE_RECIPIENTS"] = str(pyrage.x25519.Identity.generate().to_public())
        s = settings_mod.load(work)
        d = work / "backups" / f"{manifest.stamp(__import__('datetime').datetime.now())}_bench"
        d.mkdir(parents=True)
        (d / "dump.pgc").write_bytes(os.urandom(mb << 20))
        manifest.write(Executor(echo=False), d, {"archive": "dump.pgc",
                                                 "files": manifest.file_digests(d / "dump.pgc", d), "created_at": "2026-01-01T00:00:00+00:00", "verifications": []})
        ui = UI(color=False)
        b = manifest.load(d)
        _, t_ours = timed(lambda: offsite.upload(s, Executor(ui=ui, echo=False), ui, b))
        sealed = work / "sealed.age"
        with sealed.open("wb") as f, b.archive.open("rb") as source:
            crypto.seal_stream(source, f, crypto.sealing(s))
        from bezgelor_tasks.backup.store import Store

        st = Store(s, Executor(ui=ui))
        _, t_boto = timed(lambda: st.client.upload_file(str(sealed), bucket, "plain/sealed.age",
                                                        Config=st.transfer_config()))
        return t_ours, t_boto
    finally:
        server.kill()
        os.environ.clear()
        os.environ.update(saved)


def upload_part(up_mb: int, work: Path) -> None:
    print(f"(c) upload of {up_mb} MB …", flush=True)
    t_ours, t_boto = upload_bench(up_mb, work)
    print(f"    offsite.upload {t_ours:.2f}s ({up_mb / t_ours:.0f} MB/s), boto3 upload_file {t_boto:.2f}s "
          f"({up_mb / t_boto:.0f} MB/s): throughput ratio {t_boto / t_ours:.2f} (goal >= 0.9)", flush=True)


def local_part(mb: int, work: Path, client: clients.Client, ex: Executor) -> None:
    print(f"(b) local db.backup on ~{mb} MB …", flush=True)
    (work / "b").mkdir()
    ours, plain, to_dump, size = local_bench(mb, work / "b", client, ex)
    print(f"    database {size / 1e6:.0f} MB: db.backup {ours:.2f}s, pg_dump -Fc {plain:.2f}s: ratio "
          f"{ours / plain:.2f} (goal <= 1.1); start to pg_dump running {to_dump:.2f}s (goal <= 0.5)", flush=True)


def link_part(mb: int, mbit: float, work: Path, client: clients.Client, ex: Executor) -> None:
    if os.geteuid() != 0 or not shutil.which("tc"):
        print("(a) skipped: needs root and tc (ip netns, veth, tbf)")
        return
    print(f"(a) {mbit:g} Mbit/s link between two namespaces, ~{mb} MB …", flush=True)
    (work / "a").mkdir()
    os.chmod(work / "a", 0o755)
    ours, plain, size = link_bench(mb, mbit, work / "a", client, ex)
    print(f"    database {size / 1e6:.0f} MB: scheduled path {ours:.1f}s, pg_dump | gzip across the link "
          f"{plain:.1f}s: ratio {ours / plain:.2f} (goal <= 0.35)")


def main() -> int:
    mb = int(os.environ.get("BENCH_OFFSITE_MB", "128"))
    only = os.environ.get("BENCH_ONLY", "abc")   # which parts: any of a, b, c
    ex = Executor(ui=UI(color=False), echo=False, default_timeout=24 * 3600)
    client = clients.newest(need=("initdb", "pg_ctl", "pg_dump", "pg_restore", "psql"))
    work = Path(tempfile.mkdtemp(prefix="bezgelor-bench-offsite-"))
    os.chmod(work, 0o755)
    try:
        if "c" in only:
            upload_part(int(os.environ.get("BENCH_UPLOAD_MB", "200")), work)
        if "b" in only:
            local_part(mb, work, client, ex)
        if "a" in only:
            link_part(mb, float(os.environ.get("BENCH_LINK_MBIT", "50")), work, client, ex)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
