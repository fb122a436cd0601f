"""One setting's value: its type from the text it was written as (`convert`), and the checks a field names.

A check gets a setting's converted value and returns what is wrong with it (a clause that follows
"BEZGELOR_X=value "), or None when it is fine. Settings name their check in their field (settings.py);
checks across settings are in settings_checks.py. A conversion that fails says the form expected
(`4GiB` in a setting counted in MB: "is 4096 MB, so write 4096").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bezgelor_tasks.errors import UserError

# A check: a setting's converted value in, what is wrong with it (or None) out.
Check = Callable[[Any], "str | None"]

# flyctl (internal/command/launch/plan_builder.go validateAppName): "app name must consist of only lowercase
# letters, numbers, and dashes". The name is also the DNS label of <app>.fly.dev: at most 63 characters,
# not starting or ending with a dash.
APP_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MPG_PLANS = ("basic", "starter", "launch", "scale")
ELIXIR_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def port(v: int) -> str | None:
    return None if 1 <= v <= 65535 else "is not a TCP port: use a number from 1 to 65535"


def positive(v: float) -> str | None:
    return None if v > 0 else "must be more than 0"


def not_negative(v: float) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def in_range(low: float, high: float, why: str = "") -> Check:
    """A number from `low` to `high` (e.g. kill_timeout: Fly allows at most 300 s)."""
    def check(v: float) -> str | None:
        return None if low <= v <= high else f"is out of range: use {low:g} to {high:g}{f' ({why})' if why else ''}"
    return check


def one_of(*choices: str) -> Check:
    def check(v: str) -> str | None:
        return None if v in choices else f"is not known: use {' or '.join(choices)}"
    return check


def app_name(v: str) -> str | None:
    if APP_NAME_RE.match(v):
        return None
    return ("is not a name Fly accepts: app names are 1-63 lowercase letters, digits and dashes, not starting "
            f"or ending with a dash (for example {_slug(v)!r})")


def _slug(v: str) -> str:
    """What flyctl's sanitizeAppName would make of a name: lowercase, other characters to single dashes."""
    return re.sub(r"[^a-z0-9]+", "-", v.lower()).strip("-")[:63].strip("-") or "my-bezgelor"


def region(v: str) -> str | None:
    from bezgelor_tasks.fly import platform

    known = platform.regions()
    if v in known:
        return None
    moved = platform.deprecated_regions().get(v)
    if moved:
        return f"is a region Fly retired and consolidated into {moved} ({known.get(moved, moved)}): use {moved}"
    near = difflib.get_close_matches(v, known, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]} ({known[near[0]]})? " if near else ""
    return (f"is not a Fly region: {hint}Fly's regions are {', '.join(sorted(known))} (as of "
            f"{platform.regions_as_of()}; if Fly has added one since, add it to bezgelor_tasks/data/regions.json)")


def elixir_name(v: str) -> str | None:
    return None if ELIXIR_NAME_RE.match(v) else "is not an Elixir app/release name (lowercase letters, digits, _)"


def elixir_names(v: tuple[str, ...]) -> str | None:
    bad = [n for n in v if not ELIXIR_NAME_RE.match(n)]
    return f"has {', '.join(map(repr, bad))}, not Elixir app names (lowercase letters, digits, _)" if bad else None


def url_or_empty(v: str) -> str | None:
    return None if not v or v.startswith(("http://", "https://")) else "is not an http(s):// URL (or empty)"


# -- checks of the off-site backup settings (issue 17) -------------------------------------------------------

def s3_url(v: str) -> str | None:
    """Empty (no off-site copies) or s3://bucket[/prefix]."""
    if not v:
        return None
    from bezgelor_tasks.backup.offsite_values import parse_s3_url

    try:
        parse_s3_url(v)
    except UserError as e:
        return e.message.rstrip(".")
    return None


def age_recipients(v: tuple[str, ...]) -> str | None:
    from bezgelor_tasks.backup.offsite_values import bad_recipients

    bad = bad_recipients(v)
    return (f"has {', '.join(bad)}, not age public keys: use what `age-keygen -y KEYFILE` prints (age1...) "
            "or an ssh-ed25519 public key") if bad else None


def cron(v: str) -> str | None:
    """Empty (no schedule) or a cron expression cronsim accepts: 5 fields, or 6 with seconds first (UTC)."""
    if not v.strip():
        return None
    from datetime import UTC, datetime

    from cronsim import CronSim, CronSimError

    try:
        CronSim(v, datetime.now(UTC))
    except CronSimError as e:
        return f"is not a cron expression ({e}): write it like `0 4 * * *` (every day at 04:00 UTC), or leave it empty"
    return None


def duration_or_off(v: str) -> str | None:
    """Empty or 0 (off), or a duration like 36h, 90m, 1h30m."""
    if not v.strip():
        return None
    from bezgelor_tasks.units import parse_duration

    try:
        parse_duration(v)
    except UserError:
        return "is not a duration: write it like 36h, 90m or 1h30m (empty or 0 turns it off)"
    return None


def smtp_url_or_empty(v: str) -> str | None:
    if not v:
        return None
    return None if v.startswith(("smtp://", "smtps://")) else \
        "is not an smtp:// (STARTTLS, port 587) or smtps:// (TLS, port 465) URL, e.g. smtp://user:password@host:587"


# -- the text a value was written as, and what it should have looked like ---------------------------------

def shown(value: Any) -> str:
    """A value as it is written in the environment or a .env (a tuple: comma-separated)."""
    return ",".join(value) if isinstance(value, tuple) else str(value)


# The unit a number setting is counted in, from its field name's ending.
_UNITS = {"_mb": "megabytes (MB)", "_gb": "gigabytes (GB)", "_s": "seconds", "_days": "days", "_months": "months"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _expected(name: str, raw: str, default: Any) -> str:
    """What a value that does not convert should have looked like: the form, the unit, an example."""
    unit = next((u for suffix, u in _UNITS.items() if name.endswith(suffix)), "")
    whole = isinstance(default, int) and not isinstance(default, bool)
    form = ("a whole number" if whole else "a number") + (f" of {unit}" if unit else "")
    example = f"e.g. {shown(default)}, the default"
    if name.endswith("_mb"):
        from bezgelor_tasks.units import parse_memory_mb  # Fly's memory spellings: 4gb, 4GiB, 4096mb

        mb = parse_memory_mb(raw)
        if mb is not None:
            return f"is not {form}: {raw.strip()} is {mb} MB, so write {mb}"
    if name.endswith("_s") and re.fullmatch(r"\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*", raw):
        return f"is not {form}: write the seconds without a unit ({example})"
    return f"is not {form} ({example})"


def convert(name: str, raw: str, default: Any) -> Any:
    """The typed value of a setting; ValueError says the form expected (`4GiB` → "is 4096 MB, so write 4096")."""
    try:
        if isinstance(default, bool):
            if raw.strip().lower() not in (*_TRUE, *_FALSE):
                raise ValueError("is not true or false (1/0, yes/no and on/off work too)")
            return raw.strip().lower() in _TRUE
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if isinstance(default, Path) or name == "root":
            return Path(raw)
        return raw
    except ValueError as e:
        if isinstance(default, bool):
            raise
        raise ValueError(_expected(name, raw, default)) from e
