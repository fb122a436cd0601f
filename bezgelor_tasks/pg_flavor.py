"""What each Postgres flavor (BEZGELOR_PG_FLAVOR) needs from the app: the one place that decides it.

init writes these choices into runtime.exs's production block and fly.toml's release command; verify
evaluates runtime.exs and checks the Repo against the same description.

flex — `fly postgres` (unmanaged Flex). `fly postgres attach` sets DATABASE_URL to
       `postgres://<user>:<pw>@<db>.flycast:5432/<db>?sslmode=disable`: plain TCP on Fly's private network,
       which is IPv6 only (`.internal`/`.flycast` have no A records: without `socket_options: [:inet6]`
       Postgrex gets `:nxdomain`). postgres-flex configures no TLS there, so `ssl: true` fails every
       connection. No pooler: Ecto's named prepared statements work, migrations use the same URL.
mpg  — Managed Postgres. `fly mpg attach` sets DATABASE_URL to the **PgBouncer** URI
       (`postgresql://fly-user:<pw>@pgbouncer.<cluster>.flympg.net/fly-db`), transaction mode, where named
       prepared statements do not work: `prepare: :unnamed`. Migrations take advisory locks and need a
       session: they use DIRECT_DATABASE_URL. MPG connections are TLS (Postgrex does not read `sslmode` from
       the URL: `ssl: true` in the Repo).

Both: Fly's proxy and PgBouncer close idle connections, so the pool pings them (`idle_interval`), keeps TCP
keepalive on, and queues patiently rather than failing a burst (`queue_target`, `queue_interval`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bezgelor_tasks.release_image import MIGRATE

FLAVORS = ("flex", "mpg")
DIRECT_URL_VARIABLE = "DIRECT_DATABASE_URL"


@dataclass(frozen=True)
class RepoOptions:
    flavor: str
    ssl: bool                   # `ssl: true`: the server requires TLS
    pooled: bool                # a transaction-mode PgBouncer sits between the app and PostgreSQL
    migration_url_env: str      # the variable migrations connect with (the release command swaps it in)
    url_env: str = "DATABASE_URL"
    ipv6: bool = True           # socket_options: [:inet6] (unless ECTO_IPV6=false)
    queue_target_ms: int = 5000
    queue_interval_ms: int = 30_000
    idle_interval_ms: int = 60_000
    keepalive: bool = True

    @property
    def prepare(self) -> str:
        """`:named` (Ecto's default) or `:unnamed` (a transaction-mode pooler in between)."""
        return ":unnamed" if self.pooled else ":named"

    @property
    def prepare_unnamed(self) -> bool:
        return self.pooled

    @property
    def why_ssl(self) -> str:
        """One sentence on the ssl choice, for the generated file and verify's findings."""
        if self.ssl:
            return ("Managed Postgres is reached through its PgBouncer over TLS; transaction pooling needs "
                    "prepare: :unnamed.")
        return ("Postgres Flex offers no TLS on Fly's private network (`fly postgres attach` writes "
                "sslmode=disable), so `ssl: true` would make every connection fail.")


def repo_runtime_options(flavor: str) -> RepoOptions:
    """What the Repo needs for `flavor` (flex | mpg)."""
    if flavor == "flex":
        return RepoOptions("flex", ssl=False, pooled=False, migration_url_env="DATABASE_URL")
    if flavor == "mpg":
        return RepoOptions("mpg", ssl=True, pooled=True, migration_url_env=DIRECT_URL_VARIABLE)
    raise ValueError(f"unknown Postgres flavor {flavor!r}: one of {', '.join(FLAVORS)}")


def release_command(flavor: str, migrate: str = MIGRATE) -> str:
    """fly.toml's `[deploy] release_command`: with MPG the migration runs on the direct URL."""
    options = repo_runtime_options(flavor)
    if options.migration_url_env == options.url_env:
        return migrate
    return f"/bin/sh -lc 'DATABASE_URL=${options.migration_url_env} {migrate}'"


def fly_database_url(flavor: str, db_app: str, db_name: str) -> str:
    """A DATABASE_URL shaped like the one Fly sets for `flavor` (dummy credentials), for evaluating runtime.exs."""
    if flavor == "mpg":
        return f"postgresql://fly-user:verify-dummy@pgbouncer.{db_app}.flympg.net/{db_name}"
    return f"postgres://{db_name}:verify-dummy@{db_app}.flycast:5432/{db_name}?sslmode=disable"
