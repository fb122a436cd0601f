"""Which secrets the release needs on Fly, read from the checkout itself.

The fixed four (areas/runtime_exs.REQUIRED_ENV) plus every name `config/runtime.exs` reads with
`System.fetch_env!` or `System.get_env("X") || raise`, as Elixir reads the file (the judge); other
`System.get_env` names are optional.
Names Fly sets on every machine, and names fly.toml's `[env]` provides, are not secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomlkit

from bezgelor_tasks.areas.runtime_exs import REQUIRED_ENV
from bezgelor_tasks.settings import Settings

# Set by Fly on every machine, or by the release scripts: never secrets.
PLATFORM_NAMES = frozenset({
    "FLY_APP_NAME", "FLY_MACHINE_ID", "FLY_ALLOC_ID", "FLY_REGION", "FLY_PUBLIC_IP", "FLY_IMAGE_REF",
    "FLY_MACHINE_VERSION", "FLY_PRIVATE_IP", "FLY_PROCESS_GROUP", "FLY_VM_MEMORY_MB", "PRIMARY_REGION",
    "RELEASE_COMMAND", "RELEASE_NAME", "RELEASE_NODE", "RELEASE_COOKIE", "RELEASE_DISTRIBUTION", "PORT",
    "PHX_SERVER", "MIX_ENV", "HOME", "PATH", "LANG",
})

def fixed_required() -> tuple[str, ...]:
    return tuple(REQUIRED_ENV)


def fly_toml_env(root: Path) -> set[str]:
    path = root / "fly.toml"
    if not path.is_file():
        return set()
    try:
        env = tomlkit.parse(path.read_text(encoding="utf-8")).get("env") or {}
    except Exception:  # a broken fly.toml is verify's finding, not ours
        return set()
    return {str(k) for k in env}


@dataclass(frozen=True)
class SecretNames:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    from_env: tuple[str, ...]  # provided by fly.toml [env], so not needed as secrets
    read_runtime_exs: bool = True   # False: Elixir is absent or runtime.exs does not parse (the fixed four only)


def secret_names(settings: Settings) -> SecretNames:
    """Elixir reads config/runtime.exs (the judge's env reads); without Elixir, or where runtime.exs does not
    parse, only the fixed four (`read_runtime_exs` False says so)."""
    from bezgelor_tasks import elixir

    runtime = settings.root / "config" / "runtime.exs"
    reads = elixir.env_reads(runtime) if runtime.is_file() and elixir.available() else None
    provided = fly_toml_env(settings.root)
    required = list(fixed_required())
    for r in reads or []:
        if r.how in _REQUIRED_READS and r.var not in required:
            required.append(r.var)
    optional = sorted({r.var for r in reads or []} - set(required))
    keep = [n for n in required if n not in PLATFORM_NAMES and n not in provided]
    return SecretNames(required=tuple(keep),
                       optional=tuple(n for n in optional if n not in PLATFORM_NAMES and n not in provided),
                       from_env=tuple(sorted(n for n in set(required) | set(optional) if n in provided)),
                       read_runtime_exs=reads is not None)


_REQUIRED_READS = frozenset({"fetch_env!", "get_env_or_raise"})   # the release does not boot without them
