"""The watcher on Fly: its own small always-on app (`<app>-watch`) running `bezgelor-tasks watch` — the
same code path as `inv watch` in a terminal.

`inv watch.deploy` renders a build context into a temporary folder — the Dockerfile
(templates/watch/Dockerfile: Python slim, flyctl, postgresql-client-<BEZGELOR_PG_MAJOR> for the scheduled
backups, and this tool copied from the very code that runs the deploy, so the watcher runs exactly that
version), the app's fly.toml (no services: nothing public, nothing auto-stopped; one shared-cpu-1x machine
with BEZGELOR_WATCH_MEMORY_MB; restart policy `always`) — then: create the app if missing, create a deploy
token scoped to the game app (`fly tokens create deploy -a <app>`), import it with the secret settings
(alert URLs, heartbeat) through stdin as the watcher's secrets, and `fly deploy` it.

Not written into the checkout by `inv init`: nothing in it comes from the checkout, it pins this tool's exact
version (a committed copy would be stale after every upgrade of bezgelor-tasks), and rendering it on each
deploy keeps the image and the tool that deployed it the same.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import tomlkit

from bezgelor_tasks import __version__
from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands, operator_commands, secret_commands
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.render import render
from bezgelor_tasks.settings import FIELDS, Settings

FLYCTL_VERSION = "0.4.87"      # the flyctl whose grammar this tool speaks (tests/fakes/grammar)
PYTHON_IMAGE = "python:3.12-slim-bookworm"
DEBIAN = "bookworm"
ROOT = "/srv/watch"
TOKEN_NAME = "bezgelor-tasks watcher"
TOKEN_EXPIRY = "8760h"         # a year; `inv watch.deploy` again makes a new one
# Settings that describe this computer, not the game: never sent to the watcher's machine.
LOCAL_ONLY = frozenset({"root", "flyctl", "pg_bindir", "backup_dir"})
TOKEN_CAN = ("the token is scoped to {app} alone: deploy it, read and set its secrets, list, restart, stop and "
             "start its machines, read its status and logs, open `fly ssh console` on it; it cannot see or change "
             "any other app (not {db}, not {watch}), the organization or billing")
UNSET = "<not read>"


def watcher_env(settings: Settings) -> dict[str, str]:
    """The watcher's [env]: every non-secret setting that differs from its default (and the game app's name)."""
    env = {"BEZGELOR_FLY_APP": settings.app}
    for f in FIELDS:
        if f.name in LOCAL_ONLY or f.metadata.get("secret"):
            continue
        value = getattr(settings, f.name)
        if value != f.default:
            env[f.metadata["env"]] = ",".join(value) if isinstance(value, tuple) else str(value)
    return env


def watcher_secrets(settings: Settings, token: str) -> dict[str, str]:
    """FLY_API_TOKEN and the secret settings that are set (alert URLs, the heartbeat)."""
    values = {"FLY_API_TOKEN": token}
    for f in fields(settings):
        if f.metadata.get("secret") and getattr(settings, f.name):
            values[f.metadata["env"]] = str(getattr(settings, f.name))
    return values


def dockerfile(settings: Settings) -> str:
    return render("watch/Dockerfile", app=settings.app, version=__version__, flyctl_version=FLYCTL_VERSION,
                  flyctl_image=f"flyio/flyctl:v{FLYCTL_VERSION}", python_image=PYTHON_IMAGE, debian=DEBIAN,
                  pg_major=settings.pg_major, root=ROOT)


def fly_toml(settings: Settings) -> str:
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"The watcher of {settings.app}, written by bezgelor-tasks {__version__} "
                            "(inv watch.deploy). No services: nothing public, never auto-stopped."))
    doc["app"] = settings.watcher_app
    doc["primary_region"] = settings.region
    doc["kill_signal"] = "SIGTERM"   # the watcher frees what it holds (the lock) on SIGTERM, like Ctrl-C
    doc["kill_timeout"] = 30
    doc["build"] = {"dockerfile": "Dockerfile"}
    doc["env"] = watcher_env(settings)
    vm = tomlkit.aot()
    vm.append(tomlkit.table().add("size", "shared-cpu-1x").add("memory", f"{settings.watch_memory_mb}mb"))
    doc["vm"] = vm
    restart = tomlkit.aot()
    restart.append(tomlkit.table().add("policy", "always"))
    doc["restart"] = restart
    return tomlkit.dumps(doc)


def requirements() -> list[str]:
    """This tool's runtime requirements, from its installed metadata (extras left out)."""
    try:
        found = importlib.metadata.requires("bezgelor-tasks") or []
    except importlib.metadata.PackageNotFoundError:
        raise UserError("bezgelor-tasks is not installed as a package, so its requirements are unknown.",
                        fix="install it (`pip install -e .` in its folder) and run watch.deploy again") from None
    return [r for r in found if "extra ==" not in r]


