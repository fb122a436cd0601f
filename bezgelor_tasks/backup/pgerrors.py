"""libpq's failures as one sentence each: what happened and what to do, without libpq's internals.

libpq says e.g. `connection to server at "127.0.0.1", port 41231 failed: FATAL:  password authentication
failed for user "x"` or `server closed the connection unexpectedly\n This probably means the server
terminated abnormally before or while processing the request.` Users need neither the loopback port of
a tunnel nor the probable causes: they need which of three things happened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bezgelor_tasks.settings import Settings

WRONG_PASSWORD = re.compile(r"password authentication failed|no password supplied|fe_sendauth", re.I)
REFUSED = re.compile(
    r"no pg_hba\.conf entry|is not permitted to log in|too many (clients|connections)|"
    r"remaining connection slots are reserved|the database system is (starting up|shutting down|in recovery mode)|"
    r"role \"[^\"]*\" does not exist|permission denied for database|Connection refused|"
    r"database \"[^\"]*\" does not exist", re.I)
CLOSED = re.compile(r"server closed the connection unexpectedly|could not receive data from server|"
                    r"SSL SYSCALL error|connection to server was lost|terminating connection|"
                    r"unexpected EOF|no connection to the server|Connection reset by peer", re.I)


@dataclass(frozen=True)
class Explained:
    kind: str      # wrong_password | refused | closed
    sentence: str
    fix: str


def _reason(text: str) -> str:
    """The server's own reason (after FATAL:/ERROR:), without libpq's connection preamble or hints."""
    m = re.search(r"(?:FATAL|ERROR):\s+(.+)", text)
    reason = m.group(1) if m else text.strip().splitlines()[-1] if text.strip() else ""
    return reason.strip().rstrip(".")


def explain(text: str, settings: Settings, *, user: str, source: str = "") -> Explained | None:
    """One of the three connection failures, or None when the text is something else."""
    where = settings.db_app
    if WRONG_PASSWORD.search(text) and source == "watcher":
        return Explained(
            "wrong_password",
            f"PostgreSQL on {where} refused the password for user {user}: the watcher's database URL was copied "
            f"from {settings.app} by `inv watch.deploy`, and the password has changed since.",
            f"run `inv watch.deploy` again: it copies the current URL from {settings.app}'s machine.")
    if WRONG_PASSWORD.search(text):
        origin = {"environment": "PGPASSWORD/BEZGELOR_DB_PASSWORD", "cache": "the cached .bezgelor password file",
                  "fly": "the app's DATABASE_URL on Fly", "prompt": "what you typed"}.get(source, "the password")
        return Explained(
            "wrong_password",
            f"PostgreSQL on {where} refused the password for user {user} (it came from {origin}).",
            "set the right one in BEZGELOR_DB_PASSWORD, or delete the stale .bezgelor/<db app>.password file so "
            "it is fetched from Fly again, and check BEZGELOR_DB_USER.")
    if CLOSED.search(text):
        return Explained(
            "closed",
            f"PostgreSQL on {where} closed the connection: the connection to the database dropped before the "
            "work was done (the `fly proxy` tunnel closed, or the server restarted).",
            f"check `fly status -a {where}` and `fly logs -a {where}`, then run the same command again.")
    if REFUSED.search(text):
        reason = re.sub(r'connection to server at "[^"]*", port \d+ failed:\s*', "", _reason(text))
        return Explained(
            "refused",
            f"PostgreSQL on {where} refused the connection: {reason}.",
            f"check that {where} is running and accepts user {user} (`fly status -a {where}`), then try again.")
    return None
