"""`inv db.drill`: prove the newest off-site backup restores, and how long a restore takes.

Download it, check and decrypt it (offsite.fetched), restore it into a scratch PostgreSQL started for the
purpose (scratch.py), compare every table's row count with the manifest, and compare the restored
`schema_migrations` with the newest migration the manifest recorded (what the release's migration status
check would say, as far as it can be said without the release). The record — when, which backup, the
restore's seconds (the recovery time an operator can expect), the result — is stored off-site next to the
backups (`drills/<time>_<ok|failed>.json`): a later run, on any machine, reads it there. A damaged or
mismatching backup fails loudly, after it was recorded.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime
from typing import Any

from bezgelor_tasks.backup import clients, commands, manifest, offsite, scratch, session, verify
from bezgelor_tasks.backup.manifest import Backup
from bezgelor_tasks.backup.offsite import DRILLS, OffsiteDamaged
from bezgelor_tasks.backup.store import Store
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI

DB = "drill"


def restore_timed(executor: Executor, b: Backup, timeout: float | None) -> dict[str, Any]:
    """Restore `b` into a scratch cluster: seconds taken, row counts, newest migration, problems."""
    client = verify.restore_client(b)
    server_client = clients.with_server_programs(client)
    with scratch.scratch_cluster(executor, server_client, prefix="bezgelor-drill-") as cluster:
        # Everything below aims at the scratch cluster (in_scratch): it changes nothing of the user's, so it
        # runs under a dry run too (which then only leaves the record unwritten).
        create = commands.psql(server_client, cluster.socket_conn(), f'CREATE DATABASE "{DB}";',
                               purpose="create the drill database")
        executor.run(commands.in_scratch(create))
        conn = cluster.socket_conn(DB)
        started = time.monotonic()
        r = executor.run(commands.in_scratch(commands.pg_restore(client, conn, b.archive, jobs=2, timeout=timeout)),
                         check=False)
        seconds = round(time.monotonic() - started, 3)
        if not r.ok:
            tail = " ".join((r.stderr.strip() or r.stdout.strip()).splitlines()[-2:]) or f"exit {r.returncode}"
            return {"restore_seconds": seconds, "problems": [f"the restore failed: {tail}"]}
        counts = session.fetch_row_counts(executor, server_client, conn)
        out = executor.run(commands.in_scratch(commands.psql(server_client, conn, session.NEWEST_MIGRATION_SQL,
                                                             purpose="read the newest migration"))).stdout
        newest = next((x[len("MIGRATION "):].strip() for x in out.splitlines() if x.startswith("MIGRATION ")), "")
    problems = verify.compare_counts(b.row_counts, counts)
    recorded = b.data.get("newest_migration")
    migrations = {"manifest": recorded, "restored": newest or None}
    if "newest_migration" not in b.data:
        migrations["note"] = "the backup predates migration recording"
    elif (newest or None) != recorded:
        problems.append(f"the restored schema_migrations ends at {newest or 'nothing'}, the manifest says "
                        f"{recorded or 'nothing'}")
    return {"restore_seconds": seconds, "row_counts": counts, "migrations": migrations, "problems": problems}


def drill(settings: Settings, executor: Executor, ui: UI, *, name: str | None = None) -> dict[str, Any]:
    """Run a drill of `name` (default: the newest off-site backup); returns its record. Raises after
    recording when it failed."""
    store = Store(settings, executor)
    ob = offsite.find_offsite(store, name)
    at = datetime.now(UTC)
    started = time.monotonic()
    ui.info(f"restore drill of off-site {ob.name} ({ob.size / 1e6:.1f} MB, taken {ob.created_at:%Y-%m-%d %H:%M} UTC)")
    try:
        with offsite.fetched(settings, store, ob) as copy:
            fetched_s = round(time.monotonic() - started, 3)
            outcome = restore_timed(executor, copy, settings.command_timeout_s)
    except OffsiteDamaged as e:
        fetched_s, outcome = round(time.monotonic() - started, 3), {"problems": [e.message]}
    record: dict[str, Any] = {
        "backup": ob.name, "at": at.isoformat(), "ok": not outcome["problems"], "fetch_seconds": fetched_s,
        "total_seconds": round(time.monotonic() - started, 3), "where": socket.gethostname(),
        "backup_created_at": ob.created_at.isoformat(), "size": ob.size, **outcome}
    key = store.where.key(DRILLS, f"{manifest.stamp(at)}_{'ok' if record['ok'] else 'failed'}.json")
    store.put_bytes(key, json.dumps(record, indent=2, sort_keys=True).encode(),
                    shown=f"record the drill of {ob.name}: {'ok' if record['ok'] else 'FAILED'}")
    offsite.record_check(store, ob.name, {"tier": "full", "ok": record["ok"], "problems": record["problems"],
                                          "at": at.isoformat(), "seconds": record["total_seconds"], "drill": key})
    if not record["ok"]:
        ui.error(f"drill FAILED for off-site {ob.name}: {'; '.join(record['problems'])}")
        raise UserError(f"The restore drill of off-site backup {ob.name} FAILED: {'; '.join(record['problems'])}. "
                        "This backup would not restore as it should.",
                        fix="take a new off-site backup now (`inv db.backup --offsite`), run `inv db.drill` again, "
                            "and look at why this one broke (the record is in the bucket under drills/).")
    rows = sum((record.get("row_counts") or {}).values())
    ui.ok(f"drill ok: {ob.name} restored in {record['restore_seconds']:.1f}s ({rows} rows in "
          f"{len(record.get('row_counts') or {})} tables, counts match; newest migration "
          f"{record['migrations'].get('restored') or 'none'}); fetch + check + decrypt {fetched_s:.1f}s, "
          f"drill {record['total_seconds']:.1f}s in all")
    return record


def last_drill(store: Store) -> dict[str, Any] | None:
    """The newest drill record in the bucket, or None."""
    keys = sorted(o.key for o in store.list_objects(DRILLS + "/") if o.key.endswith(".json"))
    return json.loads(store.get_bytes(keys[-1])) if keys else None
