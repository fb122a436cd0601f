"""What each Postgres flavor (BEZGELOR_PG_FLAVOR) needs from the app, in one place.

flex — `fly postgres` (unmanaged Flex). `fly postgres attach` sets DATABASE_URL to
       `postgres://<user>:<pw>@<db>.flycast:5432/<db>?sslmode=disable`: plain TCP on Fly's private IPv6
       network, no pooler, so Ecto's default named prepared statements work and migrations use the same URL.
mpg  — Managed Postgres. `fly mpg attach` sets DATABASE_URL to the **PgBouncer** URI
       (`postgresql://fly-user:<pw>@pgbouncer.<cluster>.flympg.net/fly-db`), which Ecto needs in
       transaction mode, where named prepared statements do not work: `prepare: :unnamed`. Migrations take
       advisory locks and need a session: they use DIRECT_DATABASE_URL (`direct.<cluster>.flympg.net`).
       MPG connections are TLS (Postgrex does not read `sslmode` from the URL: `ssl: true` in the Repo).

The runtime.exs Repo block and the release command are generated from this, never from a second copy.
"""

from __future__ import annotations

from typing import Any

FLAVORS = ("flex", "mpg")
DIRECT_URL_VARIABLE = "DIRECT_DATABASE_URL"


def repo_runtime_options(flavor: str) -> dict[str, Any]:
    """The Repo's runtime choices for a flavor, as data (Elixir terms spelled as strings):

    url_env           — the variable the Repo's `url:` reads at runtime
    migration_url_env — the variable migrations must connect with (the release command swaps it in)
    ssl               — `ssl: true` in the Repo (the server requires TLS)
    socket_options    — Fly's private network is IPv6: `[:inet6]` (ECTO_IPV6 may still override)
    prepare           — `:named` (Ecto's default) or `:unnamed` (a transaction-mode pooler in between)
    pooled            — a PgBouncer sits between the app and PostgreSQL
    """
    if flavor == "flex":
        return {"url_env": "DATABASE_URL", "migration_url_env": "DATABASE_URL", "ssl": False,
                "socket_options": ":inet6", "prepare": ":named", "pooled": False}
    if flavor == "mpg":
        return {"url_env": "DATABASE_URL", "migration_url_env": DIRECT_URL_VARIABLE, "ssl": True,
                "socket_options": ":inet6", "prepare": ":unnamed", "pooled": True}
    raise ValueError(f"unknown Postgres flavor {flavor!r}: one of {', '.join(FLAVORS)}")


def release_command(flavor: str, migrate: str = "/app/bin/migrate") -> str:
    """fly.toml's `[deploy] release_command`: with MPG the migration runs on the direct URL."""
    options = repo_runtime_options(flavor)
    if options["migration_url_env"] == options["url_env"]:
        return migrate
    return f"/bin/sh -lc 'DATABASE_URL=${options['migration_url_env']} {migrate}'"
