"""What every check reads, loaded once: the checkout's files, parsed fly.toml and Dockerfile, Elixir."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from bezgelor_tasks import elixir
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checkout.dockerfile import DockerfileFacts, parse_dockerfile
from bezgelor_tasks.files import read_text


@dataclass
class CheckContext:
    co: Checkout
    skipped: list[str] = field(default_factory=list)   # loud notes: what could not be checked and why

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.co.settings

    def text(self, rel: str) -> str | None:
        return read_text(self.co.path(rel))

    @cached_property
    def elixir_available(self) -> bool:
        return elixir.available()

    @cached_property
    def fly_toml(self) -> dict[str, Any] | None:
        """fly.toml as plain data (None when missing); a parse error is reported by the fly.toml check."""
        text = self.text("fly.toml")
        if text is None:
            return None
        try:
            return tomlkit.parse(text).unwrap()
        except TOMLKitError:
            return None

    @cached_property
    def fly_toml_error(self) -> str | None:
        text = self.text("fly.toml")
        if text is None:
            return None
        try:
            tomlkit.parse(text)
        except TOMLKitError as e:
            return str(e)
        return None

    def services(self) -> list[dict[str, Any]]:
        data = self.fly_toml or {}
        services = data.get("services") or []
        return [s for s in services if isinstance(s, dict)]

    def portal_service(self) -> dict[str, Any] | None:
        for s in self.services():
            if s.get("internal_port") == self.settings.portal_port:
                return s
        return None

    @cached_property
    def dockerfile(self) -> DockerfileFacts | None:
        text = self.text("Dockerfile")
        return None if text is None else parse_dockerfile(text)

    @cached_property
    def prod_config(self) -> dict[str, Any] | None:
        """config/prod.exs as evaluated by Config.Reader (None: Elixir missing or file missing)."""
        path = self.co.path("config/prod.exs")
        if not path.is_file() or not self.elixir_available:
            return None
        return elixir.read_config(path)

    def health_controller_rel(self) -> str:
        return self.co.rel(self.co.portal_web_dir / "controllers" / "health_controller.ex")

    def router_rel(self) -> str:
        return self.co.rel(self.co.portal_web_dir / "router.ex")

    def release_module_rel(self) -> str:
        return self.co.rel(self.co.app_dir(self.settings.db_otp_app) / "lib" / self.settings.db_otp_app
                           / "release.ex")

    def rel(self, path: Path) -> str:
        return self.co.rel(path)
