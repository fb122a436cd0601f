"""`.bezgelor/` in the checkout: private (0700), ignored by git even without the .gitignore line,
and the database password file `fly postgres create` prints once."""

from __future__ import annotations

import re
import time
from pathlib import Path

from bezgelor_tasks import files
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.records import postgres_credentials
from bezgelor_tasks.redact import register
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings

_USERNAME = re.compile(r"^\s*Username:\s*(\S+)\s*$", re.M | re.I)


def require_checkout(settings: Settings) -> None:
    """The checkout must exist before anything is written into it (never create a mistyped --root)."""
    root = settings.root
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UserError(f"The checkout {root} {what}, so there is nothing to work on (nothing was created).",
                        fix="pass --root with the path of your Bezgelor checkout (the folder with its mix.exs), "
                            "or set BEZGELOR_ROOT.")


def ensure_state_dir(settings: Settings, executor: Executor) -> Path:
    """`.bezgelor/` (0700, self-ignoring); a checkout we cannot write to is a UserError naming the cause
    (a read-only file system, `.bezgelor` being a file, permissions), not a traceback."""
    require_checkout(settings)
    d = settings.state_dir
    what = f"{d} (where the journal, the lock and the backups are kept)"
    if d.exists() and not d.is_dir():
        raise UserError(f"{d} is a file, not a folder: bezgelor-tasks keeps its journal, lock and backups there.",
                        fix=f"move the file aside (`mv {d} {d}.file`) or remove it, then run again.")
    try:
        files.make_dir(executor, d, mode=0o700)
        ignore = d / ".gitignore"
        if not ignore.exists():
            # Self-ignoring: a checkout whose .gitignore lacks `.bezgelor/` still never commits it.
            files.write(executor, ignore, "# written by bezgelor-tasks: nothing here belongs in git\n*\n", mode=0o644)
    except OSError as e:
        said = files.unwritable(d / ".gitignore", ".bezgelor/", what=what, nothing="nothing was changed")
        raise (said or UserError(f"Cannot write {what}: {e.strerror or e}.",
                                 fix="fix the folder's permissions, then run again.")) from None
    return d


def password_path(settings: Settings) -> Path:
    return settings.state_dir / f"{settings.db_app}.password"


def extract_credentials(output: str) -> dict[str, str]:
    """Password, username and connection string from `fly postgres create`'s output (registered as secret)."""
    password, url = postgres_credentials(output)
    found = {"password": password or "", "connection_string": url or ""}
    if m := _USERNAME.search(output):
        found["username"] = m.group(1)
    found = {k: v for k, v in found.items() if v}
    register(found.get("password"), found.get("connection_string"))  # not the user name: "postgres" is a word
    return found


def save_credentials(settings: Settings, creds: dict[str, str], executor: Executor,
                     origin: str = "printed once by `fly postgres create`") -> Path:
    """Write the credentials 0600 under .bezgelor/ (never echoed). Raises when there is no password."""
    if not creds.get("password"):
        raise UserError(
            f"`fly postgres create` created {settings.db_app} but its output had no password this tool recognises, "
            "and Fly shows it only once.",
            fix=f"find the password in your terminal's scroll-back, or set a new one (`fly postgres connect -a "
                f"{settings.db_app}`, then ALTER USER postgres PASSWORD '...'), and write it to "
                f"{password_path(settings)} as a line PASSWORD=<value> with mode 0600.")
    ensure_state_dir(settings, executor)
    lines = [f"# Postgres credentials of {settings.db_app}, {origin} on "
             f"{time.strftime('%Y-%m-%d %H:%M:%S%z')}.",
             "# Keep this file private (mode 0600, gitignored). Backups and restores read it; it is a cache:",
             "# without it they ask Fly (the app's DATABASE_URL, or `fly mpg status`).",
             f"PASSWORD={creds['password']}"]
    if creds.get("username"):
        lines.append(f"USERNAME={creds['username']}")
    if creds.get("connection_string"):
        lines.append(f"CONNECTION_STRING={creds['connection_string']}")
    path = password_path(settings)
    files.write(executor, path, "\n".join(lines) + "\n", mode=0o600)
    return path


def read_credentials(settings: Settings) -> dict[str, str]:
    """The saved credentials ({} when there is no file); every value is registered as secret."""
    try:
        text = password_path(settings).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    creds: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        creds[key.strip().lower()] = value.strip()
    register(creds.get("password"), creds.get("connection_string"))
    return creds
