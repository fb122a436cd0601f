"""config/runtime.exs: what production needs from the environment, failing early and clearly.

Our additions live in one block between BEGIN/END marker comments at the end of the file, so a
re-run rewrites only that block. Nothing the user's file already configures is added twice: if the
file (outside our block) already reads PHX_HOST, PORT, DATABASE_URL, ... or configures the Vault,
that part is left out of the block. Config.Reader merges keyword lists, so a partial `config` in
our block (for example only `ssl:` for the Repo) adds to the user's settings instead of replacing them.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from bezgelor_tasks import elixir
from bezgelor_tasks.checkout import elixir_text as et
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checkout.mixexs import check_syntax
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text
from bezgelor_tasks.pg_flavor import repo_runtime_options
from bezgelor_tasks.render import render

REL = "config/runtime.exs"
REQUIRED_ENV = ("SECRET_KEY_BASE", "CLOAK_KEY", "DATABASE_URL", "WORLD_PUBLIC_ADDRESS")
BEGIN = "# BEGIN bezgelor-tasks: production settings for Fly.io (inv init rewrites this block; edit outside it)"
END = "# END bezgelor-tasks"
_BLOCK_RE = re.compile(rf"^[ \t]*{re.escape(BEGIN.split(' (')[0])}.*?^[ \t]*{re.escape(END)}[^\n]*\n?", re.M | re.S)

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


@dataclass(frozen=True)
class UserRuntime:
    """What the user's runtime.exs (outside our block) already does, as Elixir reads it."""
    reads: frozenset[str]                          # environment variables it reads
    configures: frozenset[tuple[str, str, str]]    # (app, key or "", keyword) it sets

    def sets(self, app: str, key: str | None, kw: str) -> bool:
        return (app, key or "", kw) in self.configures


def user_runtime(co: Checkout, user_code: str) -> UserRuntime:
    """Ask Elixir what `user_code` reads and configures; without Elixir, a textual reading (said as skipped
    by init and verify)."""
    path = co.path(REL)
    if elixir.available():
        reads = elixir.env_reads(path, user_code)
        calls = elixir.config_calls(path, user_code)
        if reads is not None and calls is not None:
            return UserRuntime(frozenset(r.var for r in reads),
                               frozenset((c.app, c.key or "", k) for c in calls for k in c.keys))
    masked = et.mask(user_code)
    found = set(re.findall(r'System\.(?:get_env|fetch_env!?)\(\s*"([A-Za-z_][A-Za-z0-9_]*)"', masked))
    configures = set()
    for m in re.finditer(r"config[ \t]*\(?[ \t]*:(\w+)[ \t]*,[ \t]*([A-Z][\w.]*)[ \t]*,", masked):
        body = masked[m.end():et.call_end(masked, m.end())]
        configures |= {(m.group(1), m.group(2), k) for k in re.findall(r"(?:^|[\s,\[])(\w+):\s", body)}
    return UserRuntime(frozenset(found), frozenset(configures))


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
    if not elixir.available():
        return []
    repo = f"{co.db_module}.Repo"
    out: list[BootOverride] = []
    for rel in BUILD_TIME_CONFIG:
        path = co.path(rel)
        values = elixir.env_config(path) if path.is_file() else None
        for v in values or []:
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


def _indent(expr: str, by: str) -> str:
    return expr.replace("\n", "\n" + by)


