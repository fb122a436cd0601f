"""Every problem with the settings, found at once, before a task does anything.

`load_checked` (settings_load.py) runs them: each field's own check judges its value (settings_values.py),
`CROSS_CHECKS` judge values together, unknown `BEZGELOR_*` names get the nearest known one, and every problem
found goes into one UserError (`raise_problems`). A new setting judged with others gets a function in
CROSS_CHECKS; a `BEZGELOR_*` variable read elsewhere goes in settings_variables.OTHER_KEYS.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.redact import redact
from bezgelor_tasks.settings import ENV_OF, FIELDS, Settings
from bezgelor_tasks.settings_values import APP_NAME_RE, shown
from bezgelor_tasks.settings_variables import OTHER_KEYS

if TYPE_CHECKING:
    from bezgelor_tasks.fly.platform import CpuKind
    from bezgelor_tasks.settings_sources import Sources


# -- checks across settings: each takes the Settings and returns problem sentences -------------------------

def _distinct_ports(s: Settings) -> list[str]:
    by_port: dict[int, list[str]] = {}
    for name in ("portal_port", "auth_port", "realm_port", "world_port"):
        by_port.setdefault(getattr(s, name), []).append(ENV_OF[name])
    return [f"{' and '.join(keys)} are {'both' if len(keys) == 2 else 'all'} {port}: the portal and the three "
            "game servers each need a port of their own (defaults 4000, 6600, 23115, 24000)"
            for port, keys in by_port.items() if len(keys) > 1]


def _distinct_apps(s: Settings) -> list[str]:
    if s.app == s.db_app:
        return [f"BEZGELOR_FLY_APP and BEZGELOR_FLY_DB_APP are both {s.app!r}: the game app and its Postgres app "
                f"need different names (for example {s.app}-db for the database)"]
    return []


def _machine(label: str, kind: CpuKind, cpus: int, memory_mb: int, memory_key: str, cpus_key: str) -> list[str]:
    from bezgelor_tasks.fly.platform import vm_size_name

    if cpus not in kind.cpus:
        return [f"{cpus_key}={cpus} is not a CPU count Fly offers for {kind.name} CPUs: use one of "
                f"{', '.join(map(str, kind.cpus))} ({label})"]
    low, high = kind.memory_range(cpus)
    out = []
    if not low <= memory_mb <= high:
        fits = [n for n in kind.cpus if kind.memory_range(n)[0] <= memory_mb <= kind.memory_range(n)[1]]
        more = f", or set {cpus_key}={fits[0]}" if fits and cpus_key else ""
        out.append(f"{memory_key}={memory_mb} does not fit {vm_size_name(kind.name, cpus)} ({label}): Fly allows "
                   f"{low}-{high} MB for {cpus} {kind.name} CPU(s) ({kind.min_memory_mb_per_cpu}-"
                   f"{kind.max_memory_mb_per_cpu} MB per CPU); use a memory in that range{more}")
    elif memory_mb % kind.memory_step_mb:
        out.append(f"{memory_key}={memory_mb} is not a multiple of {kind.memory_step_mb} MB, which Fly requires for "
                   f"{kind.name} CPUs ({label}): use {memory_mb // kind.memory_step_mb * kind.memory_step_mb or low}")
    return out


def _game_machine(s: Settings) -> list[str]:
    from bezgelor_tasks.fly import platform

    kind = platform.cpu_kinds().get(s.vm_cpu_kind)
    if kind is None or s.vm_cpus <= 0 or s.vm_memory_mb <= 0:
        return []  # already reported by the field's own check
    return _machine("the game machine", kind, s.vm_cpus, s.vm_memory_mb, "BEZGELOR_VM_MEMORY_MB", "BEZGELOR_VM_CPUS")


def _postgres_machine(s: Settings) -> list[str]:
    from bezgelor_tasks.fly import platform

    parsed = platform.parse_vm_size(s.pg_vm_size)
    kinds = platform.cpu_kinds()
    if parsed is None or parsed[0] not in kinds or parsed[1] not in kinds[parsed[0]].preset_cpus:
        sizes = [platform.vm_size_name(k.name, n) for k in kinds.values() for n in k.preset_cpus]
        return [f"BEZGELOR_PG_VM_SIZE={s.pg_vm_size!r} is not a Fly VM size: use one of {', '.join(sizes)}"]
    if s.pg_vm_memory_mb <= 0:
        return []
    return _machine("the Postgres machine", kinds[parsed[0]], parsed[1], s.pg_vm_memory_mb,
                    "BEZGELOR_PG_VM_MEMORY_MB", "")


# Settings added later slot in: give the field a `check` (one value) or add a function here (several).
def _drain(s: Settings) -> list[str]:
    from bezgelor_tasks.units import parse_duration

    try:
        parse_duration(s.drain, "BEZGELOR_DRAIN")
        for mark in s.drain_marks:
            parse_duration(mark, "BEZGELOR_DRAIN_MARKS entry")
    except UserError as e:
        return [e.message.rstrip(".")]
    return []


def _postgres_major(s: Settings) -> list[str]:
    if s.pg_flavor == "mpg" and s.pg_major not in (15, 16, 17):
        return [f"BEZGELOR_PG_MAJOR={s.pg_major} is not offered by Managed Postgres: use 16 or 17"]
    return []


def _watcher(s: Settings) -> list[str]:
    from bezgelor_tasks.fly import platform

    out = [] if not s.watch_app or APP_NAME_RE.match(s.watch_app) else [
        f"BEZGELOR_WATCH_APP={s.watcher_app!r} is not a name Fly accepts (lowercase letters, digits and dashes)"]
    if s.watcher_app in (s.app, s.db_app):
        out.append(f"BEZGELOR_WATCH_APP={s.watcher_app!r} is the game or the database app: the watcher needs an app "
                   "of its own")
    shared = platform.cpu_kinds().get("shared")
    if shared is not None and s.watch_memory_mb > 0:
        out += _machine("the watcher machine", shared, 1, s.watch_memory_mb, "BEZGELOR_WATCH_MEMORY_MB", "")
    if s.alert_email_to and not s.alert_smtp_url:
        out.append("BEZGELOR_ALERT_EMAIL_TO is set but BEZGELOR_ALERT_SMTP_URL is not: alert mails need a mail server")
    if s.alert_smtp_url and not s.alert_email_to:
        out.append("BEZGELOR_ALERT_SMTP_URL is set but BEZGELOR_ALERT_EMAIL_TO is not: say where alert mails go")
    return out


CROSS_CHECKS: list[Callable[[Settings], list[str]]] = [
    _distinct_ports, _distinct_apps, _game_machine, _postgres_machine, _postgres_major, _drain, _watcher,
]


def problems(s: Settings, origins: Mapping[str, str] | None = None) -> list[str]:
    """Every bad value of `s`, one sentence each; `origins` (env key → where it was set) makes them precise."""
    origins = origins or {}
    out: list[str] = []
    for f in FIELDS:
        check = f.metadata.get("check")
        wrong = check(getattr(s, f.name)) if check else None
        if wrong:
            key = f.metadata["env"]
            where = f" ({origins[key]})" if key in origins else ""
            # a secret setting, or a secret its check found where none belongs (registered): never shown
            written = "***" if f.metadata.get("secret") else redact(shown(getattr(s, f.name)))
            out.append(f"{key}={written}{where} {wrong}")
    for rule in CROSS_CHECKS:
        out.extend(rule(s))
    return out


def raise_problems(found: list[str], dotenv_hint: str = ".env") -> None:
    """A headline, one line per problem, the fix; nothing when there are none."""
    if not found:
        return
    raise UserError(
        f"{len(found)} setting problem(s): bezgelor-tasks stopped before changing anything.",
        detail="\n".join(f"- {p}" + ("" if p.endswith((".", "?")) else ".") for p in found),
        fix=f"correct them in the environment or in {dotenv_hint} (every setting and its default is listed in "
            ".env.example), then run the task again.")


def validate(s: Settings) -> None:
    """Raise one UserError naming every bad value of `s` (see `problems`)."""
    raise_problems(problems(s))


# -- names no setting has ----------------------------------------------------------------------------------

def _mentioned_by_checkout(root: Path, keys: set[str]) -> set[str]:
    """Which of `keys` the checkout's own code or config reads (those are the app's, not typos of ours)."""
    if not keys or not root.is_dir():
        return set()
    suffixes = {".ex", ".exs", ".eex", ".heex", ".sh", ".yml", ".yaml", ".toml", ".example"}
    names = {"Makefile", "Dockerfile", "Procfile"}
    skip = {".git", "deps", "_build", "node_modules", ".bezgelor", ".elixir_ls"}
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            if name in names or Path(name).suffix in suffixes or name.startswith("Dockerfile"):
                path = Path(dirpath, name)
                try:
                    if path.stat().st_size > 1_000_000:
                        continue
                    text = path.read_text(errors="replace")
                except OSError:
                    continue
                seen |= {k for k in keys if k in text}
                if seen == keys:
                    return seen
    return seen


def unknown_keys(src: Sources) -> list[str]:
    """`BEZGELOR_*` names set in the environment or a .env that no setting has, with the nearest known one."""
    known = set(ENV_OF.values()) | set(OTHER_KEYS)
    unknown = {k for k in src.values if k.startswith("BEZGELOR_") and k not in known}
    unknown -= _mentioned_by_checkout(src.root, unknown)
    out = []
    for key in sorted(unknown):
        near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        guess = f"did you mean {near[0]}?" if near else "no setting has this name; remove it"
        out.append(f"{key} ({src.origins.get(key, 'set')}) is not a bezgelor-tasks setting: {guess}")
    return out
