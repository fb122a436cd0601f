"""`inv build.*`: build and push the release image on Fly's remote builder, without deploying it."""

from __future__ import annotations

from typing import Any

from invoke import task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={"root": ROOT_HELP,
            "version": "Version to build (default: `git describe` of the checkout); also the image label.",
            "json_": "Print the image reference as JSON on stdout.",
            "dry_run": "Show the flyctl command without running it."})
@user_task
def image(c: Any, root: str | None = None, version: str | None = None, json_: bool = False,
          dry_run: bool = False) -> None:
    """Build and push the image (fly deploy --build-only --push), labelled with the version."""
    from bezgelor_tasks.deploy.context import image_label, read_version
    from bezgelor_tasks.fly.client import FlyClient

    s = session(root, dry_run=dry_run, json_mode=json_)
    ver = version or read_version(s.settings, s.executor)
    ref = FlyClient(s.settings, s.executor).deploy_build(ver, image_label(ver))
    if json_:
        s.ui.emit_json({"version": ver, "image_ref": ref, "dry_run": dry_run})
    elif not dry_run:
        s.ui.ok(f"built {ref}; deploy it with `inv deploy.full` or roll to it with `fly deploy --image {ref}`")
