"""A dry run changes nothing anywhere: every task in `inv --list` is run with `--dry-run` (a task without that
flag only reads, and runs as it is) against a tripwire: the fake flyctl fails and records any call that would
change the account, the real PostgreSQL behind `fly proxy` is fingerprinted before and after (catalog, row
counts, a checksum of every row), the off-site bucket (a real S3 server) is listed with every object's
checksum before and after, and the checkout's files (`.bezgelor/` and `.git/` included) are hashed before
and after.

A new task needs an entry in ARGS: the words a user would type after its name for a run that gets far (a real
backup to restore, a release to roll back to). A task without an entry fails the test, by name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.inv import run_inv
from tests.support.trustworld import APP, DB, run_task, takes, two_healthy_releases  # noqa: F401 (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.elixir, pytest.mark.slow]

BACKUP = "<the newest backup>"  # filled in from the world
# The arguments each task needs, after its name (one list per run; several runs: a list of lists). Runs get
# `--dry-run` added when the task has it. An entry per task, even when it needs nothing.
ARGS: dict[str, list[str] | list[list[str]]] = {
    "alert.test": [],
    "announce": ["Server restart at 22:00"],
    "console": [],
    "restart": ["--drain", "0", "--yes"],
    "start": [],
    "status": [],
    "stop": ["--drain", "0", "--yes"],
    "watch.run": ["--once"],                # `inv watch`
    "watch.deploy": ["--yes"],
    "watch.logs": [],
    "watch.remove": ["--yes"],
    "watch.status": [],
    "audit": [],
    "demo": ["--dest", "../demo-checkout"],
    "init": [["--yes"], ["--check"]],
    "logs": ["--since", "1h"],
    "players": [],
    "verify": [],
    "build.image": [],
    "db.backup": [[], ["--offsite"]],
    "db.backups": [],
    "db.create": [],                      # Managed Postgres only: a Flex account is refused (nothing changes)
    "db.drill": [],
    "db.pin": [BACKUP],
    "db.unpin": [BACKUP],
    "db.migrate": [],
    "db.prune": [],
    "db.restore": [["--backup", BACKUP, "--target", "app", "--yes", "--confirm-app", DB],
                   ["--backup", BACKUP, "--target", "local", "--database", "tripwire_copy"],
                   ["--backup", BACKUP, "--from", "offsite", "--target", "local", "--database", "tripwire_copy"],
                   ["--point-in-time", "2026-12-01T23:59:00Z", "--yes", "--confirm-app", DB]],
    "db.rollback": ["--to", "0", "--yes", "--confirm-app", APP],
    "db.status": [],
    "db.verify-backup": [["--tier", "standard"], ["--tier", "standard", "--from", "offsite"]],
    "deploy.full": [["--yes"], ["--yes", "--skip-backup", "--drain", "0"]],
    "deploy.status": [],
    "ips.allocate": [],
    "ips.list": [],
    "lock.release": ["--yes"],
    "lock.status": [],
    "maintenance.off": [],
    "maintenance.on": [],
    "plan.size": [],
    "release.build": [],
    "rollback.app": ["--version", "1", "--yes", "--force"],
    "rollback.list": [],
    "secrets.check": [],
    "secrets.list": [],
    "secrets.rotate": ["SECRET_KEY_BASE", "--now"],
    "secrets.set": ["CLOAK_KEY", "--now"],
}


def listed_tasks() -> list[str]:
    """What `inv --list` shows (its JSON form), the way a user finds the tasks."""
    ran = run_inv("--list", "--list-format", "json")
    assert ran.returncode == 0, ran.stderr

    def names(collection: dict[str, Any], prefix: str = "") -> list[str]:
        found = [prefix + t["name"] for t in collection.get("tasks", [])]
        for sub in collection.get("collections", []):
            found += names(sub, f"{prefix}{sub['name']}.")
        return found

    return sorted(names(json.loads(ran.stdout)))


def runs_of(task: str, backup: str) -> list[list[str]]:
    entry = ARGS[task]
    runs = entry if entry and isinstance(entry[0], list) else [entry]
    extra = ["--dry-run"] if takes(task, "dry-run") else []
    return [[task, *(backup if word == BACKUP else word for word in run), *extra] for run in runs]  # type: ignore


def files_of(root: Path) -> dict[str, str]:
    """Every file under `root` with its sha256 (and mode): what a dry run must leave exactly as it was."""
    found = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            found[str(p.relative_to(root))] = f"{p.stat().st_mode:o} {hashlib.sha256(p.read_bytes()).hexdigest()}"
    return found


def database_fingerprint(pg_server: Any) -> dict[str, str]:
    """Every database on the server: its tables (catalog), each table's rows counted and checksummed."""
    found = {}
    for db in pg_server.sql("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1;").split():
        catalog = pg_server.sql("SELECT string_agg(format('%s.%s:%s:%s', n.nspname, c.relname, c.relkind, "
                                "(SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ',' "
                                "ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 "
                                "AND NOT a.attisdropped)), ';' ORDER BY 1) FROM pg_class c JOIN pg_namespace n "
                                "ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', "
                                "'information_schema', 'pg_toast');", db)
        found[f"{db} catalog"] = hashlib.sha256(catalog.encode()).hexdigest()
        tables = pg_server.sql("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname "
                               "NOT IN ('pg_catalog', 'information_schema') ORDER BY 1;", db).splitlines()
        for t in tables:
            found[f"{db} {t}"] = pg_server.sql(f"SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' "
                                               f"ORDER BY x::text)), '-') FROM {t} x;", db).strip()
    return found


