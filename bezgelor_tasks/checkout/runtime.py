"""config/runtime.exs: what production needs from the environment, failing early and clearly.

Our additions live in one block between BEGIN/END marker comments at the end of the file, so a
re-run rewrites only that block. Nothing the user's file already configures is added twice: if the
file (outside our block) already reads PHX_HOST, PORT, DATABASE_URL, ... or configures the Vault,
that part is left out of the block. Config.Reader merges keyword lists, so a partial `config` in
our block (for example only `ssl:` for the Repo) adds to the user's settings instead of replacing them.
"""

from __future__ import annotations

import re

from bezgelor_tasks.checkout import elixir_text as et
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checkout.mixexs import check_syntax
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text

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


def _reads(code: str, var: str) -> bool:
    return re.search(rf'System\.(get_env|fetch_env!?)\(\s*"{re.escape(var)}"', code) is not None


def _configures(code: str, app: str, module: str, key: str) -> bool:
    """Whether some `config :app, Module, ... key: ...` call (outside comments) sets `key`."""
    masked = et.mask(code)
    for m in re.finditer(rf"config[ \t]*\(?[ \t]*:{re.escape(app)}[ \t]*,[ \t]*{re.escape(module)}[ \t]*,", masked):
        end = et.call_end(masked, m.end())
        if re.search(rf"(^|[\s,\[]){re.escape(key)}:\s", masked[m.end():end]):
            return True
    return False


def _required(var: str, name: str) -> str:
    return (f'  {name} =\n    System.get_env("{var}") ||\n      raise """\n'
            f"      environment variable {var} is missing.\n      {_HOW[var]}\n      \"\"\"\n")


def block(co: Checkout, user_code: str) -> tuple[str, list[str]]:
    """Our block, leaving out what `user_code` (the file without our block, comments removed) has."""
    s = co.settings
    portal, endpoint = s.portal_app, f"{co.portal_web_module}.Endpoint"
    repo = f"{co.db_module}.Repo"
    vault = f"{co.portal_module}.Vault"
    skipped: list[str] = []
    parts: list[str] = []
    have = {v: _reads(user_code, v) for v in (*REQUIRED_ENV, "PHX_HOST", "PORT", "POOL_SIZE")}

    required = []
    for var, name in (("SECRET_KEY_BASE", "secret_key_base"), ("CLOAK_KEY", "cloak_key"),
                      ("DATABASE_URL", "database_url"), ("WORLD_PUBLIC_ADDRESS", "world_public_address")):
        if have[var]:
            skipped.append(f"{var} (already read in {REL})")
        else:
            required.append((var, name))
    if required:
        parts.append("  # Required: the release refuses to boot without them, naming the missing one.\n"
                     + "\n".join(_required(v, n) for v, n in required))

    names = dict((v, n) for v, n in required)
    if "CLOAK_KEY" in names:
        parts.append(f"  config :{portal}, {vault},\n    ciphers: [\n"
                     '      default: {Cloak.Ciphers.AES.GCM, tag: "AES.GCM.V1", key: Base.decode64!(cloak_key)}\n'
                     "    ]\n")

    endpoint_opts = []
    if "SECRET_KEY_BASE" in names:
        endpoint_opts.append("secret_key_base: secret_key_base")
    if not have["PHX_HOST"] and not _configures(user_code, portal, endpoint, "url"):
        parts.append(f'  host = System.get_env("PHX_HOST") || "{s.hostname}"\n')
        endpoint_opts.insert(0, 'url: [host: host, port: 443, scheme: "https"]')
    elif have["PHX_HOST"]:
        skipped.append("PHX_HOST (already read)")
    if not have["PORT"] and not _configures(user_code, portal, endpoint, "http"):
        parts.append(f'  port = String.to_integer(System.get_env("PORT") || "{s.portal_port}")\n')
        endpoint_opts.append("http: [ip: {0, 0, 0, 0, 0, 0, 0, 0}, port: port]")
    else:
        skipped.append("PORT / http (already configured)")
    if endpoint_opts:
        opts = ",\n    ".join(endpoint_opts)
        parts.append("  # force_ssl lives in prod.exs (compile time), not here.\n"
                     f"  config :{portal}, {endpoint},\n    {opts}\n")

    repo_opts = []
    if "DATABASE_URL" in names:
        repo_opts.append("url: database_url")
    if not have["POOL_SIZE"] and not _configures(user_code, s.db_otp_app, repo, "pool_size"):
        repo_opts.append('pool_size: String.to_integer(System.get_env("POOL_SIZE") || "10")')
    if not _configures(user_code, s.db_otp_app, repo, "ssl"):
        repo_opts += ["ssl: true", "ssl_opts: [verify: :verify_none]"]
    if repo_opts:
        opts = ",\n    ".join(repo_opts)
        parts.append(
            "  # SECURITY TRADE-OFF: ssl_opts verify: :verify_none encrypts the connection but does not check\n"
            "  # the server's certificate. Fly Postgres uses internal certificates and the traffic stays on\n"
            "  # Fly's private WireGuard network. For a database outside Fly, use verify: :verify_peer with\n"
            "  # the provider's CA (cacertfile:) instead.\n"
            f"  config :{s.db_otp_app}, {repo},\n    {opts}\n")

    if "WORLD_PUBLIC_ADDRESS" in names:
        parts.append("  # The address the realm hands to game clients for the world server.\n"
                     "  config :bezgelor_world, public_address: world_public_address\n")
    if not parts:
        return "", skipped
    text = f"{BEGIN}\nif config_env() == :prod do\n" + "\n".join(parts) + f"end\n{END}\n"
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
    ours, skipped = block(co, et.mask(user, comments_only=True))
    if blocks:
        new = old_text[:blocks[0].start()] + ours + old_text[blocks[0].end():]
    else:
        new = old_text.rstrip("\n") + "\n\n" + ours if ours else old_text
    if "import Config" not in new:
        raise UserError(f"{REL} does not `import Config`.", fix="add `import Config` as its first line.")
    notes = [f"left out, already configured: {', '.join(skipped)}"] if skipped else []
    return FileChange(path, REL, old, new, "production settings read from the environment (fail fast)",
                      mode="patch", notes=tuple(notes))
