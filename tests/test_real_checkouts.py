"""The real checkouts are the acceptance tests: one story per shape our users have.

- `real`: the real Bezgelor repository as cloned (skipped when ../shared/checkouts/ is absent);
- `fly_launch`: a checkout after `fly launch` ([http_service], TCP services without checks, an [env] of
  the user's own, flyctl's Phoenix Dockerfile and .dockerignore, a release named after the portal);
- `phx_new`: a fresh `mix phx.new bezgelor --umbrella` with three game apps added.

For each: `inv init --yes` with no hand edits → `inv verify` clean → a second init changes nothing;
every environment variable and config key the user's files read before init is still read after;
comments and keys we do not own survive in fly.toml; every file written parses with Elixir; prod.exs
evaluated has `exclude` inside `force_ssl`. Each shape is built once and initialised once per session
(tests/support/shapes.py); the assertions below read that one run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from bezgelor_tasks import elixir, settings_load
from bezgelor_tasks.checkout.discover import Checkout
from tests.support.inv import run_inv
from tests.support.shapes import FLY_LAUNCH_DOCKERFILE, FLY_LAUNCH_DOCKERIGNORE, copy_shape

pytestmark = [pytest.mark.elixir,
              pytest.mark.skipif(not elixir.available(), reason="the stories need a real Elixir (apt-get install "
                                 "elixir): every written file is parsed and prod.exs evaluated")]

SHAPES = ("real", "fly_launch", "phx_new")

# Keys init removes on purpose, each with why (everything else the user's configs read must stay).
REMOVED_ON_PURPOSE = {
    # The plan's bug: `exclude:` beside force_ssl is an endpoint option nothing reads; init moves it inside.
    ":exclude": "moved inside force_ssl",
}

# The files whose reads we compare: what init patches and what Mix reads at build time and boot.
READ_FILES = ("mix.exs", "config/config.exs", "config/dev.exs", "config/test.exs", "config/prod.exs",
              "config/runtime.exs")

# Every System.get_env/fetch_env(!) name and every `config :app, Key, key: ...` key of a file, from its
# AST (Elixir itself parses; no Python lexing of Elixir).
READS_SCRIPT = r"""
defmodule Reads do
  @env_funs [:get_env, :fetch_env!, :fetch_env]
  def of(ast) do
    {_, acc} =
      Macro.prewalk(ast, MapSet.new(), fn
        {{:., _, [{:__aliases__, _, [:System]}, fun]}, _, [name | _]} = node, acc
        when fun in @env_funs and is_binary(name) ->
          {node, MapSet.put(acc, "env " <> name)}
        {:config, _, [app | rest]} = node, acc when is_atom(app) ->
          {node, Enum.reduce(keys(inspect(app), rest), acc, &MapSet.put(&2, &1))}
        node, acc ->
          {node, acc}
      end)
    acc
  end
  defp keys(app, [kw]) when is_list(kw), do: for({k, _} <- kw, is_atom(k), do: "config #{app} #{inspect(k)}")
  defp keys(app, [key, kw]) when is_list(kw) do
    root = "config #{app} #{Macro.to_string(key)}"
    [root | for({k, _} <- kw, is_atom(k), do: "#{root} #{inspect(k)}")]
  end
  defp keys(app, [key, _value]), do: ["config #{app} #{Macro.to_string(key)}"]
  defp keys(_app, _), do: []
end
for file <- System.argv(), File.exists?(file) do
  file |> File.read!() |> Code.string_to_quoted!() |> Reads.of() |> Enum.each(&IO.puts/1)
end
"""


def elixir_reads(root: Path) -> set[str]:
    proc = subprocess.run(["elixir", "-e", READS_SCRIPT, *[str(root / f) for f in READ_FILES]],
                          capture_output=True, text=True, timeout=120, check=True)
    return set(proc.stdout.splitlines())


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode) for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def key_paths(data: Any, prefix: str = "") -> set[str]:
    """Every key of a TOML document as a path ("services.0.ports.0.port"), tables' keys included."""
    out: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            out |= {f"{prefix}{key}"} | key_paths(value, f"{prefix}{key}.")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            if isinstance(value, dict):
                out |= key_paths(value, f"{prefix}{i}.")
    return out


