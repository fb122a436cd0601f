"""Off-site backups against the plain alternatives, as ratios measured in one run (A/B in turns, medians).

(a) link   the watcher's scheduled path (dump next to the database, only sealed compressed bytes cross) against
           a plain `pg_dump | gzip` pulled across the same link: two network namespaces made here (the database
           and the job in one, the S3 server and the puller in the other) joined by a veth pair shaped to
           BENCH_LINK_MBIT (default 50) with `tc`; every address is inside them; removed at the end. Needs root.
           `cold`: the job in a new Python process (the watcher's first backup: boto3 is imported too);
           `warm`: the job again in a process that already ran it (the watcher's later backups).
(b) local  `bezgelor-tasks db.backup --verify none` (through the fake flyctl's `fly proxy`, a Python relay) against
           `pg_dump -Fc -f file` straight to the server, and the time from the task's start to pg_dump's start
           (from /proc). The interpreter's directory goes first on PATH, so the fake flyctl starts as a real
           binary would (not through a version manager's shims).
Every figure: one untimed run of each command, then BENCH_RUNS rounds in rotating order; the median ratio and its
spread. Python processes keep their bytecode caches (see BASE_ENV).
(c) upload `offsite.upload` (age + sha256 + md5 per part + multipart upload + checks) against boto3's own
           `upload_file` of the already sealed file, on loopback SeaweedFS (the S3 server on the same two cores)
           and, with root, through the namespaces' link shaped to each of BENCH_UPLOAD_MBIT (default 1000,200).

    python benchmarks/bench_offsite.py     # BENCH_OFFSITE_MB=64 (a), BENCH_LOCAL_MB=1024 (b), BENCH_UPLOAD_MB=200
                                           # (c), BENCH_RUNS=3 pairs each, BENCH_ONLY=abc
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_backup import SCHEMA, fill_sql  # noqa: E402

from bezgelor_tasks.backup import clients, commands, scratch  # noqa: E402
from bezgelor_tasks.run import Executor  # noqa: E402
from bezgelor_tasks.ui import UI  # noqa: E402
from tests.support.s3 import S3Server, weed_binary  # noqa: E402

PY = sys.executable
NS_DB, NS_STORE = "bzo-db", "bzo-store"
IP_DB, IP_STORE = "10.231.7.1", "10.231.7.2"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
# Python processes started here keep their bytecode caches, as an installed tool has them (pip compiles at
# install); a sandbox's PYTHONDONTWRITEBYTECODE would make every start compile every module again.
BASE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    r = subprocess.run(argv, check=False, text=True, capture_output=True, **kw)
    if check and r.returncode:
        raise SystemExit(f"{' '.join(argv[:6])} … failed ({r.returncode}): {(r.stdout + r.stderr)[-1500:]}")
    return r


def timed(fn: Callable[[], object]) -> float:
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def rounds(fns: list[Callable[[], float]], runs: int = RUNS) -> list[list[float]]:
    """Each function's seconds, `runs` times, the order rotated every round (the machine's drift falls on all),
    after one untimed run of each (caches, bytecode)."""
    for fn in fns:
        fn()
    out = []
    for i in range(runs):
        took: dict[int, float] = {}
        for k in range(len(fns)):
            j = (i + k) % len(fns)
            took[j] = fns[j]()
        out.append([took[j] for j in range(len(fns))])
    return out


def in_turns(a: Callable[[], float], b: Callable[[], float], runs: int = RUNS) -> list[tuple[float, float]]:
    """(a, b) seconds, `runs` times, A first then B first in turns."""
    return [(x, y) for x, y in rounds([a, b], runs)]


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs)"


def pairs_line(what: str, pairs: list[tuple[float, float]], goal: str, invert: bool = False) -> str:
    ratios = [b / a if invert else a / b for a, b in pairs]
    ours, plain = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    return f"    {what}: ours {ours:.2f}s, plain {plain:.2f}s (medians); ratio {spread(ratios)} ({goal})"


# -- the namespaces and their shaped link ------------------------------------------------------------------

def make_link(mbit: float) -> None:
    sh("ip", "netns", "add", NS_DB)
    sh("ip", "netns", "add", NS_STORE)
    sh("ip", "link", "add", "bzo-a", "netns", NS_DB, "type", "veth", "peer", "name", "bzo-b", "netns", NS_STORE)
    for ns, dev, ip in ((NS_DB, "bzo-a", IP_DB), (NS_STORE, "bzo-b", IP_STORE)):
        sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    shape(mbit, "add")


def shape(mbit: float, how: str = "change") -> None:
    burst = f"{max(32, int(mbit * 1000 / 250))}kbit"   # at least one timer tick's worth of bytes
    for ns, dev in ((NS_DB, "bzo-a"), (NS_STORE, "bzo-b")):
        sh("ip", "netns", "exec", ns, "tc", "qdisc", how, "dev", dev, "root", "tbf", "rate", f"{mbit}mbit",
           "burst", burst, "latency", "50ms")


def remove_link() -> None:
    for ns in (NS_DB, NS_STORE):
        for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", ns, check=False)


def in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def _postgres_ids() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def start_linked(mb: int, work: Path, client: clients.Client, ex: Executor) -> tuple[dict[str, str], int]:
    """PostgreSQL (filled) in NS_DB, SeaweedFS in NS_STORE; the job's environment and the database's size."""
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
    (work / "s3").mkdir()
    weed = weed_binary()
    assert weed
    subprocess.Popen(in_ns(NS_STORE, weed, "server", f"-ip={IP_STORE}", f"-ip.bind={IP_STORE}", f"-dir={work / 's3'}",
                           "-master.telemetry=false", "-s3", "-filer", "-s3.port=8333", "-s3.port.iceberg=0",
                           "-s3.port.lance=0", "-volume.max=50"),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)   # killed with the namespace
    env = dict(BASE_ENV, AWS_ACCESS_KEY_ID="any", AWS_SECRET_ACCESS_KEY="any", AWS_REGION="us-east-1",
               BEZGELOR_OFFSITE_URL="s3://bench/offsite", BEZGELOR_OFFSITE_ENDPOINT=f"http://{IP_STORE}:8333",
               BEZGELOR_BACKUP_AGE_RECIPIENTS=str(__import__("pyrage").x25519.Identity.generate().to_public()),
               DATABASE_URL=f"postgres://postgres:{password}@{IP_DB}:5432/game", BEZGELOR_ROOT=str(work),
               PGPASSWORD=password)
    ready = (f"import boto3,time\nc=boto3.client('s3',endpoint_url='http://{IP_STORE}:8333')\n"
             "for i in range(600):\n"
             " try:\n  c.create_bucket(Bucket='bench'); c.put_object(Bucket='bench',Key='x',Body=b'x'); break\n"
             " except Exception: time.sleep(0.1)\n")
    sh(*in_ns(NS_STORE, PY, "-c", ready), env=env)
    return env, size


# The scheduled job as the watcher runs it; each line on stdin runs it once and prints its seconds.
JOB = """
import sys, time
from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import scheduled
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI
for line in sys.stdin:
    t0 = time.monotonic()
    u = UI(color=False)
    o = scheduled.scheduled_backup(settings_load.load(), Executor(ui=u, echo=False), u)
    assert o.ok, o.summary
    print("SECONDS", time.monotonic() - t0, flush=True)
