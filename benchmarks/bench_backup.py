"""`inv db.backup` against the seed plan's `pg_dump … > backup.sql`, on generated game data.

Standalone: starts its own PostgreSQL on loopback (like `verify-backup --tier full` does), fills a database
with realistic game tables (accounts, characters with jsonb appearance, items with jsonb stats, a chat
log), then measures in the same run: dump time, archive size and restore time of both, as ratios, and the
cost of each verification tier.

    python benchmarks/bench_backup.py                      # ~1 GB (BENCH_BACKUP_MB=1024)
    BENCH_BACKUP_MB=8 python benchmarks/bench_backup.py    # smoke run, seconds
    BENCH_BACKUP_JOBS=4 ...                                # also time --jobs 4 (directory format)
    BENCH_LINK_MBIT=50 ...                                 # both dumps through a 50 Mbit/s link (0: skip)
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bezgelor_tasks import settings_load  # noqa: E402
from bezgelor_tasks.backup import backup, clients, commands, manifest, scratch, session, verify  # noqa: E402
from bezgelor_tasks.backup.atomic_restore import restore as restore_in_one_transaction  # noqa: E402
from bezgelor_tasks.backup.commands import Conn  # noqa: E402
from bezgelor_tasks.run import Executor  # noqa: E402
from bezgelor_tasks.ui import UI  # noqa: E402

# Item rows per MB of database at the 1 GB scale (items dominate, as in a live game; tiny runs overshoot).
ITEMS_PER_MB = 3200

SCHEMA = """\
CREATE TABLE accounts (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL, created_at timestamptz DEFAULT now(),
  flags int NOT NULL DEFAULT 0);
CREATE TABLE characters (id bigserial PRIMARY KEY, account_id bigint REFERENCES accounts(id), name text NOT NULL,
  level int, class smallint, race smallint, zone int, x real, y real, z real, appearance jsonb, played_s bigint);
CREATE TABLE items (id bigserial PRIMARY KEY, character_id bigint REFERENCES characters(id), item_id int,
  bag smallint, slot smallint, stack int, stats jsonb, created_at timestamptz DEFAULT now());
CREATE TABLE chat_log (id bigserial PRIMARY KEY, character_id bigint, channel smallint, message text,
  sent_at timestamptz DEFAULT now());
CREATE INDEX ON characters (account_id);
CREATE INDEX ON items (character_id);
"""


def fill_sql(mb: int) -> str:
    items = max(1000, mb * ITEMS_PER_MB)
    chars = max(100, items // 60)
    accounts = max(50, chars // 3)
    chats = items // 2
    return f"""\
INSERT INTO accounts (email, flags) SELECT 'p' || g || '@example.test', g % 7 FROM generate_series(1, {accounts}) g;
INSERT INTO characters (account_id, name, level, class, race, zone, x, y, z, appearance, played_s)
  SELECT 1 + g % {accounts}, 'Hero' || g, 1 + g % 50, g % 6, g % 8, g % 300, random()*4000, random()*4000,
         random()*500, jsonb_build_object('hair', g % 20, 'face', g % 12, 'colors', jsonb_build_array(g % 255,
         (g * 7) % 255, (g * 13) % 255), 'bones', jsonb_build_array(random(), random(), random(), random())),
         g * 37 FROM generate_series(1, {chars}) g;
INSERT INTO items (character_id, item_id, bag, slot, stack, stats)
  SELECT 1 + g % {chars}, (g::bigint * 7919) % 60000, g % 6, g % 32, 1 + g % 20,
         jsonb_build_object('quality', g % 6, 'power', g % 997, 'runes', jsonb_build_array(g % 50, g % 51),
                            'bound', g % 2 = 0, 'durability', random())
  FROM generate_series(1, {items}) g;
INSERT INTO chat_log (character_id, channel, message)
  SELECT 1 + g % {chars}, g % 5, md5(g::text) || ' looking for group ' || (g % 40)
  FROM generate_series(1, {chats}) g;