@dataclass
class Story:
    shape: str
    root: Path
    before: dict[str, str | None]        # fly.toml, Dockerfile, .dockerignore as they were
    reads_before: set[str]
    init: subprocess.CompletedProcess[str]
    verify: subprocess.CompletedProcess[str]
    snapshot_after_init: dict[str, tuple[bytes, int]]
    second: subprocess.CompletedProcess[str]
    snapshot_after_second: dict[str, tuple[bytes, int]]
    written: list[str]                    # files init created or changed (git's view)

    @property
    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.verify.stdout)
        return report

    @property
    def checkout(self) -> Checkout:
        return Checkout.open(settings_load.load(root=self.root, environ={}))


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


@pytest.fixture(scope="session", params=SHAPES)
def story(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Story:
    shape = request.param
    built = request.getfixturevalue(f"{shape}_shape")
    root = copy_shape(built, tmp_path_factory.mktemp(f"story-{shape}") / built.name)
    before = {rel: _read(root / rel) for rel in ("fly.toml", "Dockerfile", ".dockerignore")}
    reads_before = elixir_reads(root)
    # A session fixture starts before the per-test isolation in conftest.py: isolate these runs the same way.
    with pytest.MonkeyPatch.context() as env:
        for key in [k for k in os.environ if k.startswith(("BEZGELOR_", "FLY_"))]:
            env.delenv(key)
        env.setenv("NO_COLOR", "1")
        init = run_inv("init", "--root", str(root), "--yes", cwd=root.parent, timeout=300)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root,
                                capture_output=True, text=True, check=True).stdout
        written = [line[3:] for line in status.splitlines()]
        verify = run_inv("verify", "--root", str(root), "--json", cwd=root.parent, timeout=300)
        after_init = snapshot(root)
        second = run_inv("init", "--root", str(root), "--yes", cwd=root.parent, timeout=300)
    return Story(shape, root, before, reads_before, init, verify, after_init, second, snapshot(root), written)


# ---------------------------------------------------------------------------------------------

def test_init_yes_makes_the_checkout_deployable_without_hand_edits(story: Story) -> None:
    assert story.init.returncode == 0, story.init.stdout + story.init.stderr
    assert "every .ex/.exs written parses with Elixir" in story.init.stdout
    assert "fly.toml" in story.written and "Dockerfile" in story.written


def test_verify_is_clean_after_init(story: Story) -> None:
    report = story.report
    problems = [f for f in report["findings"] if f["severity"] in ("error", "warning")]
    assert problems == [] and report["skipped"] == [], json.dumps(report, indent=1)
    assert story.verify.returncode == 0


def test_a_second_init_changes_nothing(story: Story) -> None:
    assert story.second.returncode == 0, story.second.stderr
    assert "nothing to change" in story.second.stdout
    assert story.snapshot_after_second == story.snapshot_after_init


def test_every_environment_variable_and_config_key_read_before_init_is_still_read(story: Story) -> None:
    lost = {r for r in story.reads_before - elixir_reads(story.root)
            if not any(r.endswith(" " + key) for key in REMOVED_ON_PURPOSE)}
    assert lost == set()
    assert any(r.startswith("env ") for r in story.reads_before)     # the comparison saw something


def test_comments_and_keys_we_do_not_own_survive_in_fly_toml(story: Story) -> None:
    old = story.before["fly.toml"]
    if old is None:
        pytest.skip(f"the {story.shape} checkout has no fly.toml before init (init writes ours)")
    new = (story.root / "fly.toml").read_text()
    comments = [line.strip() for line in old.splitlines() if line.strip().startswith("#")]
    new_lines = {line.strip() for line in new.splitlines()}
    assert [c for c in comments if c not in new_lines] == []
    assert "# the game data needs it" in new                         # a trailing comment on a value
    old_data, new_data = tomlkit.parse(old).unwrap(), tomlkit.parse(new).unwrap()
    assert sorted(key_paths(old_data) - key_paths(new_data)) == []
    ours = {"PHX_HOST", "PHX_SERVER", "PORT"}
    assert {k: v for k, v in old_data.get("env", {}).items() if k not in ours} == \
        {k: v for k, v in new_data["env"].items() if k in old_data.get("env", {}) and k not in ours}
    assert new_data["swap_size_mb"] == old_data["swap_size_mb"] and new_data["vm"][0]["memory"] == "4GiB"


