"""A Managed Postgres cluster as Fly describes it: its id (from its name) and its credentials.

Read by backups (credentials.py: the login for pg_dump) and by the restores and creation Fly performs
(fly_restore.py); it builds on neither, so neither imports the other.
"""

from __future__ import annotations

import json

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import postgres_commands
from bezgelor_tasks.redact import register
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings

__all__ = ["cluster_id", "mpg_credentials"]


def cluster_id(settings: Settings, executor: Executor, name: str | None = None) -> str:
    """The id of the Managed Postgres cluster named `name` (default BEZGELOR_FLY_DB_APP, an id or a name)."""
    wanted = name or settings.db_app
    r = executor.run(postgres_commands.mpg_list(settings), check=False)
    try:
        clusters = json.loads(r.stdout or "[]") if r.ok else []
    except ValueError:
        clusters = []
    for c in clusters if isinstance(clusters, list) else []:
        if wanted in (c.get("id"), c.get("name")):
            return str(c["id"])
    raise UserError(f"There is no Managed Postgres cluster named {wanted} in organization {settings.org}.",
                    fix="create it (`inv db.create`), or set BEZGELOR_FLY_DB_APP to a name or id from "
                        "`fly mpg list`.")


def mpg_credentials(settings: Settings, executor: Executor, cid: str) -> dict[str, str]:
    """The cluster's credentials from `fly mpg status --json` (registered as secrets before anything prints)."""
    r = executor.run(postgres_commands.mpg_status(settings, cid), check=False)
    try:
        data = json.loads(r.stdout) if r.ok else {}
    except ValueError:
        data = {}
    creds = {str(k): str(v) for k, v in (data.get("credentials") or {}).items()}
    register(creds.get("password"), creds.get("pgbouncer_uri"))
    creds["status"] = str((data.get("data") or {}).get("status", ""))
    return creds
