"""config/runtime.exs, verified: it reads every variable the release needs at boot, fails loudly without them,
and puts each where the release looks for it (the description is runtime_exs.py).

What it reads is asked of Elixir (its AST); then it is evaluated for :prod by real Elixir (Config.Reader)
with fly.toml's [env] and dummy secrets, and the evaluated config must carry them to the right places: the
Repo's url and options for the Postgres flavor, the endpoint's http port, the Vault's decoded cipher key, the
world server's public address. Evaluated once more without CLOAK_KEY it must fail: that keeps a release from
booting with no key (or a development key) in production. A runtime.exs that does not parse is one finding
(the framework's); none of these run on it.
"""

from __future__ import annotations

import base64
from typing import Any

from bezgelor_tasks import elixir, elixir_source
from bezgelor_tasks.areas.config_exs import evaluation_problem
from bezgelor_tasks.areas.runtime_exs import REL, REQUIRED_ENV, boot_overrides, build_time_reads, user_runtime
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, info, warning
from bezgelor_tasks.pg_flavor import fly_database_url, repo_runtime_options
from bezgelor_tasks.settings import Settings

# 32 bytes that are not valid UTF-8, so the decoded key comes back from Elixir as "base64:<CLOAK_KEY>"
_DUMMY_KEY = bytes(range(0x80, 0xA0))
DUMMY_ENV = {
    "SECRET_KEY_BASE": "verify-dummy-secret-key-base-" + "0" * 64,
    "CLOAK_KEY": base64.b64encode(_DUMMY_KEY).decode(),
    "WORLD_PUBLIC_ADDRESS": "203.0.113.7",
    "PHX_HOST": "verify.example.com",
}
_FIX_INIT = "(run `inv init` to write the production block)"


def dummy_environ(settings: Settings) -> dict[str, str]:
    """Dummy values for every variable runtime.exs reads, DATABASE_URL shaped like the one Fly sets for the
    Postgres flavor; PORT differs from the default on purpose, so a hard-coded port shows."""
    env = {var: f"verify-dummy-{var.lower()}" for var in REQUIRED_ENV}
    env.update(DUMMY_ENV)
    env["DATABASE_URL"] = fly_database_url(settings.pg_flavor, settings.db_app, settings.db_name)
    env["PORT"] = str(settings.portal_port + 1)
    return env


class Lines:
    """Where runtime.exs reads a variable or sets a key, and its first :prod block (Elixir's answers)."""

    def __init__(self, ctx: CheckContext) -> None:
        path = ctx.co.path(REL)
        self.reads = {r.var: r.line for r in reversed(elixir.env_reads(path) or [])}
        cs = elixir_source.config_source(path)
        self.prod = cs.prod_lines[0] if cs and cs.prod_lines else None
        self.keys = {e.key: e.line for c in reversed(cs.calls if cs else ()) for e in c.entries if e.key}

    def of(self, var: str) -> int | None:
        return self.reads.get(var) or self.prod


