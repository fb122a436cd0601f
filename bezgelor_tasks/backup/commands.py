"""Pure argv builders for the PostgreSQL client and server programs (pg_dump, pg_restore, psql, initdb, pg_ctl).

Nothing here runs anything: each function returns a `command.Command` for the one executor. Passwords never
appear in argv: clients read them from a temporary pgpass file named by PGPASSFILE in `Conn.env()`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from bezgelor_tasks.command import Command

LOCK_WAIT_TIMEOUT = "60s"   # pg_dump gives up instead of queueing forever behind a migration's lock
LOW_COMPRESSION = 1         # level 1: most of the size gain for a fraction of the CPU
ZSTD_FROM = 16              # pg_dump --compress=zstd|lz4 exists from PostgreSQL 16


@dataclass(frozen=True)
class Client:
    """One installed PostgreSQL client/server version: /usr/lib/postgresql/<major>/bin."""

    major: int
    bindir: Path

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


@dataclass(frozen=True)
class Conn:
    """Where a client connects. `host` may be a unix socket directory. No password: see `passfile`."""

    host: str
    port: int
    user: str
    dbname: str
    passfile: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    pass_fds: tuple[int, ...] = ()   # an in-memory pgpass (/dev/fd/N) the client must inherit

    def args(self, dbname: str | None = None) -> tuple[str, ...]:
        return ("-h", self.host, "-p", str(self.port), "-U", self.user, "-d", dbname or self.dbname)

    def env(self) -> dict[str, str]:
        env = {"PGCONNECT_TIMEOUT": "15", "PGAPPNAME": "bezgelor-tasks"}
        if self.passfile is not None:
            env["PGPASSFILE"] = str(self.passfile)
        env.update(self.extra_env)
        return env

    def with_db(self, dbname: str) -> Conn:
        return Conn(self.host, self.port, self.user, dbname, self.passfile, self.extra_env, self.pass_fds)


def compression(client: Client, method: str | None = None) -> str:
    """pg_dump's --compress value: zstd level 1 from 16 on (several times cheaper than gzip for a
    similar size), gzip level 1 before. Compression is the client's: a 17 pg_dump zstd-compresses a 15 server."""
    if method is None:
        method = "zstd" if client.major >= ZSTD_FROM else "gzip"
    return f"{method}:{LOW_COMPRESSION}" if client.major >= ZSTD_FROM else str(LOW_COMPRESSION)


def pg_dump(client: Client, conn: Conn, out: Path | None, *, jobs: int = 1, snapshot: str | None = None,
            lock_wait_timeout: str = LOCK_WAIT_TIMEOUT, compress: str | None = None,
            timeout: float | None = None) -> Command:
    """Custom format (-Fc) by default; `jobs` > 1 means directory format, the only one pg_dump parallelises.
    `out` None: the archive goes to stdout (streamed off-site; pg_restore reads such an archive too, -j included)."""
    fmt = ("-Fd", "-j", str(jobs)) if jobs > 1 else ("-Fc",)
    argv = (client.tool("pg_dump"), *conn.args(), *fmt, f"--compress={compress or compression(client)}",
            f"--lock-wait-timeout={lock_wait_timeout}", "--no-password", *(("-f", str(out)) if out else ()))
    if snapshot:
        argv += (f"--snapshot={snapshot}",)
    return Command(argv, purpose=f"dump database {conn.dbname}", env=conn.env(), pass_fds=conn.pass_fds,
                   timeout=timeout)


def pg_restore_list(client: Client, archive: Path | None) -> Command:
    """The archive's table of contents (`pg_restore -l`): reads the header and TOC only (None: from stdin)."""
    return Command((client.tool("pg_restore"), "-l", *((str(archive),) if archive else ())),
                   purpose="read the backup's table of contents", mutates=False)


def pg_restore_read_all(client: Client, archive: Path | None, *, timeout: float | None = None) -> Command:
    """Decompress and read every byte of the archive into /dev/null: catches truncation and corruption
    (None: the archive streamed on stdin)."""
    return Command((client.tool("pg_restore"), "-f", os.devnull, *((str(archive),) if archive else ())),
                   purpose="read the whole backup", mutates=False, timeout=timeout)


