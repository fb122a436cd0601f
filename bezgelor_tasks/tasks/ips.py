"""`inv ips.*`: the app's public addresses; game clients need a dedicated IPv4 for raw TCP."""

from __future__ import annotations

from typing import Any

from invoke import task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(name="list", help={"root": ROOT_HELP, "json_": "Print one JSON document on stdout."})
@user_task
def list_(c: Any, root: str | None = None, json_: bool = False) -> None:
    """List the app's IP addresses."""
    from bezgelor_tasks.fly.client import FlyClient

    s = session(root, json_mode=json_)
    ips = FlyClient(s.settings, s.executor).ips(s.settings.app)
    if json_:
        s.ui.emit_json([{"address": ip.address, "type": ip.type, "region": ip.region} for ip in ips])
        return
    if not ips:
        s.ui.info(f"{s.settings.app} has no IP addresses yet: `inv ips.allocate` gives it a dedicated IPv4.")
    for ip in ips:
        s.ui.line(f"{ip.type:<12} {ip.address:<40} {ip.region}")
    if ips and not any(ip.is_dedicated_v4 for ip in ips):
        s.ui.warn("No dedicated IPv4: game clients cannot reach the raw TCP ports. Run `inv ips.allocate`.")


@task(help={"root": ROOT_HELP, "dry_run": "Show the flyctl command without running it."})
@user_task
def allocate(c: Any, root: str | None = None, dry_run: bool = False) -> None:
    """Give the app a dedicated IPv4 (idempotent: keeps an existing one)."""
    from bezgelor_tasks.fly.client import FlyClient

    s = session(root, dry_run=dry_run)
    fly = FlyClient(s.settings, s.executor)
    existing = [ip for ip in fly.ips(s.settings.app) if ip.is_dedicated_v4]
    if existing:
        s.ui.ok(f"{s.settings.app} already has the dedicated IPv4 {existing[0].address}; nothing to do.")
        return
    s.ui.info("A dedicated IPv4 is billed monthly by Fly and replaces the shared one.")
    fly.allocate_v4(s.settings.app)
    if dry_run:
        return
    address = next((ip.address for ip in fly.ips(s.settings.app) if ip.is_dedicated_v4), "")
    s.ui.ok(f"{s.settings.app} has the dedicated IPv4 {address or '(not listed yet)'}.")
    s.ui.info("Game clients connect there; set it with `inv secrets.set WORLD_PUBLIC_ADDRESS` if it changed.")