def _walk(value: Any) -> list[Any]:
    """Every value nested in `value` (itself included)."""
    out = [value]
    if isinstance(value, dict):
        for v in value.values():
            out.extend(_walk(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_walk(v))
    return out


def _module_opts(cfg: dict[str, Any], app: str, module: str) -> dict[str, Any]:
    app_cfg = cfg.get(f":{app}")
    opts = app_cfg.get(f"Elixir.{module}") if isinstance(app_cfg, dict) else None
    return opts if isinstance(opts, dict) else {}


def _unread(ctx: CheckContext, lines: Lines) -> tuple[list[Finding], set[str]]:
    out: list[Finding] = []
    unread: set[str] = set()
    reads = user_runtime(ctx.co, ctx.text(REL) or "").reads
    at_build = build_time_reads(ctx.co)
    for var in REQUIRED_ENV:
        if var not in reads:
            unread.add(var)
            trap = (f" ({at_build[var]} reads it, but only when the image is built, inside the Docker build: "
                    "the image would ship the build's default whatever Fly sets)") if var in at_build else ""
            out.append(error(REL, lines.prod, f"never reads {var}, which the release needs in production{trap}",
                             f'read it with System.get_env("{var}") || raise "..." inside the :prod block {_FIX_INIT}'))
    if lines.prod is None:
        out.append(warning(REL, None, "has no `if config_env() == :prod do` block",
                           f"put production-only settings inside one {_FIX_INIT}"))
    return out, unread


def _evaluated(ctx: CheckContext, lines: Lines, cfg: dict[str, Any], env: dict[str, str],
               unread: set[str]) -> list[Finding]:
    co, s = ctx.co, ctx.settings
    out: list[Finding] = []
    repo_name, endpoint_name = f"{co.db_module}.Repo", f"{co.portal_web_module}.Endpoint"
    if "DATABASE_URL" not in unread:
        repo = _module_opts(cfg, s.db_otp_app, repo_name)
        if repo.get("url") != env["DATABASE_URL"]:
            state = "is not set" if "url" not in repo else "is set to something else"
            out.append(error(REL, lines.of("DATABASE_URL"), f"evaluated for :prod, {repo_name}'s url {state}, not "
                             f"DATABASE_URL", f"set `config :{s.db_otp_app}, {repo_name}, url: database_url` in the "
                             f":prod block {_FIX_INIT}"))
        out += _repo_connects_on_fly(s.pg_flavor, repo_name, repo, lines.of("DATABASE_URL"))
    http = _module_opts(cfg, s.portal_app, endpoint_name).get("http")
    port = http.get("port") if isinstance(http, dict) else None
    if str(port) != env["PORT"]:
        state = "not set" if port is None else f"{port}"
        out.append(error(REL, lines.keys.get("http") or lines.of("PORT"), f"evaluated for :prod with PORT="
                         f"{env['PORT']}, {endpoint_name}'s http port is {state}: it must come from PORT (fly.toml's "
                         "[env] and internal_port agree on it)", f'set `http: [ip: {{0, 0, 0, 0, 0, 0, 0, 0}}, port: '
                         f'String.to_integer(System.get_env("PORT") || "{s.portal_port}")]` on {endpoint_name} in the '
                         f":prod block {_FIX_INIT}"))
    if "CLOAK_KEY" not in unread:
        out += _vault(ctx, lines, cfg, env)
    if "WORLD_PUBLIC_ADDRESS" not in unread:
        addresses = [app.get("public_address") for app in cfg.values() if isinstance(app, dict)]
        if env["WORLD_PUBLIC_ADDRESS"] not in addresses:
            out.append(error(REL, lines.of("WORLD_PUBLIC_ADDRESS"), "evaluated for :prod, no app's public_address "
                             "comes from WORLD_PUBLIC_ADDRESS: game clients would be sent to the development address",
                             "set `config :bezgelor_world, public_address: world_public_address` in the :prod block "
                             f"{_FIX_INIT}"))
    return out


def _vault(ctx: CheckContext, lines: Lines, cfg: dict[str, Any], env: dict[str, str]) -> list[Finding]:
    co, s = ctx.co, ctx.settings
    vaults = [v for app in cfg.values() if isinstance(app, dict)
              for k, v in app.items() if k.endswith(".Vault") and isinstance(v, dict)]
    values = [x for v in vaults for x in _walk(v.get("ciphers"))]
    decoded = "base64:" + env["CLOAK_KEY"]
    if env["CLOAK_KEY"] in values and decoded not in values:
        return [error(REL, lines.of("CLOAK_KEY"), "evaluated for :prod, the Vault's cipher key is CLOAK_KEY's base64 "
                      "text, not the 32 bytes it encodes", f"wrap it: `key: Base.decode64!(cloak_key)` {_FIX_INIT}")]
    if decoded not in values:
        return [error(REL, lines.of("CLOAK_KEY"), "evaluated for :prod, no Vault cipher key comes from CLOAK_KEY: "
                      "the portal would encrypt with the development key of config.exs (or none)",
                      f"set `config :{s.portal_app}, {co.portal_module}.Vault, ciphers: [default: "
                      '{Cloak.Ciphers.AES.GCM, tag: "AES.GCM.V1", key: Base.decode64!(cloak_key)}]` in the '
                      f":prod block {_FIX_INIT}")]
    return []


def _truthy(value: Any) -> bool:
    return value not in (None, "false", "nil", ":false", ":nil", False, [], {})


def _repo_connects_on_fly(flavor: str, repo_name: str, repo: dict[str, Any], line: int | None) -> list[Finding]:
    """The evaluated Repo options against what the flavor needs (pg_flavor, the one description)."""
    need = repo_runtime_options(flavor)
    out: list[Finding] = []
    sockets = repo.get("socket_options") or []
    if need.ipv6 and ":inet6" not in (sockets if isinstance(sockets, list) else [sockets]):
        out.append(error(REL, line, f"evaluated for :prod, {repo_name} connects over IPv4 only: Fly's private "
                         "network is IPv6 only (.internal/.flycast names have no A records), so it fails with "
                         f":nxdomain", f"add `socket_options: [:inet6]` to {repo_name} in the :prod block {_FIX_INIT}",
                         "runtime.repo-ipv6"))
    ssl = _truthy(repo.get("ssl"))
    if ssl and not need.ssl:
        out.append(error(REL, line, f"evaluated for :prod, {repo_name} demands TLS of Postgres Flex: "
                         f"{need.why_ssl}", f"remove `ssl: true` (and ssl_opts) from {repo_name} in {REL}, or "
                         "set BEZGELOR_PG_FLAVOR=mpg if the database is Managed Postgres", "runtime.repo-ssl"))
    elif need.ssl and not ssl:
        out.append(warning(REL, line, f"evaluated for :prod, {repo_name} connects to Managed Postgres without TLS",
                           f"add `ssl: true` to {repo_name} in the :prod block {_FIX_INIT}", "runtime.repo-ssl"))
    if need.prepare_unnamed and repo.get("prepare") != ":unnamed":
        out.append(error(REL, line, f"evaluated for :prod, {repo_name} uses named prepared statements, which "
                         "Managed Postgres' PgBouncer (transaction mode) breaks",
                         f"add `prepare: :unnamed` to {repo_name} in the :prod block {_FIX_INIT}",
                         "runtime.repo-prepare"))
    return out


def _build_time_reads(ctx: CheckContext) -> list[Finding]:
    """config.exs/prod.exs values computed from the environment when the image is built, never read again at
    boot: on Fly, [env] and secrets exist only on the machine, so the image keeps the build's defaults."""
    user = user_runtime(ctx.co, ctx.text(REL) or "")
    calls: dict[tuple[str, int], list[Any]] = {}
    for o in boot_overrides(ctx.co, user):
        calls.setdefault((o.file, o.line), []).append(o)
    out = []
    for (file, line), found in calls.items():
        o = found[0]
        names = ", ".join(v for f in found for v in f.vars)
        keys = ", ".join(f"{f.kw}:" for f in found)
        out.append(warning(file, line, f"`config :{o.app}{', ' + o.key if o.key else ''}` ({keys}) reads {names} "
                           "when the release is built (inside the Docker build), not when the machine boots: a "
                           "value set on Fly ([env] or a secret) never reaches it, and the image keeps the "
                           "build's default", f"read it again in {REL}'s :prod block {_FIX_INIT}",
                           "runtime.build-time-env"))
    return out


def _cloak_key_enforced(ctx: CheckContext, lines: Lines, env: dict[str, str]) -> list[Finding]:
    # None removes the variable, even when this shell has CLOAK_KEY set.
    without: dict[str, str | None] = {**{k: v for k, v in env.items() if k != "CLOAK_KEY"}, "CLOAK_KEY": None}
    ev = ctx.evaluate(REL, "prod", without)
    line = lines.reads.get("CLOAK_KEY")
    if ev.ok:
        return [error(REL, line, "evaluates for :prod without CLOAK_KEY, so a release missing the secret boots "
                      "(with no key, or a development one)",
                      'require it: `cloak_key = System.get_env("CLOAK_KEY") || raise "CLOAK_KEY is missing"` '
                      f"{_FIX_INIT}")]
    if not ev.needs_deps and "CLOAK_KEY" not in (ev.error or ""):
        return [info(REL, line, f"fails without CLOAK_KEY, but its error does not name it ({ev.error})",
                     'raise a message naming it: `System.get_env("CLOAK_KEY") || raise "CLOAK_KEY is missing"`')]
    return []


def check(ctx: CheckContext) -> list[Finding]:
    if ctx.text(REL) is None:
        return [error(REL, None, "config/runtime.exs is missing, so the release reads no secrets at boot",
                      "run `inv init` to write it")]
    if not ctx.elixir_available:
        ctx.skipped.append(f"{REL} was NOT read or evaluated for :prod (Elixir is not installed)")
        return []
    lines = Lines(ctx)
    out, unread = _unread(ctx, lines)
    out += _build_time_reads(ctx)
    # What the machine sees: fly.toml's [env], then the secrets (dummies here).
    fly_env = (ctx.fly_toml or {}).get("env") or {}
    env = {**{str(k): str(v) for k, v in fly_env.items() if isinstance(fly_env, dict)}, **dummy_environ(ctx.settings)}
    ev = ctx.evaluate(REL, "prod", env)
    what = f"evaluating config/runtime.exs for :prod (dummy {', '.join(sorted(env))})"
    problem = evaluation_problem(ctx, REL, ev, what)
    if problem or ev.config is None:
        return out + problem
    out += _evaluated(ctx, lines, ev.config, env, unread)
    if "CLOAK_KEY" not in unread:
        out += _cloak_key_enforced(ctx, lines, env)
    return out
