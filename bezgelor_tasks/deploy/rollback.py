"""Rolling back = deploying an earlier good image again (`fly deploy --image <ImageRef>`), then health-gating it.

flyctl has no `releases rollback`; the image references come from `fly releases --image --json`.
A release is "good" when its status is `complete`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.fly.records import Release
from bezgelor_tasks.health import HealthReport, health_gate
from bezgelor_tasks.journal import Journal
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI


def good(releases: list[Release]) -> list[Release]:
    """Releases with status complete and an image, newest first."""
    found = [r for r in releases if r.status.lower() == "complete" and r.image_ref]
    return sorted(found, key=lambda r: r.version or 0, reverse=True)


def current(releases: list[Release]) -> Release | None:
    ok = good(releases)
    return ok[0] if ok else None


def choose_target(releases: list[Release], *, version: int | None = None, avoid_image: str | None = None,
                  app: str = "") -> Release:
    """The release to go back to: `version` if given (must be complete), else the newest good release
    whose image differs from `avoid_image` (default: the image running now)."""
    if version is not None:
        match = next((r for r in releases if r.version == version), None)
        if match is None:
            known = ", ".join(f"v{r.version}" for r in releases[:10]) or "none"
            raise UserError(f"{app} has no release v{version} among its 25 newest (known: {known}).",
                            fix="pick a version from `inv rollback.list`.")
        if match.status.lower() != "complete" or not match.image_ref:
            raise UserError(f"Release v{version} of {app} has status {match.status or 'unknown'}, not complete: "
                            "its image never ran healthy.",
                            fix="pick a release whose status is complete (`inv rollback.list`).")
        return match
    running = current(releases)
    avoid = avoid_image if avoid_image is not None else (running.image_ref if running else "")
    for r in good(releases):
        if r.image_ref != avoid:
            return r
    raise UserError(f"{app} has no earlier good release to roll back to (no complete release with another image).",
                    fix="fix forward: correct the problem and run `inv deploy.full` again.")


@dataclass
class RollbackResult:
    target: Release
    release_version: int | None
    health: HealthReport

    def as_json(self) -> dict[str, Any]:
        return {"to_release": self.target.version, "image_ref": self.target.image_ref,
                "release_version": self.release_version, "health": self.health.as_json()}


def public_ipv4(fly: FlyClient, app: str) -> str:
    return next((ip.address for ip in fly.ips(app) if ip.is_dedicated_v4 and ip.address), "")


def roll_back(settings: Settings, fly: FlyClient, ui: UI, journal: Journal | None, target: Release, *,
              reason: str, ipv4: str | None = None) -> RollbackResult:
    """Deploy `target`'s image, health-gate it; raise when the old image is not healthy either."""
    ui.warn(f"rolling {settings.app} back to release v{target.version} ({target.image_ref}): {reason}")
    emitted = fly.deploy_image(target.image_ref, f"rollback-v{target.version}")
    address = ipv4 if ipv4 is not None else public_ipv4(fly, settings.app)
    report = health_gate(settings, ui, address)
    result = RollbackResult(target, emitted.version if emitted else None, report)
    if journal is not None:
        journal.record("rollback", app=settings.app, to_release=target.version, image_ref=target.image_ref,
                       release_version=result.release_version, healthy=report.ok, reason=reason)
    if not report.ok:
        for line in report.lines():
            ui.line(f"  {line}")
        raise UserError(f"Rolled {settings.app} back to release v{target.version} ({target.image_ref}), but it is "
                        f"{report.summary()} either.",
                        fix=f"the problem is likely outside the image (database, secrets): read `fly logs -a "
                            f"{settings.app}` and `inv deploy.status`.")
    return result
