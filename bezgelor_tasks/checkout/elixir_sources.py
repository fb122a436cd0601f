"""Elixir files we own whole: the health controller and the release module (migrations).

Rendered from bezgelor_tasks/templates/elixir/*.ex with values from settings, so a port changed in
settings changes the controller too (and verify can compare the two). Written through
`files.generated_change`: regenerated freely while unedited; a hand-edited copy needs --force.
"""

from __future__ import annotations

import re
from importlib import resources

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.files import FileChange, generated_change

# Each check of /health gets this long; all run at once, so /health answers in about this time
# even when a service hangs (Fly's check timeout in fly.toml is 5s).
CHECK_TIMEOUT_MS = 1500
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render(template: str, values: dict[str, str]) -> str:
    """Fill `{name}` placeholders; Elixir's own braces (maps, tuples, `#{...}`) are left alone."""
    text = resources.files("bezgelor_tasks").joinpath("templates", "elixir", template).read_text(encoding="utf-8")
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _values(co: Checkout) -> dict[str, str]:
    s = co.settings
    return {
        "web_module": co.portal_web_module,
        "db_module": co.db_module,
        "db_app": s.db_otp_app,
        "portal_app": s.portal_app,
        "auth_port": str(s.auth_port),
        "realm_port": str(s.realm_port),
        "world_port": str(s.world_port),
        "check_timeout_ms": str(CHECK_TIMEOUT_MS),
    }


def health_controller_path(co: Checkout) -> str:
    return co.rel(co.portal_web_dir / "controllers" / "health_controller.ex")


def release_module_path(co: Checkout) -> str:
    return f"apps/{co.settings.db_otp_app}/lib/{co.settings.db_otp_app}/release.ex"


def health_controller_change(co: Checkout) -> FileChange:
    rel = health_controller_path(co)
    return generated_change(co.path(rel), rel, render("health_controller.ex", _values(co)),
                            "health controller: database and game ports checked at once, 200/503")


def release_module_change(co: Checkout) -> FileChange:
    rel = release_module_path(co)
    return generated_change(co.path(rel), rel, render("release.ex", _values(co)),
                            f"{co.db_module}.Release: migrate, status and rollback inside the release")


def game_ports_in_controller(text: str) -> dict[str, int]:
    """The `@game_ports` a health controller checks (for verify): {"auth": 6600, ...}."""
    m = re.search(r"@game_ports\s*\[([^\]]*)\]", text)
    if not m:
        return {}
    return {k: int(v) for k, v in re.findall(r"(\w+):\s*(\d+)", m.group(1))}
