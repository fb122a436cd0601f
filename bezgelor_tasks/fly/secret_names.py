"""Which secrets the release needs on Fly, read from the checkout itself.

The fixed four (areas/runtime_exs.REQUIRED_ENV) plus every name `config/runtime.exs` reads with
`System.fetch_env!` or `System.get_env("X") || raise`; other `System.get_env` names are optional.
Names Fly sets on every machine, and names fly.toml's `[env]` provides, are not secrets.
"""

from __future__ import annotations

import re
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

_FETCH = re.compile(r'System\.fetch_env!\(\s*"([A-Za-z_][A-Za-z0-9_]*)"')
_GET_OR_RAISE = re.compile(r'System\.get_env\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)\s*\|\|\s*raise\b')
_GET = re.compile(r'System\.(?:get_env|fetch_env)\(\s*"([A-Za-z_][A-Za-z0-9_]*)"')


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


def secret_names(settings: Settings) -> SecretNames:
    runtime = settings.root / "config" / "runtime.exs"
    text = runtime.read_text(encoding="utf-8") if runtime.is_file() else ""
    # Commented-out lines would make names look read that are not (`#{...}` in strings is left alone).
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    provided = fly_toml_env(settings.root)
    required = list(fixed_required())
    for name in _FETCH.findall(text) + _GET_OR_RAISE.findall(text):
        if name not in required:
            required.append(name)
    optional = sorted({n for n in _GET.findall(text)} - set(required))
    keep = [n for n in required if n not in PLATFORM_NAMES and n not in provided]
    return SecretNames(required=tuple(keep),
                       optional=tuple(n for n in optional if n not in PLATFORM_NAMES and n not in provided),
                       from_env=tuple(sorted(n for n in set(required) | set(optional) if n in provided)))
