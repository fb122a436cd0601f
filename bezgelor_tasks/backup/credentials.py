"""The database password: environment, then the file `inv deploy.full` wrote, then a prompt. Never argv.

Clients get it through a temporary pgpass file (mode 0600, in a 0700 directory) named by PGPASSFILE.
"""

from __future__ import annotations

import getpass
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bezgelor_tasks.deploy import state
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.redact import register
from bezgelor_tasks.settings import Settings

ENV_NAMES = ("PGPASSWORD", "BEZGELOR_DB_PASSWORD")


def password_file(settings: Settings) -> Path:
    return state.password_path(settings)


def password(settings: Settings, *, interactive: bool | None = None) -> str:
    for name in ENV_NAMES:
        value = os.environ.get(name, "")
        if value:
            register(value)
            return value
    path = password_file(settings)
    value = state.read_credentials(settings).get("password", "")
    if value:
        return value
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        raise UserError(
            f"No password for the {settings.db_app} database: neither PGPASSWORD nor BEZGELOR_DB_PASSWORD is set, "
            f"{path} does not exist, and there is no terminal to ask on.",
            fix="export BEZGELOR_DB_PASSWORD in the environment (from your secret store), or run interactively.")
    value = getpass.getpass(f"Password for {settings.db_user}@{settings.db_app}: ")
    if not value:
        raise UserError("No password entered.", fix="run again and type the database password.")
    register(value)
    return value


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


@contextmanager
def pgpass(user: str, secret: str) -> Iterator[Path]:
    """A pgpass file holding one line for `user`, readable by us only, removed on every exit path."""
    tmp = Path(tempfile.mkdtemp(prefix="bezgelor-pgpass-"))
    try:
        path = tmp / "pgpass"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"*:*:*:{_escape(user)}:{_escape(secret)}\n")
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
