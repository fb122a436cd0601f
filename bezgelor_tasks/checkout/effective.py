"""The settings every task sees: the configured ones (environment, .env, defaults), completed by what the
checkout's own deployment files say. One function (`effective`) for every task, read without Elixir.

- **The release's name: the Dockerfile's.** Its final stage copies `_build/<env>/rel/<release>` to /app, and
  that is what puts /app/bin/<release> in the image: the script the drain, the console, the game tasks and
  `inv db.status` run on the machine. The Dockerfile is committed, so a CI runner that deploys reads it
  without Elixir; init writes it from mix.exs (a release mix.exs defines keeps its name, areas/release.py),
  and verify holds it against mix.exs (the dockerfile area: the release `mix release` builds and the one the
  image copies). fly.toml could carry the name too (an `[env]` line), but that would be a second copy that can
  drift from the image, shipped into the machine's environment for nothing; the Dockerfile is where the name
  takes effect. init and verify, which judge mix.exs itself, pass its release in (`release_name=`), so a
  Dockerfile that disagrees is rewritten or reported, never believed. Without a Dockerfile naming one, the
  setting (BEZGELOR_RELEASE_NAME) names it.
- **The region: fly.toml's `primary_region`**, when BEZGELOR_FLY_REGION was not given and Fly knows the region:
  the database `inv deploy.full` creates, the watcher app and every flyctl command that takes a region follow
  the checkout, not the default.

Each value taken from the checkout is recorded with the value the settings alone gave
(`Settings.from_checkout`; `Settings.as_configured()` undoes it).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bezgelor_tasks.settings import Settings

DOCKERFILE = "Dockerfile"
FLY_TOML = "fly.toml"


def _fly_region(value: Any) -> bool:
    from bezgelor_tasks.settings_values import region

    return isinstance(value, str) and region(value) is None   # the setting's own check


# Settings fly.toml answers when they were not given: (Settings field, fly.toml key, is the value one Fly reads).
FROM_FLY_TOML: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (("region", "primary_region", _fly_region),)


def dockerfile_release(root: Path) -> str | None:
    """The release the checkout's Dockerfile puts in the image (None: no Dockerfile, or it names none)."""
    from bezgelor_tasks.areas.dockerfile_facts import parse_dockerfile
    from bezgelor_tasks.files import read_text

    path = root / DOCKERFILE
    text = read_text(path) if path.is_file() else None
    return None if text is None else parse_dockerfile(text).release


def fly_toml_values(root: Path, configured: Settings) -> dict[str, Any]:
    """field -> value for the settings not given whose value the checkout's fly.toml has (and Fly reads). A
    fly.toml that is not TOML answers nothing (verify reports it)."""
    from bezgelor_tasks.files import read_text

    path = root / FLY_TOML
    text = read_text(path) if path.is_file() else None
    try:   # the standard library's reader: every task loads settings, and tomlkit (fly_toml_doc) costs ~20 ms
        data = tomllib.loads(text) if text else {}
    except tomllib.TOMLDecodeError:
        return {}
    return {field: data[key] for field, key, valid in FROM_FLY_TOML
            if not configured.is_given(field) and key in data and valid(data[key])}


def effective(configured: Settings, *, release_name: str | None = None) -> Settings:
    """`configured` with the checkout's release name (`release_name` when the caller read mix.exs, else the
    Dockerfile's) and fly.toml's values for the settings not given."""
    root = configured.root
    derived = fly_toml_values(root, configured)
    release = release_name or dockerfile_release(root)
    if release is not None:
        derived["release_name"] = release
    changed = {k: v for k, v in derived.items() if getattr(configured, k) != v}
    if not changed:
        return configured
    return replace(configured, **changed,
                   from_checkout=tuple((k, getattr(configured, k)) for k in sorted(changed)))
