"""Calls into Bezgelor's `BezgelorWorld.Portal` as data: Elixir expressions, the remote command, parsing.

A release evaluates code on its running node with `bin/<release> rpc EXPR` (Mix's release script:
`elixir --rpc-eval "$RELEASE_NODE" "$2"`; only that one word is evaluated, later words are ignored).
We reach it with `fly ssh console -C "<command>"`: flyctl sends the string unchanged as the SSH exec
request, and Fly's in-machine SSH server (hallpass) splits it into words with shell-style quoting and
executes them without a shell (no `$VAR`, no pipes). So the expression travels as one single-quoted
word, and it never contains a `'` or a line break: every text a user gives becomes an Elixir string
literal in which `"`, `\\`, `#`, `'`, control and non-ASCII characters are escapes. Nothing of the
text can end the quoting, start an interpolation (`#{...}`) or be evaluated.

The Portal functions used (Bezgelor's signatures, apps/bezgelor_world/lib/bezgelor_world/portal.ex):
  online_player_count() :: non_neg_integer()      broadcast_system_message(String.t()) :: :ok
  set_maintenance_mode(boolean()) :: :ok          get_maintenance_mode() :: boolean()
  list_online_players() :: [map()]                (account_id, character_name, zone_id, ...)
Every expression first checks the functions it needs are exported and prints one status line
`BEZGELOR_PORTAL count=N maintenance=true|false|unknown` (or `BEZGELOR_PORTAL missing ... with <funs>`),
then one `BEZGELOR_PLAYER` line per player when asked; names are URL-encoded (no JSON library needed).
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands
from bezgelor_tasks.release_image import bin_path
from bezgelor_tasks.settings import Settings

PORTAL = "BezgelorWorld.Portal"
STATUS_TAG = "BEZGELOR_PORTAL"
PLAYER_TAG = "BEZGELOR_PLAYER"
MAX_MESSAGE = 2000  # characters; an in-game line, not a document

# Printable ASCII that means nothing special in an Elixir string or inside single quotes.
_PLAIN = re.compile(r"[A-Za-z0-9 !$%&()*+,\-./:;<=>?@\[\]^_`{|}~]")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "#": "\\#", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def elixir_string(text: str) -> str:
    """`text` as an Elixir double-quoted string literal that evaluates to exactly `text`, in plain ASCII."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("The message contains characters that are not valid Unicode text.",
                        fix="pass the message as plain UTF-8 text.") from None
    out = []
    for ch in text:
        if _PLAIN.fullmatch(ch):
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        else:  # ', control characters, non-ASCII: by code point
            out.append(f"\\u{{{ord(ch):X}}}")
    return '"' + "".join(out) + '"'


def remote_command(settings: Settings, expr: str) -> str:
    """The `-C` string: `/app/bin/<release> rpc '<expr>'`, one word for the machine's word splitter."""
    if "'" in expr or "\n" in expr or "\r" in expr or not expr.strip():
        raise ValueError(f"an rpc expression must be one line without single quotes: {expr!r}")
    return f"{bin_path(settings.release_name)} rpc '{expr}'"


def _exported(funs: tuple[str, ...]) -> str:
    """`("a/0", "b/1")` as `function_exported?(p, :a, 0) and function_exported?(p, :b, 1)`."""
    return " and ".join(f"function_exported?(p, :{name}, {arity})" for name, arity in (f.split("/") for f in funs))


# Printed after every call: the count, the maintenance flag (when readable), and the players if asked.
_STATUS = (f'IO.puts("{STATUS_TAG} count=" <> Integer.to_string(p.online_player_count()) <> " maintenance=" <> '
           '(if function_exported?(p, :get_maintenance_mode, 0), do: to_string(p.get_maintenance_mode()), '
           'else: "unknown"))')
_PLAYERS = (f'if function_exported?(p, :list_online_players, 0) do Enum.each(p.list_online_players(), fn pl -> '
            f'IO.puts("{PLAYER_TAG} account=" <> URI.encode_www_form(to_string(Map.get(pl, :account_id))) <> '
            '" name=" <> URI.encode_www_form(to_string(Map.get(pl, :character_name))) <> '
            '" zone=" <> URI.encode_www_form(to_string(Map.get(pl, :zone_id)))) end) '
            f'else IO.puts("{PLAYER_TAG}S unknown") end')


