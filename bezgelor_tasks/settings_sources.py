"""Where the settings' raw text comes from: the process environment, `.env` in the current folder, the checkout's
`.env`, in that order; each value with where it was set (a file and line), and the lines that cannot be read.

A `.env` line that is not NAME=value is named by file and line, never shown (it may hold a password).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Sources:
    """Raw values by env key, where each came from, and what could not be read."""

    root: Path
    values: dict[str, str]
    origins: dict[str, str]
    problems: list[str]
    dotenv_files: list[Path]


def _read_dotenv(path: Path) -> tuple[dict[str, str], dict[str, int], list[str]]:
    """Values, the line of each key, and the lines python-dotenv cannot parse (named by file and line).

    Only python-dotenv's public surface is used: `dotenv_values`, and the warning it logs (through the
    standard `logging` module) for each statement it cannot parse, which carries the line number."""
    import logging

    from dotenv import dotenv_values

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        return {}, {}, [f"{path} cannot be read ({e})"]

    unparsed: list[int] = []

    class _Unparsed(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            numbers = [a for a in (record.args or ()) if isinstance(a, int)] if isinstance(record.args, tuple) else []
            unparsed.extend(numbers[:1] or [0])

    logger = logging.getLogger("dotenv.main")
    handler, propagate = _Unparsed(level=logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # the user sees our message (without the line's text), not python-dotenv's
    try:
        values = {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    # The line itself is never shown: a .env may hold a password next to our settings.
    bad = [f"{path} line {n or '?'} is not a NAME=value line (a comment starts with #; a value with spaces "
           "or # needs quotes)" for n in unparsed]
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if (match := _DOTENV_KEY.match(line)) and match.group(1) in values:
            lines[match.group(1)] = number  # the last assignment wins, as in python-dotenv
    if bad:
        return {}, lines, bad
    return values, lines, []


_DOTENV_KEY = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def read_sources(root: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Sources:
    """The environment over `.env` in the current folder over the checkout's `.env`."""
    env = dict(os.environ if environ is None else environ)
    layered: dict[str, str] = {}
    origins: dict[str, str] = {}
    found: list[str] = []
    files: list[Path] = []

    def layer(values: Mapping[str, str], where: Callable[[str], str], under: bool = False) -> None:
        for k, v in values.items():
            if under and k in layered:
                continue
            layered[k] = v
            origins[k] = where(k)

    cwd_env = Path.cwd() / ".env"
    if cwd_env.is_file():
        values, lines, bad = _read_dotenv(cwd_env)
        found += bad
        files.append(cwd_env)
        layer(values, lambda k: f"{cwd_env} line {lines.get(k, '?')}")
    layer(env, lambda k: "the environment")
    root_path = Path(root) if root else Path(layered.get("BEZGELOR_ROOT", "."))
    checkout_env = root_path / ".env"
    if checkout_env.is_file() and checkout_env.resolve() != cwd_env.resolve():
        values, lines, bad = _read_dotenv(checkout_env)
        found += bad
        files.append(checkout_env)
        layer(values, lambda k: f"{checkout_env} line {lines.get(k, '?')}", under=True)
    return Sources(root_path, layered, origins, found, files)
