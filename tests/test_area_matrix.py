"""The matrix of issue 15 for the file areas: {the real repository, the `fly launch` shape, the `phx.new --umbrella`
shape, the maintainers' own Fly setup} × {flex, mpg} × {default settings, custom ports}.

For each shape, one checkout goes through two setting sets one after the other (as a user who changes their
mind would): `init --yes` → `verify --strict` is clean → `init --check` has nothing to change → every flyctl line
in every file init wrote is valid flyctl, with `--ha=false` on each deploy. The two sets differ by shape, so
every flavor meets both kinds of settings and every shape both flavors. Runs in-process (one Elixir judge for
all of it); the CLI is covered by test_real_checkouts.py.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from bezgelor_tasks import elixir, settings
from bezgelor_tasks.checkout import plan
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks import Report, verify
from bezgelor_tasks.fly import grammar
from bezgelor_tasks.fly.command_lines import fly_lines, judge
from bezgelor_tasks.ui import UI
from tests.support.shapes import copy_shape

pytestmark = [pytest.mark.elixir, pytest.mark.skipif(not elixir.available(), reason="init needs a real Elixir")]

DEFAULT: dict[str, str] = {}
CUSTOM = {"BEZGELOR_PORTAL_PORT": "4100", "BEZGELOR_AUTH_PORT": "6700", "BEZGELOR_REALM_PORT": "23200",
          "BEZGELOR_WORLD_PORT": "24100"}
# shape -> the two setting sets it goes through, in order
RUNS = {
    "real": [("flex", DEFAULT), ("mpg", CUSTOM)],
    "fly_launch": [("mpg", DEFAULT), ("flex", CUSTOM)],
    "phx_new": [("flex", CUSTOM), ("mpg", DEFAULT)],
    "maintainers": [("mpg", CUSTOM), ("flex", DEFAULT)],
}
KINDS = {".md": "markdown", ".yml": "workflow", ".yaml": "workflow", ".sh": "shell"}


@dataclass
class Step:
    flavor: str
    custom: bool
    init: plan.InitResult
    report: Report
    check: plan.InitResult
    fly_argvs: list[tuple[str, tuple[str, ...]]]     # (file, argv) of every flyctl line in the files init wrote


def _open(root: Path, environ: dict[str, str]) -> Checkout:
    return Checkout.open(settings.load_checked(root=root, environ=environ))


def _step(root: Path, flavor: str, environ: dict[str, str]) -> Step:
    env = {"BEZGELOR_PG_FLAVOR": flavor, **environ}
    ui = UI(color=False, stream=io.StringIO())
    init = plan.run_init(_open(root, env), ui, yes=True)
    report = verify(_open(root, env))
    check = plan.run_init(_open(root, env), ui, check=True)
    argvs = [(c.rel, line.argv) for c in init.changes if Path(c.rel).suffix in KINDS
             for line in fly_lines(c.new, KINDS[Path(c.rel).suffix])]
    return Step(flavor, bool(environ), init, report, check, argvs)


@pytest.fixture(scope="session", params=sorted(RUNS))
def steps(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Step]:
    shape = request.param
    root = copy_shape(request.getfixturevalue(f"{shape}_shape"), tmp_path_factory.mktemp(f"matrix-{shape}") / "b")
    return [_step(root, flavor, environ) for flavor, environ in RUNS[shape]]


def test_init_then_verify_strict_is_clean_for_every_flavor_and_setting(steps: list[Step]) -> None:
    for step in steps:
        problems = [str(f) for f in step.report.findings if f.severity in ("error", "warning")]
        assert problems == [] and step.report.skipped == [], (step.flavor, step.custom, problems)


def test_init_check_then_has_nothing_to_change(steps: list[Step]) -> None:
    for step in steps:
        assert [c.rel for c in step.check.pending] == [], (step.flavor, step.custom)


def test_every_flyctl_line_init_wrote_is_valid_flyctl_with_one_machine(steps: list[Step]) -> None:
    for step in steps:
        assert len(step.fly_argvs) > 30
        for rel, argv in step.fly_argvs:
            ok, why = grammar.accepts(argv)
            assert ok, (rel, argv, why)
            assert judge(argv) == [], (rel, argv)
        deploys = [argv for _, argv in step.fly_argvs if argv[1] == "deploy"]
        assert deploys and all("--ha=false" in argv for argv in deploys)
        database = {argv[1] for _, argv in step.fly_argvs if argv[1] in ("postgres", "mpg")}
        assert database == {"postgres" if step.flavor == "flex" else "mpg"}


def test_the_second_setting_set_moved_every_file_that_depends_on_it(steps: list[Step]) -> None:
    first, second = steps
    moved = {c.rel for c in second.init.written}
    assert {"fly.toml", "docs/fly-deployment.md", ".github/workflows/bezgelor-fly.yml"} <= moved
    if first.custom != second.custom:
        assert "Dockerfile" in moved          # EXPOSE follows the ports