ANALYZE;
"""


class RateLimitedForwarder:
    """A loopback TCP forwarder whose server→client direction is limited to `rate` bytes/s (a token
    bucket): the benchmark's own stand-in for an uplink, no root or `tc` needed."""

    def __init__(self, target: tuple[str, int], rate: float) -> None:
        self.target, self.rate = target, rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.stop = threading.Event()

    def _pipe(self, src: socket.socket, dst: socket.socket, limited: bool) -> None:
        started, sent = time.monotonic(), 0
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                sent += len(data)
                if limited:
                    ahead = sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by __exit__
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def __enter__(self) -> int:
        threading.Thread(target=self._serve, daemon=True).start()
        return int(self.listener.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.listener.close()


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.monotonic()
    value = fn()
    return value, time.monotonic() - t


def main() -> int:
    mb = int(os.environ.get("BENCH_BACKUP_MB", "1024"))
    jobs = int(os.environ.get("BENCH_BACKUP_JOBS", "0"))
    ui = UI(color=False)
    ex = Executor(ui=ui, echo=False, default_timeout=24 * 3600)
    client = clients.newest(need=("initdb", "pg_ctl", "pg_dump", "pg_restore", "psql"))
    work = Path(tempfile.mkdtemp(prefix="bezgelor-bench-"))
    try:
        return run(mb, jobs, ui, ex, client, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(mb: int, jobs: int, ui: UI, ex: Executor, client: clients.Client, work: Path) -> int:
    with scratch.scratch_cluster(ex, client, prefix="bezgelor-bench-pg-") as pg:
        admin = pg.socket_conn()
        password = secrets.token_urlsafe(16)

        def sql(text: str, db: str = "postgres") -> str:
            return ex.run(commands.psql(client, admin.with_db(db), text, purpose="bench", mutates=True,
                                        timeout=None)).stdout

        sql(f"CREATE ROLE bench LOGIN CREATEDB PASSWORD '{password}'; CREATE DATABASE game OWNER bench;")
        print(f"generating ~{mb} MB of game data …", flush=True)
        _, t_fill = timed(lambda: sql("SET ROLE bench;\n" + SCHEMA + fill_sql(mb), "game"))
        size = int(sql("SELECT pg_database_size('game');").strip())
        print(f"database: {size / 1e6:.0f} MB (generated in {t_fill:.1f}s)")

        # The seed plan: pg_dump plain SQL to a file (`> backup.sql`), restore with psql.
        conn = Conn("127.0.0.1", pg.port, "bench", "game", passfile=pg.dir / "bench.pgpass")
        (pg.dir / "bench.pgpass").write_text(f"*:*:*:bench:{password}\n")
        os.chmod(pg.dir / "bench.pgpass", 0o600)
        plain = work / "backup.sql"
        plan_dump = commands.Command((client.tool("pg_dump"), *conn.args(), "--no-password", "-f", str(plain)),
                                     env=conn.env(), timeout=None)
        _, t_plan_dump = timed(lambda: ex.run(plan_dump))
        plan_size = plain.stat().st_size

        s = settings_load.load(work, environ={}, db_name="game", db_user="bench",
                               backup_dir=str(work / "backups"))
        endpoint = session.direct_endpoint("127.0.0.1", pg.port)
        made, t_ours = timed(lambda: backup.create_backup(s, ex, ui, endpoint=endpoint, password=password))
        assert made is not None

        sql("CREATE DATABASE plan_restore OWNER bench; CREATE DATABASE ours_restore OWNER bench;")
        plan_restore = commands.Command((client.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password",
                                         *conn.args("plan_restore"), "-f", str(plain)),
                                        env=conn.env(), timeout=None)
        _, t_plan_restore = timed(lambda: ex.run(plan_restore))
        ours_restore = commands.pg_restore(client, conn.with_db("ours_restore"), made.path / "dump.pgc",
                                           jobs=max(2, os.cpu_count() or 2))
        _, t_ours_restore = timed(lambda: ex.run(ours_restore))
        # --target app's restore: one transaction over the backup's script, checked before COMMIT
        sql("CREATE DATABASE app_restore OWNER bench;")
        app_server = session.probe(ex, conn.with_db("app_restore"))
        _, t_app_restore = timed(lambda: restore_in_one_transaction(ex, client, app_server, manifest.load(made.path),
                                                                timeout=None, fix="bench"))

        b = manifest.load(made.path)
        tiers = {}
        for tier in verify.TIERS:
            result, t = timed(lambda tier=tier: verify.verify(ex, ui, b, tier, record=False))
            assert result["ok"], result
            tiers[tier] = t
        extra = ""
        if jobs > 1:
            made_j, t_j = timed(lambda: backup.create_backup(s, ex, ui, endpoint=endpoint, password=password,
                                                             jobs=jobs))
            assert made_j is not None
            extra = f"  --jobs {jobs} dump: {t_j:.1f}s ({t_j / t_plan_dump:.2f}x the plan's time)\n"

        link = float(os.environ.get("BENCH_LINK_MBIT", "50"))
        slow: tuple[float, float] | None = None
        if link > 0:  # the same two dumps through a loopback forwarder limited like an uplink
            with RateLimitedForwarder(("127.0.0.1", pg.port), link * 1e6 / 8) as port:
                slow_conn = Conn("127.0.0.1", port, "bench", "game", passfile=pg.dir / "bench.pgpass")
                slow_plain = commands.Command((client.tool("pg_dump"), *slow_conn.args(), "--no-password", "-f",
                                               str(work / "slow.sql")), env=slow_conn.env(), timeout=None)
                _, t_slow_plain = timed(lambda: ex.run(slow_plain))
                slow_end = session.direct_endpoint("127.0.0.1", port)
                _, t_slow_ours = timed(lambda: backup.create_backup(s, ex, ui, endpoint=slow_end, password=password))
            slow = (t_slow_plain, t_slow_ours)

    print()
    print(f"client: pg_dump {client.major} ({commands.compression(client)} compression)")
    print(f"{'':22}{'plan (> backup.sql)':>22}{'inv db.backup':>16}{'ratio ours/plan':>18}")
    print(f"{'dump time':22}{t_plan_dump:>21.1f}s{t_ours:>15.1f}s{t_ours / t_plan_dump:>18.2f}")
    print(f"{'archive size':22}{plan_size / 1e6:>20.1f}MB{made.size / 1e6:>14.1f}MB{made.size / plan_size:>18.2f}")
    print(f"{'restore time':22}{t_plan_restore:>21.1f}s{t_ours_restore:>15.1f}s"
          f"{t_ours_restore / t_plan_restore:>18.2f}")
    print(f"{'restore, one txn (app)':22}{t_plan_restore:>21.1f}s{t_app_restore:>15.1f}s"
          f"{t_app_restore / t_plan_restore:>18.2f}")
    print(extra, end="")
    if slow is not None:
        print(f"{f'dump over {link:g} Mbit/s':22}{slow[0]:>21.1f}s{slow[1]:>15.1f}s{slow[1] / slow[0]:>18.2f}")
        print("  (over a slow link both carry the same uncompressed COPY stream: pg_dump compresses on our side)")
    print("  (db.backup's time includes the row counts in the dump's snapshot, sha256 and the manifest)")
    print("verify tiers (cost relative to the dump itself):")
    for tier, t in tiers.items():
        print(f"  {tier:9} {t:7.1f}s  {t / t_ours:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