def portal_expr(action: str = "", needs: tuple[str, ...] = (), *, players: bool = False) -> str:
    """One Elixir line: if the Portal has what it takes, do `action`, then print the status (and players)."""
    required = ("online_player_count/0", *needs)
    body = "; ".join(part for part in (action, _STATUS, _PLAYERS if players else "") if part)
    return (f"p = {PORTAL}; Code.ensure_loaded(p); if {_exported(required)} do {body} "
            f'else IO.puts("{STATUS_TAG} missing {PORTAL} with {", ".join(required)}") end')


def _cmd(settings: Settings, expr: str, purpose: str, *, mutates: bool) -> Command:
    cmd = commands.ssh_command(settings, settings.app, remote_command(settings, expr), mutates=mutates,
                               purpose=purpose)
    return dataclasses.replace(cmd, timeout=float(settings.rpc_timeout_s))


def read(settings: Settings, *, players: bool = False) -> Command:
    return _cmd(settings, portal_expr(players=players), "read the online player count"
                + (" and the players" if players else ""), mutates=False)


def check_message(text: str) -> str:
    if not text.strip():
        raise UserError("The announcement is empty.", fix='pass the text to announce, e.g. inv announce "Back soon".')
    if len(text) > MAX_MESSAGE:
        raise UserError(f"The announcement is {len(text)} characters long; an in-game message takes at most "
                        f"{MAX_MESSAGE}.", fix="shorten it.")
    return text


def announce(settings: Settings, text: str) -> Command:
    """broadcast_system_message/1 with `text` as a string literal (never evaluated)."""
    literal = elixir_string(check_message(text))
    return _cmd(settings, portal_expr(f"p.broadcast_system_message({literal})", ("broadcast_system_message/1",)),
                "announce a message in game", mutates=True)


def maintenance(settings: Settings, on: bool) -> Command:
    flag = "true" if on else "false"
    return _cmd(settings, portal_expr(f"p.set_maintenance_mode({flag})", ("set_maintenance_mode/1",)),
                f"turn maintenance mode {'on' if on else 'off'}", mutates=True)


@dataclass(frozen=True)
class Player:
    account: str
    name: str
    zone: str

    def as_json(self) -> dict[str, str]:
        return {"account_id": self.account, "character_name": self.name, "zone_id": self.zone}


@dataclass(frozen=True)
class PortalStatus:
    count: int
    maintenance: bool | None          # None: this Bezgelor cannot tell
    players: tuple[Player, ...] | None = None  # None: not asked, or the API has no list
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "maintenance": self.maintenance,
                "players": None if self.players is None else [p.as_json() for p in self.players]}


class PortalMissing(Exception):
    """The release answered, but has no BezgelorWorld.Portal with these functions (an older Bezgelor)."""


_STATUS_LINE = re.compile(rf"^{STATUS_TAG} count=(\d+) maintenance=(true|false|unknown)\s*$", re.M)
_MISSING_LINE = re.compile(rf"^{STATUS_TAG} missing (.*)$", re.M)
_PLAYER_LINE = re.compile(rf"^{PLAYER_TAG} account=(\S*) name=(\S*) zone=(\S*)\s*$", re.M)


def parse(output: str, *, players: bool = False) -> PortalStatus | None:
    """The status a Portal expression printed; None when there is no status line. PortalMissing if absent."""
    missing = _MISSING_LINE.search(output)
    if missing:
        raise PortalMissing(missing.group(1).strip())
    status = _STATUS_LINE.search(output)
    if not status:
        return None
    flag = {"true": True, "false": False}.get(status.group(2))
    listed: tuple[Player, ...] | None = None
    if players and f"{PLAYER_TAG}S unknown" not in output:
        unq = urllib.parse.unquote_plus
        listed = tuple(Player(unq(a), unq(n), unq(z)) for a, n, z in _PLAYER_LINE.findall(output))
    return PortalStatus(int(status.group(1)), flag, listed)
