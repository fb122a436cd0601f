"""`inv db.verify-backup`: three tiers, each including the ones before it.

quick    — every file's size and sha256 against the manifest, and the archive's table of contents
standard — plus a full read of the archive (`pg_restore -f /dev/null`): truncation, corruption
full     — plus a restore into a scratch PostgreSQL started for the purpose, and every table's row count
           compared with the manifest (the counts read in the dump's own snapshot)
The result is appended to the manifest's `verifications`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bezgelor_tasks.backup import clients, commands, manifest, scratch, session
from bezgelor_tasks.backup.commands import Client
from bezgelor_tasks.backup.manifest import Backup
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor, Result
from bezgelor_tasks.ui import UI

TIERS = ("quick", "standard", "full")


def find(root: Path, name: str | None) -> Backup:
    """A backup by (unique prefix of) its name or path; the newest when no name is given."""
    if name and (Path(name) / manifest.MANIFEST).is_file():
        return manifest.load(Path(name))
    found = manifest.list_backups(root)
    if not found:
        raise UserError(f"There are no backups under {root}.", fix="run `inv db.backup` first.")
    if not name:
        return found[-1]
    hits = [b for b in found if b.name == name] or [b for b in found if b.name.startswith(name)]
    if len(hits) != 1:
        what = "matches none" if not hits else f"matches {len(hits)}"
        raise UserError(f"The backup name {name!r} {what} of the backups under {root}.",
                        fix="use a name from `inv db.backups` (a unique prefix is enough).")
    return hits[0]


def restore_client(b: Backup, search: str | None = None) -> Client:
    return clients.choose(int(b.data.get("pg_dump_version", 0)), clients.installed(search))


def check_files(b: Backup) -> list[str]:
    problems = []
    expected = b.data.get("files", {})
    for rel, meta in sorted(expected.items()):
        p = b.path / rel
        if not p.is_file():
            problems.append(f"{rel} is missing")
        elif p.stat().st_size != meta["size"]:
            problems.append(f"{rel} is {p.stat().st_size} bytes, the manifest says {meta['size']} (truncated?)")
        elif manifest.sha256_file(p) != meta["sha256"]:
            problems.append(f"{rel} has changed since the backup (sha256 differs: corrupted)")
    if b.archive.is_dir():
        extra = {str(p.relative_to(b.path)) for p in b.archive.rglob("*") if p.is_file()} - set(expected)
        problems += [f"{rel} is not part of the backup" for rel in sorted(extra)]
    return problems


def check_toc(executor: Executor, client: Client, b: Backup) -> list[str]:
    return toc_problems(executor.run(commands.pg_restore_list(client, b.archive), check=False), b.row_counts)


def toc_problems(r: Result, row_counts: dict[str, int]) -> list[str]:
    """What `pg_restore -l` says is wrong: an unreadable table of contents, or a table without its data."""
    if not r.ok:
        return [f"the table of contents cannot be read: {(r.stderr.strip().splitlines() or ['?'])[-1]}"]
    missing = []
    for table in row_counts:
        schema, _, name = table.partition(".")
        if f"TABLE DATA {schema} {name} " not in r.stdout:
            missing.append(table)
    return [f"the table of contents has no data for {', '.join(missing)}"] if missing else []


def read_problems(r: Result) -> list[str]:
    """What a full read of the archive (`pg_restore -f /dev/null`) says is wrong."""
    if r.ok:
        return []
    tail = " ".join(r.stderr.strip().splitlines()[-2:]) or f"exit {r.returncode}"
    return [f"reading the whole archive failed: {tail}"]


def compare_counts(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    problems = []
    for t in sorted(set(expected) | set(actual)):
        if t not in actual:
            problems.append(f"table {t} is missing after the restore")
        elif t not in expected:
            problems.append(f"table {t} is not in the manifest")
        elif expected[t] != actual[t]:
            problems.append(f"table {t} has {actual[t]} rows, the manifest says {expected[t]}")
    return problems


def restore_check(executor: Executor, client: Client, b: Backup, *, jobs: int,
                  timeout: float | None) -> list[str]:
    server_client = clients.with_server_programs(client)
    with scratch.scratch_cluster(executor, server_client, prefix="bezgelor-verify-") as cluster:
        executor.run(commands.in_scratch(commands.psql(server_client, cluster.socket_conn(),
                                                       'CREATE DATABASE "verify";',
                                                       purpose="create the scratch database")))
        conn = cluster.socket_conn("verify")
        r = executor.run(commands.in_scratch(commands.pg_restore(client, conn, b.archive, jobs=jobs,
                                                                 timeout=timeout)), check=False)
        if not r.ok:
            tail = " ".join((r.stderr.strip() or r.stdout.strip()).splitlines()[-2:]) or f"exit {r.returncode}"
            return [f"the restore into a scratch database failed: {tail}"]
        return compare_counts(b.row_counts, session.fetch_row_counts(executor, server_client, conn))


def verify(executor: Executor, ui: UI, b: Backup, tier: str = "full", *, jobs: int = 2,
           timeout: float | None = None, record: bool = True, search: str | None = None) -> dict[str, Any]:
    if tier not in TIERS:
        raise UserError(f"Unknown verification tier {tier!r}.", fix=f"use one of {', '.join(TIERS)}.")
    started = time.monotonic()
    client = restore_client(b, search)
    problems = check_files(b)
    if not problems:
        problems = check_toc(executor, client, b)
    if not problems and tier in ("standard", "full"):
        problems = read_problems(executor.run(commands.pg_restore_read_all(client, b.archive, timeout=timeout),
                                              check=False))
    if not problems and tier == "full":
        problems = restore_check(executor, client, b, jobs=jobs, timeout=timeout)
    result = {"tier": tier, "ok": not problems, "problems": problems, "at": datetime.now(UTC).isoformat(),
              "seconds": round(time.monotonic() - started, 3)}
    unrecorded = record and not b.record_verification(executor, result)  # on disk before it is said
    tail = " (dry run: not recorded in its manifest)" if unrecorded else ""
    if problems:
        ui.error(f"backup {b.name} FAILED {tier} verification{tail}: " + "; ".join(problems))
    else:
        ui.ok(f"backup {b.name} passed {tier} verification{tail}")
    return result


def require_ok(b: Backup, result: dict[str, Any], *, recorded: bool | None = None, nothing: str = "") -> None:
    """Raise when `result` failed. `recorded`: whether the failure is in the manifest (default: the last
    verification on record is this one); `nothing`: what was not done because of it."""
    if result["ok"]:
        return
    if recorded is None:
        recorded = b.last_verification == result
    marked = ("It is marked as failed in its manifest and will not be used for restores or counted as verified."
              if recorded else "Its manifest was not changed (dry run): a real run marks it as failed.")
    raise UserError(f"Backup {b.name} is damaged{f'; {nothing}' if nothing else ''}.",
                    detail="\n".join([*(f"- {p}" for p in result["problems"]), marked]),
                    fix="take a new backup (`inv db.backup`) and verify it; `inv db.prune` removes old ones.")
