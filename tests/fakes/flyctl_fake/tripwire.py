"""Which flyctl commands only read, for the tripwire: with `state["tripwire"]` on, every command that would
change the account (an app, a secret, a machine, an IP, a database, an image) fails and is recorded with
`tripwire: true`. Tests turn it on around a dry run to prove that nothing on Fly changed.

The table is the fake's own emulation list split in two; a command path missing from both is a change (safe
by default). `ssh console -C` is judged by what it runs in the machine: `printenv`, a release module's `status()`
(`/app/bin/<release> eval`; never bin/migrate, which in a checkout of its own migrates whatever it is given)
and Portal reads (`online_player_count`, `get_maintenance_mode`, `list_online_players`) only read.
"""

from __future__ import annotations

import re
import shlex

READS = frozenset({
    "", "version", "help", "auth whoami", "apps list", "releases", "status", "image show", "machine list", "logs",
    "ips list", "secrets list", "postgres backup list", "mpg list", "mpg status", "mpg backup list",
    "proxy", "mpg proxy",  # a tunnel to the database: what goes through it is judged by the database's fingerprint
})
CHANGES = frozenset({
    "auth logout", "apps create", "apps destroy", "postgres create", "postgres attach", "postgres backup enable",
    "postgres backup create", "postgres backup restore", "mpg create", "mpg attach", "mpg backup create",
    "mpg restore", "ips allocate", "ips allocate-v4", "ips allocate-v6", "ips release", "secrets import",
    "secrets unset", "secrets deploy", "deploy", "scale memory", "scale count", "machine destroy",
})
PORTAL_READS = frozenset({"online_player_count", "get_maintenance_mode", "list_online_players"})
_PORTAL_CALL = re.compile(r"\bp\.([a-z_]+)\(")


def changes(path: str, argv: list[str]) -> bool:
    """Whether this flyctl call would change the account (anything not known to only read does)."""
    if path == "ssh console":
        return not _remote_reads(_remote_command(argv))
    return path not in READS


def _remote_command(argv: list[str]) -> str:
    for i, word in enumerate(argv):
        if word in ("-C", "--command") and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(("-C=", "--command=")):
            return word.split("=", 1)[1]
    return ""  # an interactive shell: anything can happen in it


def _remote_reads(command: str) -> bool:
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    if words[:1] == ["printenv"]:
        return True
    if len(words) == 3 and words[0].startswith("/app/bin/") and words[1] == "eval":
        return re.fullmatch(r"[A-Z][\w.]*\.Release\.status\(\)", words[2]) is not None
    if len(words) >= 3 and words[0].startswith("/app/bin/") and words[1] == "rpc":
        calls = set(_PORTAL_CALL.findall(words[2]))
        return bool(calls) and calls <= PORTAL_READS
    return False
