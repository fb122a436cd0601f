"""The Bezgelor umbrella on disk: what apps it has, what mix.lock pins, where things live.

Everything that reads a checkout starts here, so init, verify and release.build agree on what
"the umbrella's apps" are. `Checkout.settings` are the settings as they apply to this checkout, the same
as every task's (checkout/effective.py), except that the release's name is read from mix.exs itself
(areas/release.py), which the Dockerfile the other tasks read it from is written from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.settings import Settings


def camelize(app: str) -> str:
    """bezgelor_portal -> BezgelorPortal (Macro.camelize for plain snake_case names)."""
    return "".join(part.capitalize() for part in app.split("_"))


@dataclass(frozen=True)
class Checkout:
    root: Path
    configured: Settings      # as configured (environment, .env, defaults), without what the checkout decided

    @cached_property
    def settings(self) -> Settings:
        """The settings for this checkout: `configured`, completed by the checkout's files as for every task
        (checkout/effective.py), with the release mix.exs defines (the Dockerfile's when mix.exs is not read)."""
        from bezgelor_tasks.areas.release import mix_release_name
        from bezgelor_tasks.checkout.effective import effective

        return effective(self.configured, release_name=mix_release_name(self.root, self.configured.release_name))

    @classmethod
    def open(cls, settings: Settings) -> Checkout:
        """The checkout at settings.root; a clear error if it is not a Bezgelor-shaped umbrella."""
        root = settings.root
        if not root.is_dir():
            raise UserError(f"The checkout {root} does not exist.",
                            fix="pass --root /path/to/bezgelor or set BEZGELOR_ROOT.")
        if not (root / "mix.exs").is_file():
            raise UserError(f"{root} has no mix.exs, so it is not an Elixir project.",
                            fix="pass --root pointing at the Bezgelor umbrella (the folder with mix.exs and apps/).")
        if not (root / "apps").is_dir() or "apps_path" not in (root / "mix.exs").read_text(encoding="utf-8"):
            raise UserError(f"{root} is not an umbrella project (no apps/ folder or no `apps_path` in mix.exs).",
                            fix="pass --root pointing at the Bezgelor umbrella root, not at one of its apps.")
        co = cls(root.resolve(), settings.as_configured())
        if settings.portal_app not in co.apps:
            raise UserError(f"{root}/apps has no {settings.portal_app} app (found: {', '.join(co.apps) or 'none'}).",
                            fix="point --root at Bezgelor, or set BEZGELOR_PORTAL_APP to your portal app's name.")
        return co

    def path(self, rel: str) -> Path:
        return self.root / rel

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @cached_property
    def apps(self) -> tuple[str, ...]:
        """Every umbrella app under apps/ (a folder with a mix.exs), sorted."""
        apps_dir = self.root / "apps"
        return tuple(sorted(p.name for p in apps_dir.iterdir() if (p / "mix.exs").is_file()))

    @property
    def release_apps(self) -> tuple[str, ...]:
        """The apps the release must contain: all of them except the dev-only ones."""
        return tuple(a for a in self.apps if a not in self.configured.dev_only_apps)

    def app_dir(self, app: str) -> Path:
        return self.root / "apps" / app

    def has_priv(self, app: str) -> bool:
        return (self.app_dir(app) / "priv").is_dir()

    @property
    def portal_module(self) -> str:
        return camelize(self.configured.portal_app)

    @cached_property
    def portal_web_name(self) -> str:
        """The portal's web layer (lib/<name>/, module <Name>): `<app>_web` inside the app (Bezgelor's
        portal, `phx.new` without --umbrella), or the app itself when it *is* the web app (`phx.new
        --umbrella` makes apps/<name>_web with lib/<name>_web/ and BezgelorWeb.Endpoint)."""
        app = self.configured.portal_app
        lib = self.app_dir(app) / "lib"
        if app.endswith("_web") and not (lib / f"{app}_web").is_dir() and (lib / app).is_dir():
            return app
        return f"{app}_web"

    @property
    def portal_web_module(self) -> str:
        return camelize(self.portal_web_name)

    @property
    def portal_web_dir(self) -> Path:
        return self.app_dir(self.configured.portal_app) / "lib" / self.portal_web_name

    @property
    def db_module(self) -> str:
        return camelize(self.configured.db_otp_app)

    @cached_property
    def lock(self) -> dict[str, str]:
        """package -> version (or "git:<ref>") from mix.lock, as Elixir reads it (empty: no lock file, or no
        Elixir to read it)."""
        from bezgelor_tasks import elixir

        lock = self.root / "mix.lock"
        if not lock.is_file() or not elixir.available():
            return {}
        return elixir.mix_lock(lock)

    def dep_version(self, name: str) -> tuple[int, ...] | None:
        raw = self.lock.get(name)
        if raw is None:
            return None
        return tuple(int(x) for x in re.findall(r"\d+", raw.split("-")[0])[:3])

    @property
    def plug_has_exclude_keywords(self) -> bool:
        """Plug >= 1.19 takes `exclude: [hosts:, paths:]`; older Plug only a list of host strings."""
        v = self.dep_version("plug")
        return v is None or v >= (1, 19)

    def migrations(self) -> list[str]:
        """Migration versions (timestamps) under the db app's priv/repo/migrations, sorted."""
        mdir = self.app_dir(self.configured.db_otp_app) / "priv" / "repo" / "migrations"
        if not mdir.is_dir():
            return []
        return sorted(m.group(1) for p in mdir.glob("*.exs") if (m := re.match(r"(\d+)_", p.name)))
