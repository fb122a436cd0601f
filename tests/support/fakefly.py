"""Fixture `fake_fly`: the fake flyctl (tests/fakes) first on PATH, with helpers for its state and call log.

The fake is the only stand-in in the suite. Tests drive it through its state (apps, images and
their behaviour, faults) and read what our code asked of it through its call log.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.flyctl_fake.commands.common import digest_of, new_app, new_machine
from tests.fakes.flyctl_fake.store import Home

FAKES_DIR = Path(__file__).resolve().parent.parent / "fakes"
BIN_DIR = FAKES_DIR / "bin"
BEHAVIORS = ("healthy", "degraded", "503", "html", "timeout", "down")
MODES = ("fail_once", "fail_always", "hang", "garbage", "slow", "drop")


class FakeFly:
    """Handle on one fake Fly.io account (a FAKE_FLY_HOME directory)."""

    def __init__(self, home: Path) -> None:
        self.home_dir = home
        self.home = Home(str(home))
        self.bin_dir = BIN_DIR

    # state -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return self.home.read()

    def update(self, fn: Callable[[dict[str, Any]], Any]) -> Any:
        """Run fn(state) under the fake's lock and save what it changed; returns fn's result."""
        with self.home.transaction() as state:
            return fn(state)

    def env(self) -> dict[str, str]:
        """The environment variables that point a subprocess at this fake (already set in os.environ)."""
        return {"PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                "FAKE_FLY_HOME": str(self.home_dir), "FAKE_FLY_IPV4": "127.0.0.1", "FLY_NO_UPDATE_CHECK": "1"}

    # calls -------------------------------------------------------------------
    def calls(self, cmd: str | None = None) -> list[dict[str, Any]]:
        """Recorded invocations {argv, env_names, stdin_len, exit, cwd, cmd, t} (+ invalid, faults, hung)."""
        return [c for c in self.home.calls() if cmd is None or c["cmd"] == cmd]

    def argvs(self, cmd: str | None = None) -> list[list[str]]:
        return [c["argv"] for c in self.calls(cmd)]

    # faults ------------------------------------------------------------------
    def fault(self, cmd: str, mode: str, error: str | None = None, latency: float | None = None,
              match: str | list[str] | None = None, times: int | None = None,
              after_bytes: int | None = None) -> None:
        """Make `cmd` (a command path like "postgres create", or "release_command", or "proxy") misbehave.

        fail_once/fail_always: `Error: <error or flyctl's usual text>` exit 1; hang: never returns;
        garbage: truncated output (or `error` as the output), exit 0; slow: `latency` seconds then
        normal; drop (proxy): cut each connection after `after_bytes` bytes server->client.
        `match`: substring of the joined argv, or list of words that must all be in argv."""
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; one of {MODES}")
        if mode == "fail_once" and times is None:
            times = 1
        fault = {"cmd": cmd, "mode": mode, "error": error, "latency": latency, "match": match,
                 "times": times, "after_bytes": after_bytes, "fired": 0}
        self.update(lambda s: s["faults"].append(fault))

    def release_slow(self) -> None:
        """Every `slow` command running now, and any later one, finishes at once (the story has seen what it
        waited for: no test waits out a fixed latency)."""
        self.update(lambda s: s.__setitem__("slow_released", True))

    def clear_faults(self) -> None:
        self.update(lambda s: s.__setitem__("faults", []))

    def tripwire(self, on: bool = True) -> None:
        """While on, every flyctl call that would change the account fails (exit 1) and is recorded with
        `tripwire: true` (the classification: tests/fakes/flyctl_fake/tripwire.py). Reads run as usual."""
        self.update(lambda s: s.__setitem__("tripwire", on))

    def tripped(self) -> list[dict[str, Any]]:
        """The calls the tripwire stopped."""
        return [c for c in self.calls() if c.get("tripwire")]

    # auth --------------------------------------------------------------------
    def logout(self) -> None:
        self.update(lambda s: s["auth"].__setitem__("logged_in", False))

    def login(self, email: str | None = None) -> None:
        def go(s: dict[str, Any]) -> None:
            s["auth"]["logged_in"] = True
            if email:
                s["auth"]["email"] = email
        self.update(go)

    def set_flyctl_version(self, version: str) -> None:
        self.update(lambda s: s["flyctl"].__setitem__("version", version))

    # apps --------------------------------------------------------------------
    def add_app(self, name: str, org: str = "personal", kind: str = "app") -> dict[str, Any]:
        return self.update(lambda s: new_app(s, name, org, kind))  # type: ignore[no-any-return]

    def add_pg_app(self, name: str, org: str = "personal", memory_mb: int = 256,
                   proxy_target: str | None = None) -> dict[str, Any]:
        def go(s: dict[str, Any]) -> dict[str, Any]:
            app = new_app(s, name, org, "postgres")
            app.update(status="deployed", proxy_target=proxy_target)
            app["vm"]["memory_mb"] = memory_mb
            app["pg"] = {"region": "iad", "cluster_size": 1, "volume_size_gb": 10, "backups_enabled": False,
                         "backup_fails": False, "backups": []}
            return app
        return self.update(go)  # type: ignore[no-any-return]

    def take_name(self, name: str) -> None:
        """The app name belongs to another Fly user: creating it fails with 'already been taken'."""
        self.update(lambda s: s["taken_names"].append(name))

    def app(self, name: str) -> dict[str, Any]:
        return self.state()["apps"][name]  # type: ignore[no-any-return]

    def set_pg_proxy_target(self, pgapp: str, host: str, port: int) -> None:
        self.update(lambda s: s["apps"][pgapp].__setitem__("proxy_target", f"{host}:{port}"))

    def set_machine_env(self, app: str, **values: str) -> None:
        """What the app's running machines see in their environment (e.g. DATABASE_URL pointing at
        the test's real PostgreSQL): `fly ssh console -C 'printenv NAME'` prints it."""
        self.update(lambda s: s["apps"][app].setdefault("machine_env", {}).update(values))

    def start_machine(self, app_name: str, image: str) -> None:
        """The app's machines run `image` (a started machine is added when it has none)."""
        def go(s: dict[str, Any]) -> None:
            app = s["apps"][app_name]
            if not app["machines"]:
                new_machine(app, "iad")
            for m in app["machines"]:
                m["image"] = image
        self.update(go)

    def set_pg_image(self, pgapp: str, image: str) -> None:
        """The image the Postgres app's machines run: its tag is the major Fly reports."""
        self.start_machine(pgapp, image)

    def set_mpg_backend(self, host: str, port: int, user: str, password: str, dbname: str) -> None:
        """The real PostgreSQL database the next `fly mpg create` cluster is (its credentials too)."""
        backend = {"proxy_target": f"{host}:{port}", "user": user, "password": password, "dbname": dbname}
        self.update(lambda s: s.__setitem__("mpg_backend", backend))

    def mpg_clusters(self) -> list[dict[str, Any]]:
        return list(self.state().get("mpg", {}).get("clusters", {}).values())

    # images and releases -----------------------------------------------------
    def set_image_behavior(self, ref_or_label: str, behavior: str) -> None:
        """How machines on this image behave (healthy|degraded|503|html|timeout|down). Applies to an
        image already built and to any later build with that ref or --image-label."""
        if behavior not in BEHAVIORS:
            raise ValueError(f"unknown behavior {behavior!r}; one of {BEHAVIORS}")

        def go(s: dict[str, Any]) -> None:
            s.setdefault("image_behaviors", {})[ref_or_label] = behavior
            for image in s["images"].values():
                if ref_or_label in (image["ref"], image["label"]):
                    image["behavior"] = behavior
        self.update(go)

    def set_default_image_behavior(self, behavior: str) -> None:
        """The behaviour of every later build without a behaviour of its own."""
        self.update(lambda s: s.__setitem__("default_image_behavior", behavior))

    def images(self) -> dict[str, dict[str, Any]]:
        return self.state()["images"]  # type: ignore[no-any-return]

    def releases(self, app: str | None = None) -> list[dict[str, Any]]:
        state = self.state()
        return list(state["apps"][app or self._main_app(state)]["releases"])

    def _main_app(self, state: dict[str, Any]) -> str:
        apps = [a for a in state["apps"].values() if a["kind"] == "app" and a["releases"]] or \
               [a for a in state["apps"].values() if a["kind"] == "app"]
        if len(apps) != 1:
            raise LookupError(f"name the app: the fake has {len(apps)} candidate apps")
        return str(apps[0]["name"])

    def live_release(self, app: str | None = None) -> dict[str, Any] | None:
        """The release the machines serve (with its image's "behavior"), or None before any deploy."""
        state = self.state()
        record = state["apps"][app or self._main_app(state)]
        release = next((r for r in record["releases"] if r["version"] == record.get("current_release")), None)
        if release is None:
            return None
        image = state["images"].get(release["image_ref"], {})
        return {**release, "behavior": image.get("behavior", "healthy"), "image": image}

    def live_behavior(self, app: str | None = None) -> str:
        """What the servers fixture should play: the live image's behaviour ("down" before any deploy)."""
        release = self.live_release(app)
        return str(release["behavior"]) if release else "down"

    # secrets and database ------------------------------------------------------
    def secret_digest(self, app: str, name: str) -> str | None:
        secret = self.state()["apps"][app]["secrets"].get(name)
        return secret["digest"] if secret else None

    def secret_status(self, app: str, name: str) -> str | None:
        secret = self.state()["apps"][app]["secrets"].get(name)
        return secret["status"] if secret else None

    @staticmethod
    def digest_of(value: str) -> str:
        """The fake's digest of a secret value, to compare with secret_digest()."""
        return digest_of(value.encode())

    def applied_migrations(self, app: str) -> list[int]:
        return [m["version"] for m in self.state()["apps"][app]["database"]["applied"]]


@pytest.fixture
def fake_fly(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> FakeFly:
    """The fake flyctl first on PATH (as `fly` and `flyctl`), logged in, with an empty account."""
    home = tmp_path_factory.mktemp("fakefly")
    fake = FakeFly(home)
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    return fake
