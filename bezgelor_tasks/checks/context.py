"""What every check reads, loaded once: the checkout's files, parsed fly.toml and Dockerfile, Elixir."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tomlkit import TOMLDocument

from bezgelor_tasks import elixir
from bezgelor_tasks.areas import fly_toml_doc
from bezgelor_tasks.areas.dockerfile_facts import DockerfileFacts, parse_dockerfile
from bezgelor_tasks.areas.fly_toml_doc import NotToml
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.files import read_text


@dataclass(frozen=True)
class Evaluation:
    """One Config.Reader evaluation: the config, or why there is none."""
    config: dict[str, Any] | None
    error: str | None = None        # the Elixir error, paths shown relative to the checkout
    line: int | None = None         # the error's line in `error_file`, when Elixir names one
    error_file: str | None = None
    needs_deps: bool = False         # it failed calling into a dependency that is not compiled here
    unreadable: bool = False         # it evaluated, but a value could not be carried back to Python

    @property
    def ok(self) -> bool:
        return self.config is not None


@dataclass
class CheckContext:
    co: Checkout
    skipped: list[str] = field(default_factory=list)   # loud notes: what could not be checked and why
    _evaluations: dict[tuple[object, ...], Evaluation] = field(default_factory=dict, repr=False)

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.co.settings

    def text(self, rel: str) -> str | None:
        return read_text(self.co.path(rel))

    @cached_property
    def elixir_available(self) -> bool:
        return elixir.available()

    @cached_property
    def fly_toml_document(self) -> TOMLDocument | NotToml | None:
        """fly.toml parsed once (None when missing; NotToml when it is not TOML: the fly.toml area reports it)."""
        text = self.text("fly.toml")
        return None if text is None else fly_toml_doc.read(text)

    @cached_property
    def fly_toml(self) -> dict[str, Any] | None:
        """fly.toml as plain data (None when missing or not TOML: the checks that need it are skipped)."""
        parsed = self.fly_toml_document
        return None if parsed is None or isinstance(parsed, NotToml) else fly_toml_doc.plain(parsed)

    def services(self) -> list[dict[str, Any]]:
        data = self.fly_toml or {}
        services = data.get("services") or []
        return [s for s in services if isinstance(s, dict)]

    def portal_service(self) -> dict[str, Any] | None:
        """The portal's service: its [[services]], or an [http_service] (its `checks` read as `http_checks`)."""
        for s in self.services():
            if s.get("internal_port") == self.settings.portal_port:
                return s
        http = (self.fly_toml or {}).get("http_service")
        if isinstance(http, dict) and http.get("internal_port") == self.settings.portal_port:
            return {**http, "http_checks": http.get("checks") or []}
        return None

    @cached_property
    def dockerfile(self) -> DockerfileFacts | None:
        text = self.text("Dockerfile")
        return None if text is None else parse_dockerfile(text)

    def evaluate(self, rel: str, env: str = "prod", environ: Mapping[str, str | None] | None = None) -> Evaluation:
        """Evaluate config file `rel` with Config.Reader (the caller checks `elixir_available` first)."""
        key = (rel, env, tuple(sorted((k, v or "") for k, v in (environ or {}).items())))
        if key not in self._evaluations:
            self._evaluations[key] = self._evaluate(rel, env, environ)
        return self._evaluations[key]

    def _evaluate(self, rel: str, env: str, environ: Mapping[str, str | None] | None) -> Evaluation:
        root = str(self.co.root.resolve())
        answer = elixir.evaluate_config(self.co.path(rel), env=env, environ=environ, cwd=self.co.root)
        if answer["ok"]:
            return Evaluation(answer["config"])
        text = str(answer.get("error") or "").replace(root + "/", "")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        first = lines[0] if lines else text
        where_file, where_line = answer.get("file"), answer.get("line")
        if where_file is None:  # older Elixir keeps no frame of the evaluated file: the message may name it
            m = re.search(r"((?:config/)?[\w./-]+\.exs):(\d+)", text)
            where_file, where_line = (m.group(1), int(m.group(2))) if m else (None, None)
        else:
            where_file = str(where_file).replace(root + "/", "")
        if answer.get("needs_deps"):
            first = f"module {answer.get('module')} is not available"
        return Evaluation(None, first, where_line, where_file, needs_deps=bool(answer.get("needs_deps")))

    def rel(self, path: Path) -> str:
        return self.co.rel(path)
