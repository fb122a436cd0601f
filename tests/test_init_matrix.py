"""The matrix of issue 15: every checkout shape our users have × both Postgres flavors × default settings and
custom ports with a custom release name: `init --yes` → `verify --strict` passes → `init --check` has nothing
to change → every flyctl line in every file init wrote is valid flyctl (flyctl's grammar and our rules, so
`--ha=false` on each deploy), and the database commands are the flavor's.

Lean on purpose: each shape is built once per session (tests/support/shapes.py) and its four cells run once
(a module fixture the tests below read), in this process, through the same library calls the tasks make (one
Elixir judge answers them all); each cell works on a copy made of hard links (init never writes into a file: it
writes a new one and renames it into place, so the shape itself is never changed).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bezgelor_tasks import elixir, settings_load
from bezgelor_tasks.checkout import plan
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks import verify
from bezgelor_tasks.fly import grammar
from bezgelor_tasks.fly.command_lines import fly_lines, judge
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI

pytestmark = [pytest.mark.elixir,
              pytest.mark.skipif(not elixir.available(), reason="the matrix needs a real Elixir (apt-get install "
                                 "elixir): init refuses to write Elixir it cannot check")]

SHAPES = ("real", "fly_launch", "phx_new", "maintainers")
CUSTOM = {"BEZGELOR_PORTAL_PORT": "4100", "BEZGELOR_AUTH_PORT": "6700", "BEZGELOR_REALM_PORT": "23200",
          "BEZGELOR_WORLD_PORT": "24100", "BEZGELOR_RELEASE_NAME": "bzg"}
CELLS = {(flavor, variant): {"BEZGELOR_PG_FLAVOR": flavor, **(CUSTOM if variant == "custom" else {})}
         for flavor in ("flex", "mpg") for variant in ("default", "custom")}
# What the file areas own (fly.toml as data, docs from the builders): reported apart.
FLY_SIDE = ("fly.toml", "docs/fly-deployment.md", "docs/fly-backup-strategy.md", "docs/fly-rollback.md")
KINDS = {".md": "markdown", ".yml": "workflow", ".sh": "shell"}


def _copy(src: str, dst: str) -> None:
    os.link(src, dst)


def _open(root: Path, environ: dict[str, str]) -> Checkout:
    return Checkout.open(settings_load.load_checked(root, environ))


@dataclass
class Cell:
    problems: list[str] = field(default_factory=list)     # (file, what) that init --yes / verify --strict /
                                                          # init --check got wrong
    flyctl: list[str] = field(default_factory=list)       # flyctl lines init wrote that flyctl or our rules refuse
    database: set[str] = field(default_factory=set)       # `fly postgres` / `fly mpg` in the files init wrote

    def about(self, files: tuple[str, ...], *, but: bool = False) -> list[str]:
        return [p for p in self.problems if (p.split(" ", 1)[0] in files) != but]


def run_cell(shape: Path, root: Path, environ: dict[str, str]) -> Cell:
    """init --yes, verify --strict, init --check on a copy of `shape`: what went wrong, by file."""
    shutil.copytree(shape, root, symlinks=True, copy_function=_copy)
    ui = UI(json_mode=True)
    applied = plan.run_init(_open(root, environ), ui, Executor(ui=ui), yes=True)
    cell = Cell([f"- init wrote nothing: {[c.rel for c in applied.changes]}"] if not applied.written else [])
    report = verify(_open(root, environ))
    cell.problems += [f"{f.file} verify --strict: {f.severity} {f.where()} {f.message}" for f in report.findings
                      if f.severity in ("error", "warning")]
    cell.problems += [f"- verify --strict: skipped {s}" for s in report.skipped]
    again = plan.run_init(_open(root, environ), ui, Executor(ui=ui), check=True)
    cell.problems += [f"{c.rel} init --check would change it" for c in again.pending]
    written = [(c.rel, line.argv) for c in applied.changes if c.rel[c.rel.rfind("."):] in KINDS
               for line in fly_lines(c.new, KINDS[c.rel[c.rel.rfind("."):]])]
    if len(written) < 30:
        cell.flyctl.append(f"only {len(written)} flyctl lines in the files init wrote")
    for rel, argv in written:
        ok, why = grammar.accepts(argv)
        cell.flyctl += [f"{rel}: {' '.join(argv)}: {why}"] if not ok else []
        cell.flyctl += [f"{rel}: {' '.join(argv)}: {p.what}" for p in judge(argv)]
    cell.database = {argv[1] for _, argv in written if argv[1] in ("postgres", "mpg")}
    return cell


@pytest.fixture(scope="module", params=SHAPES)
def cells(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Cell]:
    shape: str = request.param
    built: Path = request.getfixturevalue(f"{shape}_shape")
    out = {}
    for (flavor, variant), environ in CELLS.items():
        root = tmp_path_factory.mktemp(f"{shape}-{flavor}-{variant}") / built.name
        out[f"{shape}/{flavor}/{variant}"] = cell = run_cell(built, root, environ)
        if variant == "custom":
            release = _open(root, environ).settings.release_name
            expected = "bezgelor_portal" if shape in ("fly_launch", "maintainers") else "bzg"
            if release != expected or f"mix release {release}" not in (root / "Dockerfile").read_text():
                cell.problems.append(f"mix.exs the release is {release}, not {expected} (or the Dockerfile builds "
                                     "another)")
        shutil.rmtree(root.parent)
    return out


def _listed(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{cell}: {p}" for cell, problems in found.items() for p in problems)


def test_init_then_strict_verify_then_nothing_to_change_on_the_elixir_side(cells: dict[str, Cell]) -> None:
    found = {name: c.about(FLY_SIDE, but=True) for name, c in cells.items() if c.about(FLY_SIDE, but=True)}
    assert found == {}, _listed(found)


def test_init_then_strict_verify_then_nothing_to_change_on_the_fly_side(cells: dict[str, Cell]) -> None:
    found = {name: c.about(FLY_SIDE) for name, c in cells.items() if c.about(FLY_SIDE)}
    assert found == {}, _listed(found)


def test_every_flyctl_line_init_wrote_is_valid_flyctl_with_one_machine_and_the_flavors_database(
        cells: dict[str, Cell]) -> None:
    found = {name: c.flyctl for name, c in cells.items() if c.flyctl}
    assert found == {}, _listed(found)
    flavors = {name: c.database for name, c in cells.items()
               if c.database != {"postgres" if "/flex/" in name else "mpg"}}
    assert flavors == {}
