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


def free_port() -> int:
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
        port = free_port()
        log = base / "server.log"
        try:
            started = True
            executor.run(commands.pg_ctl_start(client, data, port=port, socket_dir=base / "socket", logfile=log,
                                                  listen=listen))
        except CommandFailed as e:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
            raise CommandFailed(f"{e.message} Server log: {' | '.join(tail) or 'empty'}", fix=e.fix,
                                returncode=e.returncode) from None
        yield ScratchCluster(client, base, port, password, passfile)
    finally:
        if started and (base / "data" / "postmaster.pid").exists():
            try:
                executor.run(commands.pg_ctl_stop(client, base / "data"), check=False)
            except UserError:
                pass
        shutil.rmtree(base, ignore_errors=True)
