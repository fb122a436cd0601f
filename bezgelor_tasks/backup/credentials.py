"""Who we log in to the database as, and with what password. Never argv, never a log, never a journal.

In order: the environment (PGPASSWORD, BEZGELOR_DB_PASSWORD); the local cache `.bezgelor/<db app>.password`
(mode 0600: written by `fly postgres create` or by an earlier fetch — a cache, never the only copy);
Fly itself — Flex: the app's `DATABASE_URL` as its running machine sees it (`fly ssh console -C
'printenv DATABASE_URL'`), Managed Postgres: `fly mpg status <id> --json`'s credentials; then a prompt on
a terminal. So a fresh CI runner or a second laptop backs up with nothing but a Fly token.

Clients read the password from a pgpass that exists in memory only (a memfd handed to the child as
/dev/fd/N): a killed or crashed run leaves no file holding it. Where memfd is missing (macOS) it is
a 0600 file in a 0700 directory, removed on every exit path we control.
"""

from __future__ import annotations

import getpass
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bezgelor_tasks.deploy import state
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import secret_commands
from bezgelor_tasks.redact import register
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings

ENV_NAMES = ("PGPASSWORD", "BEZGELOR_DB_PASSWORD")
URL_VARIABLE = "DATABASE_URL"


@dataclass(frozen=True)
class Login:
    user: str
    password: str
    source: str   # environment | cache | fly | prompt | caller | watcher (pgerrors.explain says which)

    def __repr__(self) -> str:  # never the password, even in a traceback
        return f"Login(user={self.user!r}, source={self.source!r})"


def password_file(settings: Settings) -> Path:
    return state.password_path(settings)


def parse_url(url: str) -> tuple[str, str, str]:
    """postgres://user:password@host:port/db?... → (user, password, db); empty strings when absent."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("postgres", "postgresql"):
        return "", "", ""
    return unquote(parts.username or ""), unquote(parts.password or ""), parts.path.lstrip("/")


def from_environment(settings: Settings) -> Login | None:
    for name in ENV_NAMES:
        value = os.environ.get(name, "")
        if value:
            register(value)
            return Login(settings.db_user, value, "environment")
    return None


def from_cache(settings: Settings) -> Login | None:
    creds = state.read_credentials(settings)
    if not creds.get("password"):
        return None
    return Login(creds.get("username") or settings.db_user, creds["password"], "cache")


def from_fly(settings: Settings, executor: Executor) -> Login | None:
    """Ask Fly; cache what it says (0600). None when Fly has nothing to tell (no machine, no secret)."""
    if settings.pg_flavor == "mpg":
        from bezgelor_tasks.backup.mpg_cluster import cluster_id, mpg_credentials

        creds = mpg_credentials(settings, executor, cluster_id(settings, executor))
        user, password = creds.get("user", ""), creds.get("password", "")
    else:
        r = executor.run(secret_commands.ssh_printenv(settings, URL_VARIABLE), check=False)
        url = r.stdout.strip().splitlines()[-1] if r.ok and r.stdout.strip() else ""
        register(url)
        user, password, _db = parse_url(url)
        register(password)
    if not password:
        return None
    try:
        state.save_credentials(settings, {"password": password, "username": user}, executor,
                               origin="fetched from Fly")
    except (OSError, UserError):
        pass  # the cache is a convenience: the backup goes on without it
    return Login(user or settings.db_user, password, "fly")


def login(settings: Settings, executor: Executor | None = None, *, interactive: bool | None = None,
          refresh: bool = False) -> Login:
    """The first source that has a password; `refresh` skips the cache (it held a stale password)."""
    found = from_environment(settings) or (None if refresh else from_cache(settings))
    if found is None and executor is not None:  # a read (a dry run does it too; its cache write is refused)
        found = from_fly(settings, executor)
    if found is not None:
        return found
    path = password_file(settings)
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        where = ("`fly mpg status` gave no credentials" if settings.pg_flavor == "mpg" else
                 f"`fly ssh console -a {settings.app} -C 'printenv {URL_VARIABLE}'` gave none (is {settings.app} "
                 "deployed and attached?)")
        raise UserError(
            f"No password for the {settings.db_app} database: neither PGPASSWORD nor BEZGELOR_DB_PASSWORD is set, "
            f"{path} does not exist, {where}, and there is no terminal to ask on.",
            fix="export BEZGELOR_DB_PASSWORD in the environment (from your secret store), log in to Fly "
                "(`fly auth login` or FLY_API_TOKEN), or run interactively.")
    value = getpass.getpass(f"Password for {settings.db_user}@{settings.db_app}: ")
    if not value:
        raise UserError("No password entered.", fix="run again and type the database password.")
    register(value)
    return Login(settings.db_user, value, "prompt")


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


@dataclass(frozen=True)
class PassFile:
    """Where libpq reads the password: `path` for PGPASSFILE, `fds` to hand to the child process."""

    path: Path
    fds: tuple[int, ...] = ()


@contextmanager
def pgpass(user: str, secret: str) -> Iterator[PassFile]:
    """A pgpass holding one line for `user`, readable by us only, gone on every exit path (even SIGKILL
    where memfd exists: the memory is freed when the last process holding it ends)."""
    line = f"*:*:*:{_escape(user)}:{_escape(secret)}\n".encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("bezgelor-pgpass", 0)
        try:
            os.fchmod(fd, 0o600)  # libpq ignores a pgpass that others could read
            os.write(fd, line)
            os.set_inheritable(fd, True)
            yield PassFile(Path(f"/dev/fd/{fd}"), (fd,))
        finally:
            os.close(fd)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bezgelor-pgpass-"))
    try:
        path = tmp / "pgpass"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(line)
        yield PassFile(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
