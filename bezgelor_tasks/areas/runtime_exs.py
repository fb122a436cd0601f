"""config/runtime.exs: what production needs from the environment, failing early and clearly.

Our additions live in one block between BEGIN/END marker comments at the end of the file (Elixir says where
those comments are), so a re-run rewrites only that block. Nothing the user's file already configures is
added twice: what it reads (PHX_HOST, PORT, DATABASE_URL ...) and configures is asked of Elixir and left out.
Options the user wrote are merged, not skipped wholesale: where the user sets the Repo's `socket_options`
themselves, the block sets theirs plus what the Postgres flavor needs (`:inet6`, TCP keepalive).
Config.Reader merges keyword lists, so a partial `config` in the block adds to the user's settings.
The checks verify runs are in runtime_exs_checks.py.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any

from bezgelor_tasks import elixir, elixir_source
from bezgelor_tasks.areas import splice
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.elixir_source import ConfigSource
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text
from bezgelor_tasks.pg_flavor import repo_runtime_options
from bezgelor_tasks.render import render

REL = "config/runtime.exs"
FILES = (REL,)
REQUIRED_ENV = ("SECRET_KEY_BASE", "CLOAK_KEY", "DATABASE_URL", "WORLD_PUBLIC_ADDRESS")
BEGIN = "# BEGIN bezgelor-tasks: production settings for Fly.io (inv init rewrites this block; edit outside it)"
END = "# END bezgelor-tasks"

_HOW = {
    "SECRET_KEY_BASE": "Generate one with: mix phx.gen.secret (then: inv secrets.set SECRET_KEY_BASE)",
    "CLOAK_KEY": "Generate one with: elixir -e ':crypto.strong_rand_bytes(32) |> Base.encode64() |> IO.puts()' "
                 "(then: inv secrets.set CLOAK_KEY)",
    "DATABASE_URL": "fly postgres attach sets it (inv deploy.full does this for you)",
    "WORLD_PUBLIC_ADDRESS": "Game clients connect to this address: set it to the app's dedicated public IPv4 "
                            "(inv deploy.full allocates it and sets this secret; inv ips.allocate allocates "
                            "one on its own)",
}
_NAMES = {"SECRET_KEY_BASE": "secret_key_base", "CLOAK_KEY": "cloak_key", "DATABASE_URL": "database_url",
          "WORLD_PUBLIC_ADDRESS": "world_public_address"}
# The app whose config holds the world server's public address (Bezgelor's own name for it).
WORLD_APP = "bezgelor_world"
# Config files evaluated when the release is built; what they read from the environment is frozen then.
BUILD_TIME_CONFIG = ("config/config.exs", "config/prod.exs")


def not_patchable(line: int, what: str, fix: str) -> UserError:
    return UserError(f"{REL}:{line}: {what}, so init cannot patch it safely and changed nothing.", fix=fix)


def block_span(cs: ConfigSource) -> tuple[int, int] | None:
    """Where our block is (from the line of its BEGIN comment to past its END comment's line), as Elixir
    places the two comments; refuses two blocks or a block without its end."""
    begins = [c for c in cs.comments if c.text.startswith(BEGIN.split(" (")[0])]
    ends = [c for c in cs.comments if c.text.startswith(END) and c not in begins]
    if len(begins) > 1:
        raise not_patchable(begins[1].line, "it has two bezgelor-tasks blocks",
                            "delete one of them (both start with '# BEGIN bezgelor-tasks'), then run again.")
    if not begins:
        return None
    end = next((c for c in ends if c.start > begins[0].start), None)
    if end is None:
        raise not_patchable(begins[0].line, "the bezgelor-tasks block has no END marker",
                            f"restore the line `{END}` after the block, or delete the block, then run again.")
    return splice.line_start(cs.text, begins[0].start), splice.line_end(cs.text, end.end)


@dataclass(frozen=True)
class UserRuntime:
    """What the user's runtime.exs (outside our block) already does, as Elixir reads it."""
    reads: frozenset[str]                          # environment variables it reads
    configures: frozenset[tuple[str, str, str]]    # (app, key or "", keyword) it sets
    socket_options: str | None = None              # the Repo's socket_options, as written (a literal)
    socket_value: Any = None

    def sets(self, app: str, key: str | None, kw: str) -> bool:
        return (app, key or "", kw) in self.configures


def user_runtime(co: Checkout, user_code: str) -> UserRuntime:
    """Ask Elixir what `user_code` (the file without our block) reads and configures."""
    path = co.path(REL)
    reads = elixir.env_reads(path, user_code) if elixir.available() else None
    cs = elixir_source.config_source(path, user_code) if reads is not None else None
    if reads is None or cs is None:
        return UserRuntime(frozenset(), frozenset())
    repo = f"{co.db_module}.Repo"
    sockets = next((e for c in cs.calls if c.app == co.settings.db_otp_app and c.key == repo for e in c.entries
                    if e.key == "socket_options" and e.value.is_literal and e.value.end is not None), None)
    return UserRuntime(frozenset(r.var for r in reads),
                       frozenset((c.app, c.key or "", e.key) for c in cs.calls for e in c.entries if e.key),
                       splice.source(user_code, sockets.value) if sockets else None,
                       sockets.value.value if sockets else None)


@dataclass(frozen=True)
class BootOverride:
    """Config values a build-time config file computes from the environment, to be read again at boot."""
    file: str
    line: int
    app: str
    key: str | None
    kw: str
    vars: tuple[str, ...]
    expr: str


def boot_overrides(co: Checkout, user: UserRuntime) -> list[BootOverride]:
    """What config.exs/prod.exs read from the environment when the image is built that runtime.exs does not
    read again at boot: the build-time trap (WORLD_PUBLIC_ADDRESS, the game ports ...). The Repo is left out
    (DATABASE_URL configures it at boot), and so is what our required variables cover."""
    repo = f"{co.db_module}.Repo"
    out: list[BootOverride] = []
    for rel in BUILD_TIME_CONFIG:
        path = co.path(rel)
        for v in (elixir.env_config(path) if path.is_file() and elixir.available() else None) or []:
            if v.key == repo or set(v.vars) & set(REQUIRED_ENV) or user.sets(v.app, v.key, v.kw):
                continue
            out.append(BootOverride(rel, v.line, v.app, v.key, v.kw, v.vars, v.expr))
    return out


def build_time_reads(co: Checkout) -> dict[str, str]:
    """Environment variable -> `file:line` for every value the build-time config files compute from it."""
    out: dict[str, str] = {}
    for rel in BUILD_TIME_CONFIG:
        path = co.path(rel)
        for v in (elixir.env_config(path) if path.is_file() and elixir.available() else None) or []:
            for var in v.vars:
                out.setdefault(var, f"{rel}:{v.line}")
    return out


def _has(value: Any, option: str) -> bool:
    """A socket_options literal has `option` (an atom like :inet6, or a keyword like keepalive:)."""
    if isinstance(value, dict):
        return option in value
    items = value if isinstance(value, list) else []
    return any(v == f":{option}" or (isinstance(v, list) and v[:1] == [f":{option}"]) for v in items)


def _socket_options(user: UserRuntime, ipv6: bool, keepalive: bool, skipped: list[str]) -> str | None:
    """The Repo's socket_options for the block: ours, or the user's own merged with what the flavor needs."""
    if user.socket_options is None:
        if not ipv6:
            return None
        return "socket_options ++ [keepalive: true]" if keepalive else "socket_options"
    extra = [":inet6"] if ipv6 and not _has(user.socket_value, "inet6") else []
    extra += ["keepalive: true"] if keepalive and not _has(user.socket_value, "keepalive") else []
    if not extra:
        skipped.append("socket_options (already set, with what Fly needs)")
        return None
    return f"{user.socket_options} ++ [{', '.join(extra)}]"


def _indent(expr: str, by: str) -> str:
    return expr.replace("\n", "\n" + by)


def block(co: Checkout, user_code: str) -> tuple[str, list[str]]:
    """Our block, leaving out what `user_code` (the file without our block) already reads or configures."""
    s = co.settings
    portal, endpoint, repo = s.portal_app, f"{co.portal_web_module}.Endpoint", f"{co.db_module}.Repo"
    user = user_runtime(co, user_code)
    skipped = [f"{var} (already read in {REL})" for var in REQUIRED_ENV if var in user.reads]
    required = [{"var": v, "name": _NAMES[v], "how": _HOW[v]} for v in REQUIRED_ENV if v not in user.reads]
    needed = {r["var"] for r in required}
    endpoint_opts = []
    read_host = "PHX_HOST" not in user.reads and not user.sets(portal, endpoint, "url")
    if read_host:
        endpoint_opts.append('url: [host: host, port: 443, scheme: "https"]')
    elif "PHX_HOST" in user.reads:
        skipped.append("PHX_HOST (already read)")
    if "SECRET_KEY_BASE" in needed:
        endpoint_opts.append("secret_key_base: secret_key_base")
    read_port = "PORT" not in user.reads and not user.sets(portal, endpoint, "http")
    if read_port:
        endpoint_opts.append("http: [ip: {0, 0, 0, 0, 0, 0, 0, 0}, port: port]")
    else:
        skipped.append("PORT / http (already configured)")
    pg = repo_runtime_options(s.pg_flavor)
    sockets = _socket_options(user, pg.ipv6, pg.keepalive, skipped)
    wanted = [
        ("url", "database_url", "DATABASE_URL" in needed),
        ("pool_size", 'String.to_integer(System.get_env("POOL_SIZE") || "10")', "POOL_SIZE" not in user.reads),
        ("socket_options", sockets, sockets is not None),
        ("ssl", "true" if pg.ssl else "false", True),
        ("prepare", ":unnamed", pg.prepare_unnamed),
        ("queue_target", f"{pg.queue_target_ms:_}", True),
        ("queue_interval", f"{pg.queue_interval_ms:_}", True),
        ("idle_interval", f"{pg.idle_interval_ms:_}", True),
    ]
    repo_opts = [f"{kw}: {expr}" for kw, expr, want in wanted
                 if want and (kw == "socket_options" or not user.sets(s.db_otp_app, repo, kw))]
    overrides: dict[tuple[str, str | None], list[str]] = {}
    for o in boot_overrides(co, user):
        overrides.setdefault((o.app, o.key), []).append(f"{o.kw}: {_indent(o.expr, '    ')}")
    if not elixir.available():
        skipped.append("what runtime.exs and config.exs already read (Elixir is not installed: NOT read)")
    text = render(
        "config/runtime_prod_block.exs", begin=BEGIN, end=END, required=required,
        vault="CLOAK_KEY" in needed and f"{co.portal_module}.Vault", portal_app=portal,
        read_host=read_host, hostname=s.hostname, read_port=read_port, portal_port=s.portal_port,
        endpoint=endpoint, endpoint_opts=endpoint_opts, db_app=s.db_otp_app, repo=repo, repo_opts=repo_opts,
        ipv6=sockets is not None and sockets.startswith("socket_options"), ssl_comment=textwrap.wrap(pg.why_ssl, 100),
        world_address="WORLD_PUBLIC_ADDRESS" in needed, world_app=WORLD_APP,
        boot_overrides=[{"app": app, "key_part": f", {key}" if key else "", "opts": opts}
                        for (app, key), opts in overrides.items()])
    # The template's optional parts leave runs of blank lines: one blank line between parts, none before `end`.
    return re.sub(r"\n\n+end\n", "\nend\n", re.sub(r"\n{3,}", "\n\n", text)), skipped


def runtime_exs_change(co: Checkout) -> FileChange:
    path = co.path(REL)
    old = read_text(path)
    text = "import Config\n" if old is None else old
    cs = elixir_source.config_source(path, text) if elixir.available() else None
    span = block_span(cs) if cs is not None else None
    user = splice.apply(text, [splice.Edit(*span, "")]) if span else text
    ours, skipped = block(co, user)
    new = splice.apply(text, [splice.Edit(*span, ours) if span else splice.at_end(text, ours)])
    if cs is not None and not cs.imports_config:
        raise UserError(f"{REL} does not `import Config`.", fix="add `import Config` as its first line.")
    notes = [f"left out, already configured: {', '.join(skipped)}"] if skipped else []
    return FileChange(path, REL, old, new, "production settings read from the environment (fail fast)",
                      mode="patch", notes=tuple(notes))
