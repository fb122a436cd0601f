"""flyctl commands for an app's secrets, as data: list, import (values on stdin, never in argv), deploy, unset,
and a variable as the running machine sees it.

Pure builders with commands.py's defaults (`build`). `fly secrets import` strips blanks and one pair of quotes
and knows no escapes: `secret_lines` writes values it reads back unchanged, or refuses them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.commands import build, ssh_command
from bezgelor_tasks.settings import Settings

SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def secrets_list(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "secrets", "list", "--json", "-a", target, purpose=f"list the secret names of {target}",
                 mutates=False)


def _protect(value: str) -> str:
    """Quote a value that `fly secrets import` would otherwise change (it strips blanks, then one pair of quotes)."""
    wrapped = len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"
    if value != value.strip() or wrapped:
        quote = "'" if value.startswith('"') or value.endswith('"') else '"'
        return f"{quote}{value}{quote}"
    return value


def secret_lines(values: Mapping[str, str]) -> str:
    """`NAME=VALUE` lines for `fly secrets import` (it strips quotes and knows no escapes)."""
    lines = []
    for name, value in values.items():
        if not SECRET_NAME_RE.match(name):
            raise UserError(f"{name!r} is not a valid secret name.",
                            fix="use letters, digits and underscores, not starting with a digit (e.g. CLOAK_KEY).")
        if "\n" in value or "\r" in value:
            raise UserError(f"The value of {name} spans several lines, which `fly secrets import` cannot take.",
                            fix="put the value on one line (base64-encode it if it is binary).")
        if not value:
            raise UserError(f"The value of {name} is empty.", fix=f"give {name} a non-empty value.")
        lines.append(f"{name}={_protect(value)}")
    return "\n".join(lines) + "\n"


# Set as Fly secrets for convenience but not secret: the game servers' public IPv4.
PUBLIC_SECRET_NAMES = frozenset({"WORLD_PUBLIC_ADDRESS"})


def secrets_import(settings: Settings, values: Mapping[str, str], stage: bool = True,
                   app: str | None = None) -> Command:
    target = app or settings.app
    names = ", ".join(sorted(values))
    return build(settings, "secrets", "import", "-a", target, *(("--stage",) if stage else ()),
                 stdin=secret_lines(values), secret_stdin=True, public_stdin_names=PUBLIC_SECRET_NAMES,
                 purpose=f"set the secret(s) {names} on {target}" + (" (staged, no restart)" if stage else ""))


def secrets_deploy(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "secrets", "deploy", "-a", target,
                 purpose=f"restart {target}'s machines with its staged secrets")


def secrets_unset(settings: Settings, *names: str, app: str | None = None, stage: bool = True) -> Command:
    target = app or settings.app
    if not names:
        raise UserError("No secret name given to unset.", fix="name the secret, e.g. OLD_KEY.")
    return build(settings, "secrets", "unset", *names, "-a", target, *(("--stage",) if stage else ()),
                 purpose=f"remove the secret(s) {', '.join(names)} from {target}")


def ssh_printenv(settings: Settings, name: str, app: str | None = None) -> Command:
    """A variable as the app's running machine sees it (its secrets included): the output is secret."""
    if not SECRET_NAME_RE.match(name):
        raise UserError(f"{name!r} is not a valid variable name.", fix="use letters, digits and underscores.")
    target = app or settings.app
    return replace(ssh_command(settings, target, f"printenv {name}", mutates=False,
                               purpose=f"read {name} as {target}'s machine sees it"), timeout=120)
