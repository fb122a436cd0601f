"""flyctl commands people run by hand or through the operator's tasks (docs/fly-*.md show them): log in, open a
remote console (`inv console`), stop or restart everything in an emergency, list volume snapshots, make a
deploy token (CI's, the watcher's). Pure builders
like fly/commands.py, with its defaults."""

from __future__ import annotations

from bezgelor_tasks.command import Command
from bezgelor_tasks.fly.commands import build
from bezgelor_tasks.settings import Settings


def auth_login(settings: Settings) -> Command:
    """Interactive (a browser): for people, never run by a task."""
    return build(settings, "auth", "login", purpose="log in to Fly", retries=0)


def scale_count(settings: Settings, count: int, app: str | None = None) -> Command:
    """`fly scale count N`: 0 stops the game and the portal (everyone is disconnected), 1 brings the world back."""
    target = app or settings.app
    return build(settings, "scale", "count", str(int(count)), "-a", target, "--yes",
                purpose=f"run {int(count)} machine(s) of {target}")


def apps_restart(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "apps", "restart", target, purpose=f"restart every machine of {target}")


def remote_console(settings: Settings, app: str | None = None) -> Command:
    """IEx on the running release (`bin/<release> remote`), on a terminal (`--pty`): `inv console` runs it
    with the user's terminal (interactive: nothing captured)."""
    from bezgelor_tasks.release_image import bin_path

    target = app or settings.app
    return build(settings, "ssh", "console", "--pty", "-a", target, "-C", f"{bin_path(settings.release_name)} remote",
                purpose=f"open a remote IEx console on {target}", retries=0, interactive=True)


def volume_snapshots(settings: Settings, volume_id: str) -> Command:
    return build(settings, "volumes", "snapshots", "list", volume_id, purpose=f"list the snapshots of {volume_id}",
                mutates=False)


def deploy_token(settings: Settings, app: str | None = None, *, name: str | None = None,
                 expiry: str | None = None, json: bool = False) -> Command:
    """A token limited to this one app (deploy, machines, secrets, logs, ssh of that app only): CI's
    FLY_API_TOKEN, or the watcher's. Its output is the token: a secret."""
    target = app or settings.app
    extra = [*(("--name", name) if name else ()), *(("--expiry", expiry) if expiry else ()),
             *(("--json",) if json else ())]
    return build(settings, "tokens", "create", "deploy", "-a", target, *extra,
                 purpose=f"make a deploy token for {target}")
