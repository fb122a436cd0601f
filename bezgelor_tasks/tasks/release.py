"""`inv release.*` tasks (thin: flags → library calls → output)."""

from __future__ import annotations

from invoke import Context, task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task


@task(help={
    "root": ROOT_HELP,
    "dry_run": "Print the mix command instead of running it.",
    "json": "Print the result (release path, scripts found) as JSON on stdout.",
})
@user_task
def build(c: Context, root: str | None = None, dry_run: bool = False, json: bool = False) -> None:
    """Build the Elixir release locally (MIX_ENV=prod mix release) and check its bin/ scripts."""
    from bezgelor_tasks.checkout import release_build
    from bezgelor_tasks.checkout.discover import Checkout

    s = session(root, dry_run=dry_run, json_mode=json)
    co = Checkout.open(s.settings)
    built = release_build.build(co, s.executor)
    if built.dry_run:
        s.ui.info("dry run: nothing was built.")
    else:
        for script in built.scripts:
            s.ui.ok(f"{co.rel(built.path / 'bin' / script)} is there and executable")
        s.ui.ok(f"release `{built.name}` built in {co.rel(built.path)}")
    if json:
        s.ui.emit_json(built.as_json(co))
