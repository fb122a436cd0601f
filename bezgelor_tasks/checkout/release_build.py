"""Plan task 9: build the release locally and check the scripts the image will run exist."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import is_executable
from bezgelor_tasks.run import Executor


def release_command(co: Checkout) -> Command:
    name = co.settings.release_name
    return Command(("mix", "release", name, "--overwrite"), purpose=f"build the `{name}` release",
                   env={"MIX_ENV": "prod"}, cwd=co.root, mutates=True,
                   install="install Elixir (Debian: apt-get install elixir) and run again.")


def release_dir(co: Checkout) -> Path:
    return co.root / "_build" / "prod" / "rel" / co.settings.release_name


def required_scripts(co: Checkout) -> tuple[str, ...]:
    return (co.settings.release_name, "migrate", "server")


@dataclass(frozen=True)
class BuiltRelease:
    name: str
    path: Path
    scripts: tuple[str, ...]
    dry_run: bool = False

    def as_json(self, co: Checkout) -> dict[str, Any]:
        return {"release": self.name, "path": co.rel(self.path), "scripts": list(self.scripts),
                "dry_run": self.dry_run}


def check_scripts(co: Checkout) -> tuple[str, ...]:
    """The release's bin/<name>, bin/migrate, bin/server exist and are executable, or a clear error."""
    bindir = release_dir(co) / "bin"
    missing = [s for s in required_scripts(co) if not (bindir / s).is_file()]
    if missing:
        raise UserError(f"the release built, but {co.rel(bindir)} lacks {', '.join(missing)}.",
                        fix="check that mix.exs's release has `overlay: \"rel/overlays\"` and that "
                        "rel/overlays/bin/migrate and server exist (run `inv init`, then `inv verify`).")
    not_exec = [s for s in required_scripts(co) if not is_executable(bindir / s)]
    if not_exec:
        raise UserError(f"{', '.join(co.rel(bindir / s) for s in not_exec)} are not executable.",
                        fix="chmod +x rel/overlays/bin/* (and commit the mode), then build again.")
    return required_scripts(co)


def build(co: Checkout, executor: Executor) -> BuiltRelease:
    cmd = release_command(co)
    result = executor.run(cmd, check=False)
    if result.dry_run:
        return BuiltRelease(co.settings.release_name, release_dir(co), (), dry_run=True)
    if not result.ok:
        output = (result.stdout + result.stderr).strip().splitlines()
        for line in output[-40:]:
            executor.ui.line(f"  {line}")
        raise executor.failure(result, fix="read the mix error above; `inv verify` names most causes "
                               "(missing release, overlay or app).")
    return BuiltRelease(co.settings.release_name, release_dir(co), check_scripts(co))