def pg_restore(client: Client, conn: Conn, archive: Path, *, jobs: int = 2, clean: bool = False,
               timeout: float | None = None) -> Command:
    argv = (client.tool("pg_restore"), *conn.args(), "-j", str(max(1, jobs)), "--exit-on-error",
            "--no-owner", "--no-acl", "--no-password")
    if clean:
        argv += ("--clean", "--if-exists")
    return Command((*argv, str(archive)), purpose=f"restore into database {conn.dbname}", env=conn.env(),
                   pass_fds=conn.pass_fds, timeout=timeout)


def pg_restore_script(client: Client, archive: Path, out: Path, *, timeout: float | None = None) -> Command:
    """The archive as one SQL script (schema and COPY data), for psql to run in a single transaction.
    A read: `out` is in the run's private temporary directory."""
    return Command((client.tool("pg_restore"), "--no-owner", "--no-acl", "-f", str(out), str(archive)),
                   purpose="turn the backup into one SQL script", mutates=False, timeout=timeout)


def psql_single_transaction(client: Client, conn: Conn, script: Path, *, timeout: float | None = None) -> Command:
    """Run a script as ONE transaction that stops at the first error: all of it commits, or none of it."""
    return Command((client.tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                    "--no-password", *conn.args(), "-f", str(script)),
                   purpose=f"restore into database {conn.dbname} in one transaction", env=conn.env(),
                   pass_fds=conn.pass_fds, timeout=timeout)


def psql(client: Client, conn: Conn, sql: str, *, purpose: str, dbname: str | None = None,
         mutates: bool = True, timeout: float | None = 120) -> Command:
    """Run SQL from stdin (not argv), unaligned tuples only, stop at the first error. Changing unless the
    caller says the SQL only reads (`mutates=False`)."""
    return Command((client.tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--no-password",
                    *conn.args(dbname), "-f", "-"),
                   purpose=purpose, env=conn.env(), pass_fds=conn.pass_fds, stdin=sql, secret_stdin=False,
                   mutates=mutates, timeout=timeout)


def psql_script_session(client: Client, conn: Conn, script: Path) -> Command:
    """A psql that reads its SQL from a pipe we keep open (keeps a transaction, and its snapshot, alive)."""
    return Command((client.tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--no-password",
                    *conn.args(), "-f", str(script)), purpose="hold the dump's snapshot", env=conn.env(),
                   pass_fds=conn.pass_fds, mutates=False)


def as_postgres_user(argv: tuple[str, ...], user: str = "postgres") -> tuple[str, ...]:
    """PostgreSQL's server refuses to run as root: when we are root, run it as `user` through runuser."""
    if os.geteuid() == 0:
        return ("runuser", "-u", user, "--", *argv)
    return argv


# The scratch cluster (verify's full tier) lives in a private temporary directory the run creates and removes:
# its commands change nothing of the user's, so they are reads (a dry run verifies too).

def initdb(client: Client, datadir: Path, *, superuser: str, pwfile: Path) -> Command:
    argv = (client.tool("initdb"), "-D", str(datadir), "-U", superuser, "-E", "UTF8", "--locale=C",
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync")
    return Command(as_postgres_user(argv), purpose="create a scratch PostgreSQL cluster", timeout=120,
                   mutates=False)


def pg_ctl_start(client: Client, datadir: Path, *, port: int, socket_dir: Path, logfile: Path,
                 listen: str = "127.0.0.1") -> Command:
    opts = f"-c listen_addresses={listen} -p {port} -c unix_socket_directories={socket_dir} -c fsync=off"
    argv = (client.tool("pg_ctl"), "-D", str(datadir), "-l", str(logfile), "-o", opts, "-w", "-t", "60", "start")
    return Command(as_postgres_user(argv), purpose="start the scratch PostgreSQL", timeout=90, mutates=False)


def pg_ctl_stop(client: Client, datadir: Path) -> Command:
    argv = (client.tool("pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "-t", "60", "stop")
    return Command(as_postgres_user(argv), purpose="stop the scratch PostgreSQL", timeout=90, mutates=False)


def in_scratch(cmd: Command) -> Command:
    """A command aimed at a scratch cluster (above): it changes nothing of the user's."""
    return replace(cmd, mutates=False)