def bucket_fingerprint(s3: Any, bucket: str) -> dict[str, str]:
    """Every object in the bucket with its ETag (and unfinished multipart uploads): what a dry run leaves."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    found = {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}
    found.update({f"upload {u['Key']}": u["UploadId"]
                  for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])})
    return found


def with_an_offsite_copy(s3_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Any, str]:
    """The off-site end configured (a bucket, an age key) and the newest backup copied there for real."""
    import pyrage

    bucket = s3_server.new_bucket("tripwire")
    for key, value in s3_server.env(bucket, "bezgelor").items():
        monkeypatch.setenv(key, value)
    identity = pyrage.x25519.Identity.generate()
    keyfile = tmp_path / "age.key"
    keyfile.write_text(f"{identity}\n")
    monkeypatch.setenv("BEZGELOR_BACKUP_AGE_RECIPIENTS", str(identity.to_public()))
    monkeypatch.setenv("BEZGELOR_BACKUP_AGE_IDENTITY_FILE", str(keyfile))
    made = run_task("db.backup", "--offsite")
    assert made.code == 0, made.output
    return s3_server.client(), bucket


def test_no_task_changes_anything_under_dry_run(two_healthy_releases: Path, fake_fly, pg_server,  # noqa: ANN001, F811
                                                 game_servers, s3_server, receiver, monkeypatch,  # noqa: ANN001
                                                 tmp_path) -> None:  # noqa: ANN001
    root = two_healthy_releases
    s3, bucket = with_an_offsite_copy(s3_server, monkeypatch, tmp_path)
    posted = (receiver.events(), receiver.heartbeats())  # every alert channel and the heartbeat, on loopback
    backup = sorted(p.name for p in (root / ".bezgelor" / "backups").iterdir() if not p.name.startswith("."))[-1]
    tasks = listed_tasks()
    missing = [t for t in tasks if t not in ARGS]
    assert not missing, f"add its arguments here (tests/test_trust_dry_run.py, ARGS): {', '.join(missing)}"
    gone = sorted(set(ARGS) - set(tasks))
    assert not gone, f"ARGS names tasks `inv --list` does not have: {gone}"

    before_files, before_db = files_of(root), database_fingerprint(pg_server)
    before_bucket = bucket_fingerprint(s3, bucket)
    before_fly = fake_fly.state()
    calls_before = len(fake_fly.calls())
    fake_fly.tripwire(True)
    report = []
    for task in tasks:
        for argv in runs_of(task, backup):
            if task == "db.create":
                monkeypatch.setenv("BEZGELOR_PG_FLAVOR", "mpg")
            ran = run_task(*argv, stdin="a value typed into the pipe\n")
            monkeypatch.delenv("BEZGELOR_PG_FLAVOR", raising=False)
            tripped = [c["argv"][1:] for c in fake_fly.tripped()]
            report.append((" ".join(argv), ran.code, tripped, ran.output))
            assert not tripped, f"`inv {' '.join(argv)}` ran changing flyctl commands: {tripped}\n{ran.output}"
            assert "hit a bug" not in ran.stderr and "Traceback" not in ran.output, ran.output
    fake_fly.tripwire(False)

    assert files_of(root) == before_files
    assert database_fingerprint(pg_server) == before_db
    assert bucket_fingerprint(s3, bucket) == before_bucket
    assert (receiver.events(), receiver.heartbeats()) == posted, "a dry run posts no alert and no heartbeat"
    after_fly = fake_fly.state()
    for key in ("apps", "images", "mpg"):
        assert after_fly.get(key) == before_fly.get(key), key
    assert not (tmp_path / "demo-checkout").exists() and not (root.parent / "demo-checkout").exists()
    assert len(fake_fly.calls()) > calls_before  # the reads did run
    stopped = [(argv, code, out[-300:]) for argv, code, _, out in report if code != 0]
    assert len(stopped) <= len(report) // 10, stopped  # the dry runs get to the end of their plan (players: no world)


# In-process writes that need not pass the executor: a private temporary directory this run makes and removes.
RAW_WRITES_ALLOWED = {
    "files.py": "the writers themselves (each called through Executor.change)",
    "backup/scratch.py": "the scratch cluster of verify's full tier, in a temporary directory",
    "backup/credentials.py": "the in-memory pgpass (a 0600 temporary file where memfd is missing)",
    "backup/atomic_restore.py": "the restore script, in a private temporary directory",
    "backup/session.py": "the snapshot's FIFO, inside the backup's own .partial directory (or a streamed one's "
                         "private temporary folder)",
    "backup/crypto.py": "decrypts into the private folder its caller fills (a temporary copy, or a partial folder "
                        "filled inside an Executor.change)",
    "backup/offsite.py": "fills a private temporary folder, or the partial folder of `db.restore --from offsite`'s "
                         "one Executor.change",
    "backup/store.py": "downloads into its caller's private folder",
    "backup/streamed.py": "a streamed backup's private temporary folder (the snapshot's FIFO only), removed after it",
    "render.py": "the template engine's bytecode cache, under ~/.cache (never the checkout)",
    "judge_launch.py": "drops the Elixir judge's launch note, under ~/.cache, when a start from it died",
    "watch/app.py": "the watcher image's build context, in a private temporary directory",
}
RAW_WRITE = r"write_text\(|write_bytes\(|\.mkdir\(|\.unlink\(|rmtree\(|os\.rename\(|os\.replace\(|O_CREAT|" \
            r"copytree\(|atomic_write\(|open\([^)]*['\"][wa]"


def test_every_file_write_passes_the_executor() -> None:
    """So a dry run can refuse it: files.write/append/remove/... (or Executor.change), never a raw write."""
    import re

    package = Path(__file__).resolve().parents[1] / "bezgelor_tasks"
    raw = [f"{p.relative_to(package)}:{n}: {line.strip()}" for p in sorted(package.rglob("*.py"))
           if str(p.relative_to(package)) not in RAW_WRITES_ALLOWED
           for n, line in enumerate(p.read_text().splitlines(), 1)
           if re.search(RAW_WRITE, line) and not line.lstrip().startswith("#")]
    assert raw == [], "write through bezgelor_tasks.files (it passes the executor):\n" + "\n".join(raw)
