"""How the Repo must connect to each Postgres flavor on Fly: the one place that decides it.

init writes these options into runtime.exs's production block; verify evaluates runtime.exs and
checks the Repo against the same description.

- Fly's private network is IPv6 only (`.internal`/`.flycast` have no A records): without
  `socket_options: [:inet6]` Postgrex gets `:nxdomain`. ECTO_IPV6=false turns it off for a database
  reached over IPv4 (outside Fly).
- Postgres Flex offers no TLS on the private network (`fly postgres attach` writes `sslmode=disable`):
  `ssl: true` there fails the connection. Managed Postgres is reached through its PgBouncer, which
  needs `prepare: :unnamed` (transaction pooling) and speaks TLS.
- Fly's proxy and PgBouncer close idle connections: the pool pings them (`idle_interval`), keeps TCP
  keepalive on, and queues patiently rather than failing a burst (`queue_target`, `queue_interval`).
"""

from __future__ import annotations

from dataclasses import dataclass

FLAVORS = ("flex", "mpg")


@dataclass(frozen=True)
class RepoOptions:
    flavor: str
    ipv6: bool                  # socket_options: [:inet6] (unless ECTO_IPV6=false)
    ssl: bool                   # whether TLS is demanded of the server
    prepare_unnamed: bool       # PgBouncer in transaction mode
    queue_target_ms: int = 5000
    queue_interval_ms: int = 30_000
    idle_interval_ms: int = 60_000
    keepalive: bool = True

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
    if flavor == "mpg":
        return RepoOptions("mpg", ipv6=True, ssl=True, prepare_unnamed=True)
    return RepoOptions("flex", ipv6=True, ssl=False, prepare_unnamed=False)


def fly_database_url(flavor: str, db_app: str, db_name: str) -> str:
    """A DATABASE_URL shaped like the one Fly sets for `flavor` (dummy credentials), for evaluating runtime.exs."""
    if flavor == "mpg":
        return f"postgresql://fly-user:verify-dummy@pgbouncer.{db_app}.flympg.net/{db_name}"
    return f"postgres://{db_name}:verify-dummy@{db_app}.flycast:5432/{db_name}?sslmode=disable"
