"""Story: Bezgelor's maintainers set up Fly themselves, then run bezgelor-tasks on their checkout.

Their setup works (tests/support/shape_maintainers.py): a release named `bezgelor_portal` with its own
templates path and overlays, their own `BezgelorPortal.Release.migrate` that also seeds the realm, Elixir
1.19 in their Dockerfile, `socket_options: [:inet6]` in runtime.exs, region lax. verify before init must
report no error their checkout contradicts; `init --yes` must keep what works (release name, overlays,
seeding migrate, region) and add only what is missing (keepalive merged into their socket options, heart in
their env.sh.eex); verify after is clean; a second init changes nothing. The shape is built once and
initialised once; the assertions read that one run.

The fly.toml parts (the file areas): `[http_service]` is their portal's service, kept in its form and given its
health check; `primary_region` lax is kept (and is the region the docs and the deploy use).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from bezgelor_tasks import elixir, files
from tests.support import shape_maintainers as theirs
from tests.support.deployrun import inv
from tests.support.fakefly import FakeFly
from tests.support.inv import run_inv
from tests.support.shapes import copy_shape

pytestmark = [pytest.mark.elixir,
              pytest.mark.skipif(not elixir.available(), reason="the story needs a real Elixir (apt-get install "
                                 "elixir): verify asks it about every Elixir file")]

OVERLAYS = f"{theirs.TEMPLATES}/overlays/bin"
THEIR_FILES = (f"{OVERLAYS}/migrate", f"{OVERLAYS}/server", "apps/bezgelor_portal/lib/bezgelor_portal/release.ex")


@dataclass
class Story:
    root: Path
    before: dict[str, Any]                     # verify --json before init
    theirs: dict[str, tuple[str, int]]         # their scripts and release module: text and mode, before init
    init: subprocess.CompletedProcess[str]
    after: dict[str, Any]                      # verify --json after init
    second: subprocess.CompletedProcess[str]

    def text(self, rel: str) -> str:
        return (self.root / rel).read_text()


def _verify(root: Path) -> dict[str, Any]:
    proc = run_inv("verify", "--root", str(root), "--json", cwd=root.parent, timeout=300)
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@pytest.fixture(scope="module")
def story(maintainers_shape: Path, tmp_path_factory: pytest.TempPathFactory) -> Story:
    root = copy_shape(maintainers_shape, tmp_path_factory.mktemp("maintainers-story") / "bezgelor")
    with pytest.MonkeyPatch.context() as env:
        for key in [k for k in os.environ if k.startswith(("BEZGELOR_", "FLY_"))]:
            env.delenv(key)
        before = _verify(root)
        kept = {rel: ((root / rel).read_text(), (root / rel).stat().st_mode) for rel in THEIR_FILES}
        init = run_inv("init", "--root", str(root), "--yes", cwd=root.parent, timeout=300)
        after = _verify(root)
        second = run_inv("init", "--root", str(root), "--yes", cwd=root.parent, timeout=300)
    return Story(root, before, kept, init, after, second)


def _errors(report: dict[str, Any]) -> list[str]:
    return [f"{f['file']}:{f['line']} {f['message']}" for f in report["findings"] if f["severity"] == "error"]


def test_verify_before_init_reports_no_error_their_checkout_contradicts(story: Story) -> None:
    errors = "\n".join(_errors(story.before))
    assert "defines no" not in errors, errors     # their release is named bezgelor_portal, not bezgelor
    assert "BezgelorDb.Release" not in errors and "bin/migrate" not in errors and "bin/server" not in errors
    assert "alias" not in errors                 # their image builds with Elixir 1.19: the portal's alias runs
    assert "dev-only" not in errors              # `COPY apps apps`: bezgelor_dev is compiled, never released
    assert "heart" not in errors                 # a warning at most
    (status,) = [f for f in story.before["findings"] if f["id"] == "overlays.status-module"]
    assert status["severity"] == "warning" and "db.status" in status["message"]   # needed by the db tasks only
    # what is really missing is still reported
    assert "outside `force_ssl`" in errors and "no route for /health" in errors


def test_verify_before_init_sees_the_portal_under_http_service(story: Story) -> None:
    assert not any("internal_port 4000" in e for e in _errors(story.before))


def test_init_keeps_their_release_name_templates_path_and_steps_and_adds_no_overlays(story: Story) -> None:
    assert story.init.returncode == 0, story.init.stdout + story.init.stderr
    mix = story.text("mix.exs")
    assert "bezgelor_portal: [" in mix and f'rel_templates_path: "{theirs.TEMPLATES}"' in mix
    assert "steps: [:assemble]" in mix and "overlays:" not in mix and "bezgelor: [" not in mix
    assert "bezgelor_dev: " not in mix
    dockerfile = story.text("Dockerfile")
    assert "RUN mix release bezgelor_portal" in dockerfile and "/app/_build/prod/rel/bezgelor_portal" in dockerfile
    assert f"COPY {theirs.TEMPLATES} {theirs.TEMPLATES}" in dockerfile     # their overlays reach the image


def test_their_overlays_and_their_seeding_migrate_survive_untouched(story: Story) -> None:
    for rel, (text, mode) in story.theirs.items():
        assert story.text(rel) == text and (story.root / rel).stat().st_mode == mode, rel
    assert "seed()" in story.text("apps/bezgelor_portal/lib/bezgelor_portal/release.ex")
    assert not (story.root / "rel").exists()                                  # no second overlays folder
    assert "/app/bin/migrate" in story.text("fly.toml")                      # still their release command
    # beside theirs, the module `inv db.status` and `inv db.rollback` call (never their migrate, which seeds)
    ours = story.text("apps/bezgelor_db/lib/bezgelor_db/release.ex")
    assert files.has_marker(ours) and "def status do" in ours and "def rollback_to(version)" in ours


def test_tcp_keepalive_is_merged_into_the_socket_options_they_set(story: Story) -> None:
    env = {"SECRET_KEY_BASE": "s" * 64, "CLOAK_KEY": base64.b64encode(b"k" * 32).decode(),
           "DATABASE_URL": "ecto://u:p@bezgelor-db.flycast:5432/bezgelor", "WORLD_PUBLIC_ADDRESS": "203.0.113.7"}
    config = elixir.read_config(story.root / "config/runtime.exs", "prod", env)
    repo = config[":bezgelor_db"]["Elixir.BezgelorDb.Repo"]
    assert repo["socket_options"] == [":inet6", [":keepalive", "true"]]


def test_heart_joins_their_env_sh_and_keeps_their_lines(story: Story) -> None:
    env_sh = story.text(f"{theirs.TEMPLATES}/env.sh.eex")
    assert env_sh.startswith(theirs.ENV_SH) and "-heart" in env_sh and "HEART_COMMAND" in env_sh


def test_verify_after_init_is_clean_and_a_second_init_changes_nothing(story: Story) -> None:
    problems = [f for f in story.after["findings"] if f["severity"] in ("error", "warning")]
    assert problems == [] and story.after["skipped"] == [], json.dumps(problems, indent=1)
    assert [f for f in story.after["findings"] if f["file"] == f"{OVERLAYS}/migrate"] == []
    assert story.second.returncode == 0 and "nothing to change" in story.second.stdout


def test_their_region_and_http_service_survive_init(story: Story) -> None:
    data = tomlkit.parse(story.text("fly.toml")).unwrap()
    assert data["primary_region"] == theirs.REGION
    assert data["http_service"]["internal_port"] == 4000


def test_a_migrate_that_calls_a_module_the_checkout_lacks_is_an_error(maintainers_shape: Path,
                                                                        tmp_path: Path) -> None:
    root = copy_shape(maintainers_shape, tmp_path / "bezgelor")
    (root / "apps/bezgelor_portal/lib/bezgelor_portal/release.ex").unlink()
    report = _verify(root)
    (f,) = [f for f in report["findings"] if f["file"] == f"{OVERLAYS}/migrate"]
    assert f["severity"] == "error" and "BezgelorPortal.Release.migrate" in f["message"]


def test_a_db_release_module_of_theirs_under_another_file_name_is_not_written_twice(maintainers_shape: Path,
                                                                                       tmp_path: Path) -> None:
    # Two files defining BezgelorDb.Release stop the project compiling ("cannot define module ... because it
    # is currently being defined"): init must see theirs wherever it is, not only at release.ex.
    root = copy_shape(maintainers_shape, tmp_path / "bezgelor")
    theirs_at = "apps/bezgelor_db/lib/bezgelor_db/release_tasks.ex"
    (root / theirs_at).write_text("defmodule BezgelorDb.Release do\n  def migrate, do: :ok\nend\n")
    init = run_inv("init", "--root", str(root), "--yes", cwd=root.parent, timeout=300)
    assert init.returncode == 0, init.stdout + init.stderr
    assert not (root / "apps/bezgelor_db/lib/bezgelor_db/release.ex").exists()
    report = _verify(root)
    (said,) = [f for f in report["findings"] if f["id"] == "overlays.status-module"]
    assert said["severity"] == "info" and said["file"] == theirs_at and "your own BezgelorDb.Release" in said["message"]


# -- after init, every task sees their release and their region, Elixir or not ---------------------------------

def _runner_without_elixir(tmp_path: Path) -> dict[str, str]:
    """A CI runner's PATH: Python (this project's environment) and git, no Elixir, no flyctl."""
    tools = tmp_path / "runner-bin"
    tools.mkdir()
    (tools / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    path = os.pathsep.join([str(tools), str(Path(sys.executable).parent)])
    assert shutil.which("elixir", path=path) is None and shutil.which("fly", path=path) is None
    return {"PATH": path}


def test_a_runner_without_elixir_deploys_to_their_region_under_their_release_name(story: Story,
                                                                                   tmp_path: Path) -> None:
    runner = _runner_without_elixir(tmp_path)
    ran = inv("deploy.full", "--root", str(story.root), "--dry-run", "--json", env=runner)
    assert ran.returncode == 0, ran.output
    lines = [" ".join(argv) for step in json.loads(ran.stdout)["steps"] for argv in step["argv"]]
    (create,) = [line for line in lines if line.startswith("fly postgres create")]
    assert f"--region {theirs.REGION}" in create                      # their database is in lax, not sjc
    drain = [line for line in lines if " rpc " in line]
    assert drain and all(f"/app/bin/{theirs.RELEASE} rpc " in line for line in drain), drain
    console = inv("console", "--root", str(story.root), "--dry-run", env=runner)
    assert console.returncode == 0 and f"-C '/app/bin/{theirs.RELEASE} remote'" in console.output, console.output


def test_db_status_reads_their_database_without_running_their_seeding_migrate(story: Story, fake_fly: FakeFly,
                                                                               tmp_path: Path) -> None:
    root = copy_shape(story.root, tmp_path / "bezgelor")
    for argv in (["apps", "create", "bezgelor", "--org", "personal", "--yes"],
                 ["deploy", "-a", "bezgelor", "--ha=false", "--yes"]):      # built from their Dockerfile
        subprocess.run([str(fake_fly.bin_dir / "fly"), *argv], cwd=root, check=True, capture_output=True)
    seeded = fake_fly.app("bezgelor")["database"]["seeded"]
    assert seeded == 1                                      # their release command migrated and seeded, as it should

    status = run_inv("db.status", "--root", str(root), "--json", cwd=root, timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["pending"] == []
    remote = [c["argv"][c["argv"].index("-C") + 1] for c in fake_fly.calls("ssh console")]
    assert remote == [f'/app/bin/{theirs.RELEASE} eval "BezgelorDb.Release.status()"']
    assert fake_fly.app("bezgelor")["database"]["seeded"] == seeded   # their migrate never ran: nothing seeded
    # what it asked before, `/app/bin/migrate status`: their bin/migrate ignores its argument, migrates and seeds
    subprocess.run([str(fake_fly.bin_dir / "fly"), "ssh", "console", "-a", "bezgelor", "-C", "/app/bin/migrate status"],
                   cwd=root, check=True, capture_output=True)
    assert fake_fly.app("bezgelor")["database"]["seeded"] == seeded + 1
