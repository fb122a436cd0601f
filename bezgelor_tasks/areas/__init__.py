"""The areas of a checkout that bezgelor-tasks writes or checks, one entry per area, in one registry.

An area is one file (or a few files that only make sense together: the router and its health controller,
the release module and its overlay scripts). Its module holds the one description of what those files must
contain; `init` writes from it (`changes`) and `verify` checks against it (`check`). Areas that only check
(ports across files, the VM's memory) have no `changes`; areas that are written whole and need no
semantic check may have no `check` (their rendered text is diffed instead).

`init` runs the areas' `changes` in REGISTRY order; `verify` lists findings in REGISTRY order within each
severity, and asks the areas that need no Elixir first (so the Elixir judge boots meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable
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


def registry() -> tuple[Area, ...]:
    """Every area, in the order init writes and verify reports (imported on use: `inv --list` stays light)."""
    from bezgelor_tasks.areas import dockerfile, dockerignore, docs, entrypoints, fly_toml, gitignore, scripts, workflow
    from bezgelor_tasks.checkout import (
        elixir_sources,
        mixexs,
        overlays,
        prodexs,
        router,
        runtime,
    )
    from bezgelor_tasks.checks import config as config_check
    from bezgelor_tasks.checks import elixir_syntax
    from bezgelor_tasks.checks import health as health_check
    from bezgelor_tasks.checks import mixexs as mixexs_check
    from bezgelor_tasks.checks import overlays as overlays_check
    from bezgelor_tasks.checks import ports as ports_check
    from bezgelor_tasks.checks import prodexs as prodexs_check
    from bezgelor_tasks.checks import runtime as runtime_check

    def health_changes(co: Checkout) -> list[FileChange]:
        return [router.router_change(co), elixir_sources.health_controller_change(co)]

    def release_changes(co: Checkout) -> list[FileChange]:
        return [elixir_sources.release_module_change(co), *overlays.overlay_changes(co)]

    return (
        Area("elixir_syntax", check=elixir_syntax.check, asks_elixir=True),
        Area("mixexs", mixexs.mix_exs_change, mixexs_check.check, asks_elixir=True),
        Area("config", check=config_check.check, asks_elixir=True),
        Area("prodexs", prodexs.prod_exs_change, prodexs_check.check, asks_elixir=True),
        Area("runtime", runtime.runtime_exs_change, runtime_check.check, asks_elixir=True),
        Area("health", health_changes, health_check.check),
        Area("overlays", release_changes, overlays_check.check),
        Area("dockerfile", dockerfile.dockerfile_change, dockerfile.check, asks_elixir=True),
        Area("dockerignore", dockerignore.dockerignore_change, dockerignore.check, asks_elixir=True),
        Area("flytoml", fly_toml.fly_toml_change, fly_toml.check, asks_elixir=True),
        Area("ports", check=ports_check.check),
        Area("memory", check=fly_toml.memory_check),
        Area("docs", docs.docs_changes, docs.check),
        Area("scripts", check=scripts.check),
        Area("workflow", workflow.workflow_change, workflow.check),
        Area("entrypoints", entrypoints.entry_point_changes, entrypoints.check),
        Area("gitignore", gitignore.gitignore_change, gitignore.check),
    )
