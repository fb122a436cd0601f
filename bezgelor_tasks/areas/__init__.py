"""The areas of a checkout that bezgelor-tasks writes or checks, one entry per area, in one registry.

An area is one file (or a few files that only make sense together: the router and its health controller,
the release module and its overlay scripts). Its module holds the one description of what those files must
contain; `init` writes from it (`changes`) and `verify` checks against it (`check`). Areas that only check
(ports across files, the VM's memory) have no `changes`.

Two things every area gets from the framework (`areas/framework.py`): the files it names in `files` are
parsed once before it runs, and one that does not parse is ONE finding (the parser's file:line and message)
while the area's check is skipped; the files it names in `owns` (written whole by the tool) are verified by
rendering them and diffing, the finding being the diff, with an id.

`init` runs the areas' `changes` in REGISTRY order; `verify` lists findings in REGISTRY order within each
severity, and runs the areas that ask Elixir in a thread beside those that do not (so the judge's answers and
Python's own work overlap). A file that does not parse is one finding, whichever areas of either group read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bezgelor_tasks.checkout.discover import Checkout
    from bezgelor_tasks.checks.context import CheckContext
    from bezgelor_tasks.checks.findings import Finding
    from bezgelor_tasks.files import FileChange


@dataclass(frozen=True)
class Area:
    name: str                                                         # finding ids start with it
    changes: Callable[[Checkout], FileChange | list[FileChange]] | None = None   # what init writes
    check: Callable[[CheckContext], list[Finding]] | None = None                  # what verify finds
    asks_elixir: bool = False                                         # its check asks the Elixir judge
    # The files whose content it needs (relative paths, or a function of the checkout giving them).
    files: Callable[[Checkout], Iterable[str]] | tuple[str, ...] | None = None
    # The files the tool writes whole: verify renders them and reports each one that differs, with the diff.
    owns: Callable[[Checkout], FileChange | list[FileChange]] | None = None


def registry() -> tuple[Area, ...]:
    """Every area, in the order init writes and verify reports (imported on use: `inv --list` stays light)."""
    from bezgelor_tasks.areas import (
        config_exs,
        dockerfile,
        dockerignore,
        docs,
        entrypoints,
        fly_toml,
        gitignore,
        health,
        mix_exs,
        overlays,
        prod_exs,
        runtime_exs,
        runtime_exs_checks,
        scripts,
        workflow,
    )
    from bezgelor_tasks.areas.owned import ours_only
    from bezgelor_tasks.checks import ports as ports_check

    return (
        Area("mixexs", mix_exs.mix_exs_change, mix_exs.check, asks_elixir=True, files=mix_exs.files),
        Area("config", check=config_exs.check, asks_elixir=True, files=config_exs.files),
        Area("prodexs", prod_exs.prod_exs_change, prod_exs.check, asks_elixir=True, files=prod_exs.FILES),
        Area("runtime", runtime_exs.runtime_exs_change, runtime_exs_checks.check, asks_elixir=True,
             files=runtime_exs.FILES),
        Area("health", health.changes, health.check, asks_elixir=True, files=health.files, owns=health.owned),
        Area("overlays", overlays.changes, overlays.check, asks_elixir=True, files=overlays.files,
             owns=overlays.owned),
        Area("dockerfile", dockerfile.dockerfile_change, dockerfile.check, asks_elixir=True,
             owns=ours_only(dockerfile.dockerfile_change)),
        Area("dockerignore", dockerignore.dockerignore_change, dockerignore.check, asks_elixir=True,
             owns=ours_only(dockerignore.dockerignore_change)),
        Area("flytoml", fly_toml.fly_toml_change, fly_toml.check, asks_elixir=True, files=(fly_toml.REL,)),
        Area("ports", check=ports_check.check, asks_elixir=True),
        Area("memory", check=fly_toml.memory_check, files=(fly_toml.REL,)),
        Area("docs", docs.docs_changes, docs.check, owns=ours_only(docs.docs_changes)),
        Area("scripts", check=scripts.check),
        Area("workflow", workflow.workflow_change, owns=ours_only(workflow.workflow_change)),
        Area("entrypoints", entrypoints.entry_point_changes, owns=ours_only(entrypoints.entry_point_changes)),
        Area("gitignore", gitignore.gitignore_change, gitignore.check),
    )
