"""`db.restore --target app` as one transaction: the database ends with exactly the backup's rows, or as it was.

The archive becomes one SQL script (`pg_restore -f`), and psql runs it wrapped in `--single-transaction
-v ON_ERROR_STOP=1` after dropping the schemas the backup holds (CASCADE: a table added since the backup
that references a restored one goes too — it is in the fresh backup taken just before) and before a
check that every table's row count equals the manifest's. Any error, the check included, or a dropped
connection rolls the whole transaction back: PostgreSQL's DDL is transactional, so the drops come back too.

Why not a fresh database and a rename: the app holds connections to its database all the time, and a
rename needs none; why not `pg_restore --clean --single-transaction`: its DROPs fail on objects the
backup does not know (the new table's foreign key), so it could never restore over a schema that moved on.
The cost: the script (uncompressed) is written to a private temporary directory, and no -j.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bezgelor_tasks.backup import commands
from bezgelor_tasks.backup.commands import Client
from bezgelor_tasks.backup.manifest import Backup
from bezgelor_tasks.backup.session import Server
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor

MISMATCH = "BEZGELOR_RESTORE_MISMATCH"

# Exact counts of the ordinary tables in the given schemas, compared in the transaction before COMMIT.
CHECK_SQL = """\
DO $bezgelor_check$
DECLARE
  expected jsonb := $bezgelor_json${expected}$bezgelor_json$::jsonb;
  actual jsonb;
BEGIN
  SELECT coalesce(jsonb_object_agg(t, n), '{{}}'::jsonb) INTO actual FROM (
    SELECT format('%s.%s', ns.nspname, c.relname) AS t,
           (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', ns.nspname, c.relname),
                                                false, true, '')))[1]::text::bigint AS n
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
    WHERE c.relkind = 'r' AND ns.nspname = ANY ($bezgelor_json${schemas}$bezgelor_json$::text[])) s;
  IF actual IS DISTINCT FROM expected THEN
    RAISE EXCEPTION '{mismatch} the restored row counts % differ from the backup''s %', actual, expected;
  END IF;
END
$bezgelor_check$;
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def schemas_of(b: Backup) -> list[str]:
    return sorted({t.partition(".")[0] for t in b.row_counts} | {"public"})


def wrapper_sql(b: Backup, script: Path, server_major: int) -> str:
    schemas = schemas_of(b)
    lines = ["SET lock_timeout = '60s';"]  # wait for the app's locks a while, never forever
    lines += [f"DROP SCHEMA IF EXISTS {_ident(s)} CASCADE;" for s in schemas]
    # pg_dump never creates `public` (every database has it): put it back as a new database has it
    lines.append("CREATE SCHEMA public;")
    if server_major >= 15:
        lines.append("ALTER SCHEMA public OWNER TO pg_database_owner;")
    lines.append("GRANT USAGE ON SCHEMA public TO PUBLIC;")
    lines.append(f"\\i {_psql_quote(str(script))}")
    lines.append(CHECK_SQL.format(expected=json.dumps(b.row_counts, sort_keys=True),
                                  schemas="{" + ",".join(json.dumps(s) for s in schemas) + "}", mismatch=MISMATCH))
    return "\n".join(lines) + "\n"


def _psql_quote(path: str) -> str:
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


def restore(executor: Executor, client: Client, server: Server, b: Backup, *, timeout: float | None,
            fix: str) -> None:
    """Replace the schemas the backup holds with its contents, in one transaction. Raises UserError
    (nothing changed) when anything fails."""
    with tempfile.TemporaryDirectory(prefix="bezgelor-restore-") as tmp:  # 0700: the script holds the data
        script = Path(tmp) / "backup.sql"
        wrapper = Path(tmp) / "all-or-nothing.sql"
        if executor.dry_run:  # the script would only feed the transaction a dry run refuses: show, don't build
            executor.run(commands.psql_single_transaction(server.client, server.conn, wrapper, timeout=timeout))
            return
        executor.run(commands.pg_restore_script(client, b.archive, script, timeout=timeout))
        wrapper.write_text(wrapper_sql(b, script, server.major), encoding="utf-8")
        r = executor.run(commands.psql_single_transaction(server.client, server.conn, wrapper, timeout=timeout),
                         check=False)
    if r.ok:
        return
    text = (r.stderr.strip() or r.stdout.strip())
    if MISMATCH in text:
        why = "the restored row counts differ from the backup's manifest"
    else:
        lines = [x for x in text.splitlines() if "ERROR:" in x or "FATAL:" in x] or text.splitlines()[-1:]
        why = lines[0].split("ERROR:", 1)[-1].split("FATAL:", 1)[-1].strip() if lines else f"exit {r.returncode}"
    raise UserError(f"The restore into {server.conn.dbname} failed ({why}) and was rolled back as a whole: the "
                    "database is exactly as it was before.", fix=fix)