def block(co: Checkout, user_code: str) -> tuple[str, list[str]]:
    """Our block, leaving out what `user_code` (the file without our block) already reads or configures."""
    s = co.settings
    portal, endpoint = s.portal_app, f"{co.portal_web_module}.Endpoint"
    repo = f"{co.db_module}.Repo"
    user = user_runtime(co, user_code)
    skipped: list[str] = []
    required = []
    for var in REQUIRED_ENV:
        if var in user.reads:
            skipped.append(f"{var} (already read in {REL})")
        else:
            required.append({"var": var, "name": _NAMES[var], "how": _HOW[var]})
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
    repo_opts = []
    if "DATABASE_URL" in needed:
        repo_opts.append("url: database_url")
    wanted = [
        ("pool_size", 'String.to_integer(System.get_env("POOL_SIZE") || "10")', "POOL_SIZE" not in user.reads),
        ("socket_options", "socket_options ++ [keepalive: true]" if pg.keepalive else "socket_options", pg.ipv6),
        ("ssl", "true" if pg.ssl else "false", True),
        ("prepare", ":unnamed", pg.prepare_unnamed),
        ("queue_target", f"{pg.queue_target_ms:_}", True),
        ("queue_interval", f"{pg.queue_interval_ms:_}", True),
        ("idle_interval", f"{pg.idle_interval_ms:_}", True),
    ]
    for kw, expr, want in wanted:
        if want and not user.sets(s.db_otp_app, repo, kw):
            repo_opts.append(f"{kw}: {expr}")
    ipv6 = any(o.startswith("socket_options:") for o in repo_opts)

    overrides: dict[tuple[str, str | None], list[str]] = {}
    for o in boot_overrides(co, user):
        overrides.setdefault((o.app, o.key), []).append(f"{o.kw}: {_indent(o.expr, '    ')}")
    if not elixir.available():
        skipped.append("build-time config reads (Elixir is not installed: config.exs was not read)")

    text = render(
        "config/runtime_prod_block.exs", begin=BEGIN, end=END, required=required,
        vault="CLOAK_KEY" in needed and f"{co.portal_module}.Vault", portal_app=portal,
        read_host=read_host, hostname=s.hostname, read_port=read_port, portal_port=s.portal_port,
        endpoint=endpoint, endpoint_opts=endpoint_opts, db_app=s.db_otp_app, repo=repo, repo_opts=repo_opts,
        ipv6=ipv6, ssl_comment=textwrap.wrap(pg.why_ssl, 100),
        world_address="WORLD_PUBLIC_ADDRESS" in needed, world_app=WORLD_APP,
        boot_overrides=[{"app": app, "key_part": f", {key}" if key else "", "opts": opts}
                        for (app, key), opts in overrides.items()])
    # The template's optional parts leave runs of blank lines: one blank line between parts, none before `end`.
    text = re.sub(r"\n\n+end\n", "\nend\n", re.sub(r"\n{3,}", "\n\n", text))
    return text, skipped


def runtime_exs_change(co: Checkout) -> FileChange:
    path = co.path(REL)
    old = read_text(path)
    if old is None:
        old_text = "import Config\n"
    else:
        check_syntax(co, REL)
        old_text = old
    blocks = list(_BLOCK_RE.finditer(old_text))
    if len(blocks) > 1:
        raise et.not_patchable(REL, et.line_of(old_text, blocks[1].start()), "it has two bezgelor-tasks blocks",
                               "delete one of them (both start with '# BEGIN bezgelor-tasks'), then run again.")
    if old_text.count("BEGIN bezgelor-tasks") != len(blocks):
        line = et.line_of(old_text, old_text.index("BEGIN bezgelor-tasks"))
        raise et.not_patchable(REL, line, "the bezgelor-tasks block has no END marker",
                               f"restore the line `{END}` after the block, or delete the block, then run again.")
    user = old_text[:blocks[0].start()] + old_text[blocks[0].end():] if blocks else old_text
    ours, skipped = block(co, user)
    if blocks:
        new = old_text[:blocks[0].start()] + ours + old_text[blocks[0].end():]
    else:
        new = old_text.rstrip("\n") + "\n\n" + ours if ours else old_text
    if "import Config" not in new:
        raise UserError(f"{REL} does not `import Config`.", fix="add `import Config` as its first line.")
    notes = [f"left out, already configured: {', '.join(skipped)}"] if skipped else []
    return FileChange(path, REL, old, new, "production settings read from the environment (fail fast)",
                      mode="patch", notes=tuple(notes))