def pinned_closure() -> list[str]:
    """`name==version` of every distribution this tool runs on here (its requirements and theirs, as
    installed: with `.ci/bootstrap`, exactly uv.lock's), so the watcher's image installs the same versions
    rather than the newest of each."""
    import re

    seen: dict[str, str] = {}
    todo = ["bezgelor-tasks"]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python, not installed here
        seen[key] = dist.version
        for req in dist.requires or []:
            if "extra ==" not in req and (m := re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req)):
                todo.append(m.group(0))
    seen.pop("bezgelor-tasks", None)
    return [f"{name}=={version}" for name, version in sorted(seen.items())]


def write_context(settings: Settings, directory: Path) -> Path:
    """The build context: Dockerfile, fly.toml and bezgelor-tasks/ (this package and a pyproject)."""
    package = Path(__file__).resolve().parents[1]
    (directory / "Dockerfile").write_text(dockerfile(settings), encoding="utf-8")
    (directory / "fly.toml").write_text(fly_toml(settings), encoding="utf-8")
    source = directory / "bezgelor-tasks"
    shutil.copytree(package, source / "bezgelor_tasks", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (source / "pyproject.toml").write_text(render("watch/pyproject.toml.tmpl", version=__version__,
                                                  requirements=requirements()), encoding="utf-8")
    (source / "constraints.txt").write_text("\n".join(pinned_closure()) + "\n", encoding="utf-8")
    return directory


@contextmanager
def build_context(settings: Settings, *, dry_run: bool) -> Iterator[Path]:
    """A temporary build context, removed afterwards; under --dry-run a name only (nothing is written)."""
    if dry_run:
        yield Path(f"<build context: Dockerfile, fly.toml, bezgelor-tasks {__version__}>")
        return
    with tempfile.TemporaryDirectory(prefix="bezgelor-watch-") as tmp:
        yield write_context(settings, Path(tmp))


def monthly_cost(settings: Settings) -> tuple[Decimal, str]:
    from bezgelor_tasks.costs import cents, load_prices

    prices = load_prices()
    return cents(prices.machine("shared", 1, settings.watch_memory_mb)), prices.as_of


def plan(settings: Settings, context: Path, *, exists: bool) -> list[Command]:
    cmds = [] if exists else [commands.apps_create(settings, settings.watcher_app)]
    names = {n: "***" for n in watcher_secrets(settings, "***")}
    if settings.offsite_url:
        from bezgelor_tasks.backup.scheduled import watcher_requirements

        names.update({r.name: "***" for r in watcher_requirements(settings) if r.secret})
    return [*cmds, operator_commands.deploy_token(settings, name=TOKEN_NAME, expiry=TOKEN_EXPIRY, json=True),
            secret_commands.secrets_import(settings, names, stage=True, app=settings.watcher_app),
            commands.deploy_app_from(settings, settings.watcher_app, str(context), str(context / "fly.toml"))]


def create_token(fly: FlyClient, settings: Settings) -> str:
    """A deploy token scoped to the game app; registered as secret before anything can show it."""
    result = fly.run(operator_commands.deploy_token(settings, name=TOKEN_NAME, expiry=TOKEN_EXPIRY, json=True))
    if result.dry_run:
        return UNSET
    try:
        token = str(json.loads(result.stdout)["token"]).strip()
    except (ValueError, KeyError, TypeError):
        raise UserError("`fly tokens create deploy` did not print the JSON with a token this tool expects.",
                        fix="update flyctl (`fly version update`) and run watch.deploy again") from None
    from bezgelor_tasks import redact

    redact.register(token, *token.split(","))
    return token


def deploy(settings: Settings, fly: FlyClient, *, exists: bool) -> dict[str, Any]:
    """Create the app when missing, its token and secrets, then build and deploy it."""
    with build_context(settings, dry_run=fly.dry_run) as context:
        if not exists:
            fly.create_app(settings.watcher_app)
        token = create_token(fly, settings)
        values = watcher_secrets(settings, token)
        if settings.offsite_url:  # the scheduled off-site backup and drill run on the watcher
            from bezgelor_tasks.backup.scheduled import watcher_secret_values

            values.update(watcher_secret_values(settings, fly.executor))
        if fly.dry_run:
            fly.run(secret_commands.secrets_import(settings, dict.fromkeys(values, "***"), stage=True,
                                                   app=settings.watcher_app))
        else:
            fly.import_secrets(settings.watcher_app, values, stage=True)
        fly.run(commands.deploy_app_from(settings, settings.watcher_app, str(context), str(context / "fly.toml")),
                app=settings.watcher_app)
    return {"app": settings.watcher_app, "secrets": sorted(values), "env": watcher_env(settings)}
