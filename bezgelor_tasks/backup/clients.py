"""Which PostgreSQL client to use: pg_dump must be at least the server's major version (same is best)."""

from __future__ import annotations

import glob
import re
from pathlib import Path

from bezgelor_tasks.backup.commands import Client
from bezgelor_tasks.errors import UserError

CLIENT_GLOB = "/usr/lib/postgresql/*/bin"


def installed(pattern: str = CLIENT_GLOB) -> list[Client]:
    """Every installed version with a pg_dump, newest first."""
    found = []
    for d in glob.glob(pattern):
        m = re.search(r"/(\d+)/bin/?$", d)
        if m and (Path(d) / "pg_dump").is_file():
            found.append(Client(int(m.group(1)), Path(d)))
    return sorted(found, key=lambda c: c.major, reverse=True)


def newest(pattern: str = CLIENT_GLOB, *, need: tuple[str, ...] = ("pg_dump",)) -> Client:
    for c in installed(pattern):
        if all((c.bindir / n).is_file() for n in need):
            return c
    raise UserError(f"No PostgreSQL client programs ({', '.join(need)}) were found under {pattern}.",
                    fix="install them, e.g. `apt-get install postgresql-client-15` (Debian/Ubuntu with the PGDG "
                        "repository) — the server programs initdb/pg_ctl come with `postgresql-15`.")


def server_major(version_num: str) -> int:
    """`SHOW server_version_num` → major: 150020 → 15, 90624 → 9 (9.6: any newer pg_dump reads it)."""
    return int(version_num.strip()) // 10000


def choose(server: int, available: list[Client]) -> Client:
    """The same major as the server if installed, else the oldest newer one; never an older pg_dump."""
    same = [c for c in available if c.major == server]
    if same:
        return same[0]
    newer = sorted((c for c in available if c.major > server), key=lambda c: c.major)
    if newer:
        return newer[0]
    have = ", ".join(str(c.major) for c in available) or "none"
    raise UserError(
        f"The database server runs PostgreSQL {server}, but the pg_dump installed here is older "
        f"(versions found: {have}); pg_dump refuses to dump a newer server.",
        fix=f"install the PostgreSQL {server} client: `apt-get install postgresql-client-{server}` "
            f"(on macOS `brew install postgresql@{server}`), then run the backup again.")


def with_server_programs(client: Client, pattern: str = CLIENT_GLOB) -> Client:
    """A version that also has initdb/pg_ctl, at least `client.major` (the scratch cluster for restores)."""
    for c in sorted(installed(pattern), key=lambda c: c.major):
        if c.major >= client.major and (c.bindir / "initdb").is_file() and (c.bindir / "pg_ctl").is_file():
            return c
    raise UserError(
        f"Verifying a PostgreSQL {client.major} backup needs PostgreSQL {client.major} (or newer) server "
        f"programs (initdb, pg_ctl) to start a scratch cluster, and none were found under {pattern}.",
        fix=f"install them (`apt-get install postgresql-{client.major}`), or verify with --tier standard.")
