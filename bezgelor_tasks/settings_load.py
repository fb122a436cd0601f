"""Loading the settings every task runs with: `load_checked` (what tasks call first) and `load`.

Values come from, in order: the process environment, `.env` in the current folder, the checkout's `.env`
(settings_sources.py), then the defaults (settings.py). Where a setting was not given, the checkout's
deployment files complete them, the same way for every task (checkout/effective.py): the release's name from
the Dockerfile, the region from fly.toml. Secret settings are registered with redact as soon as they are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bezgelor_tasks.settings import FIELDS, Settings
from bezgelor_tasks.settings_checks import problems, raise_problems, unknown_keys
from bezgelor_tasks.settings_sources import Sources, read_sources
from bezgelor_tasks.settings_values import convert


def _build(src: Sources, overrides: Mapping[str, Any]) -> tuple[Settings, list[str]]:
    values: dict[str, Any] = {}
    bad: list[str] = []
    for f in FIELDS:
        key = f.metadata["env"]
        if f.name == "root":
            values["root"] = src.root.resolve()
        elif key in src.values and src.values[key] != "":
            try:
                values[f.name] = convert(f.name, src.values[key], f.default)
            except ValueError as e:
                bad.append(f"{key}={src.values[key]} ({src.origins.get(key, 'set')}) {e}")
    values.update(overrides)
    values["given"] = frozenset(n for n in values if n != "root")
    return Settings(**values), bad


def load(root: str | Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from environment, `.env` files and defaults; `root` (a --root flag) wins over BEZGELOR_ROOT.

    Raises UserError for what cannot be read at all (a .env line, a number that is not one). Tasks use
    `load_checked`, which also checks every value.
    """
    src = read_sources(root, environ)
    s, bad = _build(src, overrides)
    _register_secrets(s)
    raise_problems(src.problems + bad)
    return _effective(s)


def _effective(s: Settings) -> Settings:
    """What the checkout's own files say, where a setting was not given (checkout/effective.py)."""
    from bezgelor_tasks.checkout.effective import effective

    return effective(s)


def _register_secrets(s: Settings) -> None:
    """Secret settings (alert URLs) are masked everywhere from the moment they are read."""
    from bezgelor_tasks import redact

    redact.register(*s.secret_values())


def load_checked(root: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """What every task runs first: Settings, after every check passed; else one UserError listing them all."""
    src = read_sources(root, environ)
    s, bad = _build(src, {})
    _register_secrets(s)
    found = src.problems + bad + unknown_keys(src) + problems(s, src.origins)
    hint = " or ".join(str(p) for p in src.dotenv_files) or ".env"
    raise_problems(found, hint)
    return _effective(s)