"""


def link_part(mb: int, mbit: float, up_mb: int, up_mbits: list[float], work: Path, client: clients.Client,
              ex: Executor, *, dump: bool = True) -> None:
    make_link(mbit)
    try:
        env, size = start_linked(mb, work, client, ex)
        print(f"(a) {mbit:g} Mbit/s link between two namespaces, database {size / 1e6:.0f} MB", flush=True)

        def cold() -> float:   # a new process: Python, imports, the job
            return timed(lambda: sh(*in_ns(NS_DB, PY, "-c", JOB), input="go\n", env=env, cwd=str(ROOT)))

        plain_cmd = (f"set -o pipefail; {client.tool('pg_dump')} -h {IP_DB} -U postgres -d game | gzip > "
                     f"{work / 'plain.sql.gz'}")

        def plain() -> float:
            return timed(lambda: sh(*in_ns(NS_STORE, "bash", "-c", plain_cmd), env=env))

        if dump:
            link_dump(env, cold, plain)
        for i, up_mbit in enumerate(up_mbits if up_mb else []):
            shape(up_mbit)
            print(f"(c) upload of {up_mb} MB through the link shaped to {up_mbit:g} Mbit/s", flush=True)
            upload_pairs(up_mb, work / f"up{i}", env, ns=NS_DB)
    finally:
        remove_link()


def link_dump(env: dict[str, str], cold: Callable[[], float], plain: Callable[[], float]) -> None:
    print(pairs_line("cold (first backup of a watcher)", in_turns(cold, plain), "goal <= 0.35"), flush=True)
    watcher = subprocess.Popen(in_ns(NS_DB, PY, "-c", JOB), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env=env, cwd=str(ROOT))

    def warm() -> float:
        assert watcher.stdin and watcher.stdout
        watcher.stdin.write("go\n")
        watcher.stdin.flush()
        while not (line := watcher.stdout.readline()).startswith("SECONDS "):
            assert line, "the watcher's job ended"
        return float(line.split()[1])

    print(pairs_line("warm (a watcher's later backups)", in_turns(warm, plain), "goal <= 0.35"), flush=True)
    watcher.kill()


# -- (c) upload throughput -------------------------------------------------------------------------------

UPLOAD = """
import os, sys, time
from pathlib import Path
from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import manifest, offsite
from bezgelor_tasks.backup.store import Store
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI
work, mode, n = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
s = settings_load.load(work)
ui = UI(color=False)
store = Store(s, Executor(ui=ui, echo=False))
store.check_access()   # the client is built: only the upload is timed
t = time.monotonic()
if mode == "ours":
    offsite.upload(s, Executor(ui=ui, echo=False), ui, manifest.load(work / "backups" / "20260101T000000Z_bench"),
                   store=store)