def test_fly_launch_http_service_stays_the_portals_service_made_always_on_with_its_check(story: Story) -> None:
    if story.shape != "fly_launch":
        pytest.skip("only the checkout after `fly launch` has an [http_service]")
    data = tomlkit.parse((story.root / "fly.toml").read_text()).unwrap()
    portal = data["http_service"]
    assert portal["internal_port"] == 4000 and portal["force_https"] is True and portal["processes"] == ["app"]
    assert portal["concurrency"] == {"type": "connections", "hard_limit": 1000, "soft_limit": 1000}
    assert portal["checks"][0]["headers"] == {"X-Forwarded-Proto": "https"}
    assert data["kill_signal"] == "SIGTERM" and data["kill_timeout"] == "60s"
    by_port = {svc["internal_port"]: svc for svc in data["services"]}
    assert sorted(by_port) == [6600, 23115, 24000]                # no second portal service
    for svc in (portal, *by_port.values()):
        assert svc["auto_stop_machines"] == "off" and svc["min_machines_running"] == 1
    for port in (6600, 23115, 24000):
        assert by_port[port]["tcp_checks"], port


def test_fly_launch_dockerfile_and_dockerignore_are_replaced_keeping_orig_copies(story: Story) -> None:
    if story.shape != "fly_launch":
        pytest.skip("only the checkout after `fly launch` has a Dockerfile and .dockerignore we did not write")
    assert (story.root / "Dockerfile.orig").read_text() == FLY_LAUNCH_DOCKERFILE
    assert (story.root / ".dockerignore.orig").read_text() == FLY_LAUNCH_DOCKERIGNORE
    assert "-COPY priv priv" in story.init.stdout                    # the diff was shown


def test_every_file_init_writes_parses_with_elixir(story: Story) -> None:
    sources = [story.root / rel for rel in story.written if rel.endswith((".ex", ".exs"))]
    assert sources, story.written
    assert elixir.parse_files(sources, story.root) == []


def test_prod_exs_evaluated_has_exclude_inside_force_ssl(story: Story) -> None:
    co = story.checkout
    config = elixir.read_config(story.root / "config" / "prod.exs", "prod")
    endpoint = config[f":{co.settings.portal_app}"][f"Elixir.{co.portal_web_module}.Endpoint"]  # type: ignore[index]
    assert "exclude" not in endpoint
    exclude = endpoint["force_ssl"]["exclude"]
    assert set(co.settings.health_paths) <= set(exclude["paths"])


def test_the_generated_dockerfile_installs_the_portals_npm_dependencies(story: Story) -> None:
    assets = [p.parent for p in story.root.glob("apps/*/assets/package.json")
              if json.loads(p.read_text()).get("dependencies")]
    if not assets:
        pytest.skip(f"no assets folder of the {story.shape} checkout has npm dependencies")
    dockerfile = (story.root / "Dockerfile").read_text()
    deploy = dockerfile.index("assets.deploy")
    for folder in assets:
        rel = folder.relative_to(story.root)
        assert "npm ci" in dockerfile[:deploy] and str(rel) in dockerfile[:deploy], rel


def test_without_a_terminal_and_without_yes_init_refuses_naming_yes_and_changes_nothing(
        fly_launch_shape: Path, tmp_path: Path) -> None:
    root = copy_shape(fly_launch_shape, tmp_path / "checkout")
    before = snapshot(root)
    refused = run_inv("init", "--root", str(root), timeout=300)
    assert refused.returncode == 1
    assert "Dockerfile" in refused.stderr and ".dockerignore" in refused.stderr and "--yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot(root) == before
    shutil.rmtree(root)


def test_on_a_terminal_init_asks_per_file_and_keeps_the_one_the_user_declines(fly_launch_shape: Path,
                                                                              tmp_path: Path) -> None:
    import os
    import pty
    import sys

    from tests.support.inv import PROJECT

    root = copy_shape(fly_launch_shape, tmp_path / "checkout")
    controller, terminal = pty.openpty()
    os.write(controller, b"n\ny\n")                 # keep my Dockerfile; replace my .dockerignore
    try:
        proc = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(PROJECT), "init", "--root",
                               str(root)], stdin=terminal, capture_output=True, text=True, timeout=300)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Replace Dockerfile?" in proc.stdout and "Replace .dockerignore?" in proc.stdout
    assert "kept yours" in proc.stdout
    assert (root / "Dockerfile").read_text() == FLY_LAUNCH_DOCKERFILE and not (root / "Dockerfile.orig").exists()
    assert (root / ".dockerignore.orig").read_text() == FLY_LAUNCH_DOCKERIGNORE
    assert (root / ".dockerignore").read_text() != FLY_LAUNCH_DOCKERIGNORE
