"""`inv db.backup --remote`: a Fly-side backup instead of a local dump.

Flex (`fly postgres backup create`) exits 0 even when the backup fails on the machine, so the backup is
named and then looked for in `fly postgres backup list`. Managed Postgres: `fly mpg backup create`.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import postgres_commands
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI


def list_remote(settings: Settings, executor: Executor) -> list[dict[str, Any]]:
    """Fly-side backups, as rows (Flex prints a table: rows are its lines split on whitespace)."""
    if settings.pg_flavor == "mpg":
        from bezgelor_tasks.backup.fly_restore import cluster_id

        try:
            cid = cluster_id(settings, executor)
        except UserError as e:
            return [{"error": e.message}]
        r = executor.run(postgres_commands.mpg_backup_list(settings, cid), check=False)
        if not r.ok:
            return [{"error": r.stderr.strip() or r.stdout.strip()}]
        if r.stdout.strip().startswith("No backups found"):  # flyctl prints this even with --json
            return []
        try:
            data = json.loads(r.stdout or "[]")
        except ValueError:
            return [{"error": "unreadable JSON from fly mpg backup list"}]
        return [{str(k).lower(): v for k, v in row.items()} for row in data] if isinstance(data, list) else []
    r = executor.run(postgres_commands.postgres_backup_list(settings), check=False)
    if not r.ok:
        lines = [x for x in (r.stderr.strip() or r.stdout.strip()).splitlines() if x.startswith("Error")]
        return [{"error": lines[-1] if lines else f"exit {r.returncode}"}]
    lines = [x for x in r.stdout.splitlines() if x.strip() and not set(x.strip()) <= set("-+| ")]
    return [{"line": x.strip()} for x in lines[1:]]  # first line is the header


def create_remote(settings: Settings, executor: Executor, ui: UI) -> dict[str, Any]:
    # unique, so `backup list` can only show ours under this name
    name = "bezgelor-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    if settings.pg_flavor == "mpg":
        from bezgelor_tasks.backup.fly_restore import cluster_id

        r = executor.run(postgres_commands.mpg_backup_create(settings, cluster_id(settings, executor)), check=False)
        if not r.ok:
            raise UserError(f"`fly mpg backup create {settings.db_app}` failed: {r.stderr.strip()}",
                            fix="check the cluster id (BEZGELOR_FLY_DB_APP) with `fly mpg list`.")
        ui.ok(f"Managed Postgres backup started for {settings.db_app}")
        return {"flavor": "mpg", "output": r.stdout.strip()}
    r = executor.run(postgres_commands.postgres_backup_create(settings, name), check=False)
    if not r.ok:
        err = r.stderr.strip() or r.stdout.strip()
        fix = (f"run `fly postgres backup enable -a {settings.db_app}` once (needs ≥ 512 MB on the Postgres "
               f"machines: `fly scale memory 1024 -a {settings.db_app}`), then try again.") \
            if "enable" in err.lower() or "not enabled" in err.lower() else "read flyctl's message and retry."
        raise UserError(f"The Fly-side backup of {settings.db_app} failed: {err}", fix=fix)
    rows = list_remote(settings, executor)  # flyctl exits 0 even when the backup failed: look for it
    mine = [row for row in rows if name in str(row.get("line", ""))]
    if not mine or "fail" in str(mine[0]).lower():
        raise UserError(f"flyctl reported success, but backup {name} is "
                        f"{'not listed' if not mine else 'listed as failed'} by `fly postgres backup list`.",
                        fix=f"look at `fly logs -a {settings.db_app}` for the barman/wal-g error, then retry.")
    ui.ok(f"Fly-side backup {name} of {settings.db_app}: {mine[0]['line']}")
    return {"flavor": "flex", "name": name, "listed": mine[0]["line"]}