else:
    store.client.upload_file(str(work / "sealed.age"), store.where.bucket, f"plain/{n}", Config=store.transfer_config())
print(time.monotonic() - t)
"""


def upload_pairs(mb: int, work: Path, env: dict[str, str], ns: str | None = None) -> None:
    from bezgelor_tasks.backup import crypto, manifest

    d = work / "backups" / "20260101T000000Z_bench"
    d.mkdir(parents=True)
    (d / "dump.pgc").write_bytes(os.urandom(mb << 20))
    manifest.write(Executor(echo=False), d, {"archive": "dump.pgc", "files": manifest.file_digests(d / "dump.pgc", d),
                                             "created_at": "2026-01-01T00:00:00+00:00", "verifications": []})
    recipients = env["BEZGELOR_BACKUP_AGE_RECIPIENTS"]
    with (work / "sealed.age").open("wb") as f, (d / "dump.pgc").open("rb") as source:
        crypto.seal_stream(source, f, crypto.Sealing((recipients,)))
    env = dict(env, BEZGELOR_OFFSITE_PART_MB="16")
    prefix = in_ns(ns) if ns else []
    count = iter(range(1000))

    def run(mode: str) -> float:
        out = sh(*prefix, PY, "-c", UPLOAD, str(work), mode, str(next(count)), env=env, cwd=str(ROOT)).stdout
        return float(out.strip().splitlines()[-1])

    pairs = in_turns(lambda: run("ours"), lambda: run("boto3"))
    print(pairs_line(f"throughput, {mb} MB", pairs, "goal >= 0.9", invert=True), flush=True)


def loopback_upload(mb: int, work: Path) -> None:
    import pyrage

    server = S3Server.start(work / "s3up", owner=os.getpid())
    try:
        bucket = server.new_bucket("bench")
        env = dict(BASE_ENV, **server.env(bucket, "up"),
                   BEZGELOR_BACKUP_AGE_RECIPIENTS=str(pyrage.x25519.Identity.generate().to_public()))
        print(f"(c) upload of {mb} MB on loopback (SeaweedFS on the same cores)", flush=True)
        upload_pairs(mb, work / "up", env)
    finally:
        server.kill()


# -- (b) local db.backup against pg_dump -Fc ---------------------------------------------------------------

def _start(pid: int) -> float:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")


def _backup_once(tool: str, co: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds, seconds from start to pg_dump running) of one `db.backup --verify none`."""
    shutil.rmtree(co / ".bezgelor", ignore_errors=True)
    proc = subprocess.Popen([tool, "db.backup", "--verify", "none", "--root", str(co)], env=env, cwd=co,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0, started, to_dump = time.monotonic(), _start(proc.pid), float("nan")
    tasks = Path(f"/proc/{proc.pid}/task")
    while proc.poll() is None:   # pg_dump is a child of the task's process: only its children are looked at
        if to_dump != to_dump:
            try:
                kids = [k for t in tasks.iterdir() for k in (t / "children").read_text().split()]
                for kid in kids:
                    if Path(f"/proc/{kid}/comm").read_text().strip() == "pg_dump":
                        to_dump = _start(int(kid)) - started
            except OSError:
                pass
        time.sleep(0.005)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return took, to_dump


def local_part(mb: int, work: Path, client: clients.Client, ex: Executor) -> None:
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
        print(f"(b) local db.backup, database {size / 1e6:.0f} MB", flush=True)
        home, co = work / "fly", work / "checkout"
        home.mkdir()
        co.mkdir()
        with Home(str(home)).transaction() as st:
            app = new_app(st, "bezgelor-db", "personal", "postgres")
            app.update(status="deployed", proxy_target=f"127.0.0.1:{pg.port}")
        env = dict(BASE_ENV, PATH=f"{ROOT / 'tests/fakes/bin'}:{Path(PY).parent}:{BASE_ENV['PATH']}",
                   FAKE_FLY_HOME=str(home), FLY_NO_UPDATE_CHECK="1", BEZGELOR_DB_PASSWORD=pw, BEZGELOR_DB_USER="bench",
                   BEZGELOR_DB_NAME="game", PGPASSWORD=pw, NO_COLOR="1")
        plain = [client.tool("pg_dump"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "bench", "-d", "game", "-Fc",
                 "-f", str(work / "plain.pgc")]
        same_level = [*plain[:-2], f"--compress={commands.compression(client)}", *plain[-2:]]
        tool, starts = str(Path(PY).parent / "bezgelor-tasks"), []

        def ours() -> float:
            took, to_dump = _backup_once(tool, co, env)
            starts.append(to_dump)
            return took

        runs = rounds([ours, lambda: timed(lambda: sh(*plain, env=env)),
                       lambda: timed(lambda: sh(*same_level, env=env))])
        print(pairs_line("db.backup against pg_dump -Fc", [(r[0], r[1]) for r in runs], "goal <= 1.1"))
        print(pairs_line(f"db.backup against pg_dump -Fc --compress={commands.compression(client)} (its level)",
                         [(r[0], r[2]) for r in runs], "the same compression"))
        print(f"    start to pg_dump running: {spread(starts)} s (goal <= 0.5)", flush=True)


def main() -> int:
    only = os.environ.get("BENCH_ONLY", "abc")   # which parts: any of a, b, c
    ex = Executor(ui=UI(color=False), echo=False, default_timeout=24 * 3600)
    client = clients.newest(need=("initdb", "pg_ctl", "pg_dump", "pg_restore", "psql"))
    work = Path(tempfile.mkdtemp(prefix="bezgelor-bench-offsite-"))
    os.chmod(work, 0o755)
    up_mb = int(os.environ.get("BENCH_UPLOAD_MB", "200"))
    try:
        if "c" in only:
            loopback_upload(up_mb, work / "c")
        if "b" in only:
            (work / "b").mkdir()
            local_part(int(os.environ.get("BENCH_LOCAL_MB", "1024")), work / "b", client, ex)
        if "a" in only or "c" in only:
            if os.geteuid() != 0 or not shutil.which("tc"):
                print("(a) and (c) through a link skipped: they need root and tc (ip netns, veth, tbf)")
                return 0
            (work / "a").mkdir()
            os.chmod(work / "a", 0o755)
            link_part(int(os.environ.get("BENCH_OFFSITE_MB", "64")), float(os.environ.get("BENCH_LINK_MBIT", "50")),
                      up_mb if "c" in only else 0,
                      [float(x) for x in os.environ.get("BENCH_UPLOAD_MBIT", "1000,200").split(",")],
                      work / "a", client, ex, dump="a" in only)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
