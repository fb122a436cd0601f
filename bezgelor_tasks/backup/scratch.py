"""A throwaway PostgreSQL cluster on loopback: initdb into a temp dir, start, use, stop and remove.

Used by `verify-backup --tier full` (restore the archive somewhere harmless and count rows) and by the
tests. The server listens on 127.0.0.1 on a free port (scram password) and on a unix socket inside the
temp dir (trust, but the directory is private). As root the server runs as the `postgres` user.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bezgelor_tasks.backup import commands
from bezgelor_tasks.backup.commands import Client, Conn
from bezgelor_tasks.errors import CommandFailed, UserError
from bezgelor_tasks.redact import register
from bezgelor_tasks.run import Executor

SUPERUSER = "postgres"


# Where the kernel picks the local port of outgoing connections (Linux's default when it cannot be read).
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_CHOSEN_PORT = 10000
PORT_TRIES = 200


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_is_free(port: int) -> bool:
    # No SO_REUSEADDR: a port with connections still in TIME_WAIT counts as taken too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port nobody uses, for a server that binds it a moment later.

    Chosen below the kernel's ephemeral range on purpose: a port from that range (what binding port 0
    gives) can be taken by any outgoing connection of any process before the server binds it, which on
    a busy machine makes the server fail with "Address already in use".
    """
    low = _ephemeral_low()
    if low - LOWEST_CHOSEN_PORT >= 1000:
        chooser = secrets.SystemRandom()
        for _ in range(PORT_TRIES):
            port = chooser.randrange(LOWEST_CHOSEN_PORT, low)
            if _port_is_free(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ScratchCluster:
    client: Client
    dir: Path
    port: int
    password: str
    passfile: Path

    @property
    def socket_dir(self) -> Path:
        return self.dir / "socket"

    def socket_conn(self, dbname: str = "postgres") -> Conn:
        return Conn(str(self.socket_dir), self.port, SUPERUSER, dbname)

    def tcp_conn(self, dbname: str = "postgres") -> Conn:
        return Conn("127.0.0.1", self.port, SUPERUSER, dbname, passfile=self.passfile)


def _own(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _start(executor: Executor, client: Client, data: Path, base: Path, listen: str) -> int:
    """Start the server on a free port; another once if someone took the port in between (a busy machine)."""
    log = base / "server.log"
    for attempt in range(3):
        port = free_port()
        try:
            executor.run(commands.pg_ctl_start(client, data, port=port, socket_dir=base / "socket", logfile=log,
                                                  listen=listen))
            return port
        except CommandFailed as e:
            text = log.read_text(errors="replace") if log.exists() else ""
            if "could not bind" in text and attempt < 2:
                log.unlink()
                continue
            tail = text.strip().splitlines()[-5:]
            raise CommandFailed(f"{e.message} Server log: {' | '.join(tail) or 'empty'}", fix=e.fix,
                                returncode=e.returncode) from None
    raise AssertionError("unreachable")


@contextmanager
def scratch_cluster(executor: Executor, client: Client, *, prefix: str = "bezgelor-scratch-",
                    run_as: str = SUPERUSER, listen: str = "127.0.0.1") -> Iterator[ScratchCluster]:
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(run_as)
        except KeyError:
            raise UserError(f"Running as root, the scratch PostgreSQL needs a `{run_as}` system user to run as.",
                            fix="install the postgresql package (it creates that user) or run as a normal user.") \
                from None
    base = Path(tempfile.mkdtemp(prefix=prefix))
    started = False
    try:
        os.chmod(base, 0o700)
        _own(base, run_as)
        (base / "socket").mkdir(mode=0o700)
        _own(base / "socket", run_as)
        password = secrets.token_urlsafe(24)
        register(password)
        pwfile = base / "pwfile"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        _own(pwfile, run_as)
        passfile = base / "pgpass"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"*:*:*:{SUPERUSER}:{password}\n")
        data = base / "data"
        executor.run(commands.initdb(client, data, superuser=SUPERUSER, pwfile=pwfile))
        pwfile.unlink()
        started = True
        port = _start(executor, client, data, base, listen)
        yield ScratchCluster(client, base, port, password, passfile)
    finally:
        if started and (base / "data" / "postmaster.pid").exists():
            try:
                executor.run(commands.pg_ctl_stop(client, base / "data"), check=False)
            except UserError:
                pass
        shutil.rmtree(base, ignore_errors=True)
