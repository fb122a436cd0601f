"""`inv verify`: the plan's bugs are found, each as `severity file:line what — fix`, offline.

Each test runs the real CLI on a copy of the Bezgelor-shaped fixture, as a user would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.umbrella import copy_fixture, git_init

REPO = Path(__file__).resolve().parents[1]
CONTROLLER = "apps/bezgelor_portal/lib/bezgelor_portal_web/controllers/health_controller.ex"
pytestmark = pytest.mark.elixir


def inv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def verify_json(root: Path) -> tuple[int, dict]:
    proc = inv("verify", "--root", str(root), "--json")
    return proc.returncode, json.loads(proc.stdout)


def findings(report: dict, check: str | None = None, severity: str | None = None) -> list[dict]:
    return [f for f in report["findings"] if (check is None or f["check"] == check)
            and (severity is None or f["severity"] == severity)]


def has(report: dict, check: str, text: str, severity: str = "error", file: str | None = None) -> bool:
    return any(text in f["message"] and (file is None or f["file"] == file)
               for f in findings(report, check, severity))


@pytest.fixture(scope="module")
def _ready_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_fixture(tmp_path_factory.mktemp("ready") / "bezgelor")
    git_init(root)
    proc = inv("init", "--root", str(root))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return root


@pytest.fixture
def ready_checkout(_ready_template: Path, tmp_path: Path) -> Path:
    """The fixture after `inv init` (verify is clean on it): the start for one deliberate mistake per test."""
    root = tmp_path / "bezgelor"
    shutil.copytree(_ready_template, root, symlinks=True)
    return root


def test_verify_is_clean_on_the_checkout_init_made_ready(ready_checkout):
    code, report = verify_json(ready_checkout)
    assert report["findings"] == [] and report["skipped"] == []
    assert code == 0


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first occurrence of `old` on a line that is not a comment."""
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if old in line and not line.lstrip().startswith("#"):
            lines[i] = line.replace(old, new, 1)
            path.write_text("".join(lines))
            return
    raise AssertionError(f"{old!r} not in the code of {path}")


# --- the untouched fixture ----------------------------------------------------------------------


def test_verify_on_the_untouched_fixture_reports_the_plans_bugs_and_exits_1(bezgelor_checkout):
    code, report = verify_json(bezgelor_checkout)
    assert code == 1
    assert report["ok"] is False
    prod = findings(report, "prodexs", "error")
    exclude = next(f for f in prod if "outside `force_ssl`" in f["message"])
    assert exclude["file"] == "config/prod.exs"
    lines = (bezgelor_checkout / "config/prod.exs").read_text().splitlines()
    assert lines[exclude["line"] - 1].strip().startswith("exclude:")
    assert has(report, "prodexs", "redirects the health path /health")
    assert has(report, "mixexs", "defines no `bezgelor` release")
    assert not has(report, "mixexs", "no `assets.deploy` alias")     # the image's Elixir 1.19 runs the portal's
    assert has(report, "health", "is missing", file=CONTROLLER)
    assert has(report, "health", "no route for /health")
    assert has(report, "overlays", "is missing", file="apps/bezgelor_db/lib/bezgelor_db/release.ex")
    assert has(report, "overlays", "is missing", file="rel/overlays/bin/migrate")
    assert has(report, "overlays", "does not run Erlang's heart", severity="warning")


def test_umbrella_asset_aliases_are_needed_only_below_elixir_1_15_in_the_build_image(bezgelor_checkout):
    env = {**os.environ, "BEZGELOR_ELIXIR_VERSION": "1.14.5"}
    report = json.loads(inv("verify", "--root", str(bezgelor_checkout), "--json", env=env).stdout)
    (f,) = [f for f in findings(report, "mixexs") if "`assets.deploy` alias" in f["message"]]
    assert "Elixir 1.14.5" in f["message"] and f["id"] == "mixexs.umbrella-alias"
    assert has(report, "runtime", "never reads WORLD_PUBLIC_ADDRESS")
    assert has(report, "dockerfile", "Dockerfile is missing")
    assert has(report, "flytoml", "fly.toml is missing")


def test_verify_prints_one_line_per_finding_as_severity_file_line_what_and_fix(bezgelor_checkout):
    proc = inv("verify", "--root", str(bezgelor_checkout))
    assert proc.returncode == 1
    line = next(ln for ln in proc.stdout.splitlines() if "outside `force_ssl`" in ln)
    assert re.match(r"^ERROR config/prod\.exs:\d+ .+ — .+$", line), line
    assert "error(s)" in proc.stdout.splitlines()[-1]


def test_verify_changes_nothing_in_the_checkout(bezgelor_checkout):
    before = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=bezgelor_checkout,
                            capture_output=True, text=True).stdout
    inv("verify", "--root", str(bezgelor_checkout))
    after = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=bezgelor_checkout,
                           capture_output=True, text=True).stdout
    assert before == after == ""


# --- one mistake at a time, on a checkout init made ready ----------------------------------------


def test_a_service_that_auto_stops_stops_the_whole_game_machine(ready_checkout):
    edit(ready_checkout / "fly.toml", 'auto_stop_machines = "off"', 'auto_stop_machines = "stop"')
    code, report = verify_json(ready_checkout)
    assert code == 1
    assert has(report, "flytoml", "auto_stop_machines = 'stop'", file="fly.toml")


def test_min_machines_running_zero_is_an_error(ready_checkout):
    edit(ready_checkout / "fly.toml", "min_machines_running = 1", "min_machines_running = 0")
    _, report = verify_json(ready_checkout)
    assert has(report, "flytoml", "min_machines_running = 0")


def test_a_service_without_health_checks_is_an_error(ready_checkout):
    path = ready_checkout / "fly.toml"
    text = path.read_text()
    text = re.sub(r"\n\s*\[\[services\.tcp_checks\]\]\n(\s*\w+ = [^\n]+\n)+", "\n", text)
    path.write_text(text)
    _, report = verify_json(ready_checkout)
    assert has(report, "flytoml", "has no health check")


def test_integer_check_durations_are_errors(ready_checkout):
    path = ready_checkout / "fly.toml"
    path.write_text(re.sub(r'interval = "(\d+)s"', lambda m: f"interval = {int(m.group(1)) * 1000}",
                           path.read_text(), count=1))
    _, report = verify_json(ready_checkout)
    f = next(f for f in findings(report, "flytoml", "error") if "bare number" in f["message"])
    assert (ready_checkout / "fly.toml").read_text().splitlines()[f["line"] - 1].strip().startswith("interval")


def test_health_path_redirected_when_neither_excluded_nor_sent_the_forwarded_proto_header(ready_checkout):
    path = ready_checkout / "fly.toml"
    path.write_text(re.sub(r'(?im)^\s*x-forwarded-proto\s*=\s*"https"\s*\n', "", path.read_text()))
    prod = ready_checkout / "config/prod.exs"
    prod.write_text(re.sub(r'paths:\s*\[[^\]]*\],?\s*', "", prod.read_text()))
    _, report = verify_json(ready_checkout)
    assert has(report, "prodexs", "redirects the health path /health")


def test_release_with_the_dev_app_or_missing_an_umbrella_app_is_an_error(ready_checkout):
    mix = ready_checkout / "mix.exs"
    text = mix.read_text()
    text = re.sub(r"\n\s*bezgelor_world: :permanent,?", "", text, count=1)
    text = text.replace("bezgelor_api: :permanent", "bezgelor_dev: :permanent,\n        bezgelor_api: :permanent", 1)
    mix.write_text(text)
    _, report = verify_json(ready_checkout)
    assert has(report, "mixexs", "includes the dev-only app bezgelor_dev")
    assert has(report, "mixexs", "missing umbrella app(s) bezgelor_world")


def test_dockerfile_copying_the_dev_app_or_missing_a_release_app(ready_checkout):
    path = ready_checkout / "Dockerfile"
    lines = path.read_text().splitlines(keepends=True)
    kept = [ln for ln in lines if not re.match(r"COPY\s+apps/bezgelor_world/lib\b", ln)]
    assert len(kept) == len(lines) - 1
    idx = next(i for i, ln in enumerate(kept) if ln.startswith("RUN mix compile"))
    kept.insert(idx, "COPY apps/bezgelor_dev/lib apps/bezgelor_dev/lib\n")
    path.write_text("".join(kept))
    _, report = verify_json(ready_checkout)
    dev = next(f for f in findings(report, "dockerfile", "error") if "dev-only app bezgelor_dev" in f["message"])
    assert path.read_text().splitlines()[dev["line"] - 1].startswith("COPY apps/bezgelor_dev")
    assert has(report, "dockerfile", "never copies apps/bezgelor_world/lib")


def test_copy_from_path_that_is_not_the_release_name(ready_checkout):
    edit(ready_checkout / "Dockerfile", "/_build/prod/rel/bezgelor", "/_build/prod/rel/bezgelor_portal")
    _, report = verify_json(ready_checkout)
    assert has(report, "dockerfile", "names release `bezgelor_portal`")


def test_ports_disagreeing_between_settings_fly_toml_and_expose(ready_checkout):
    edit(ready_checkout / "fly.toml", "internal_port = 24000", "internal_port = 24001")
    path = ready_checkout / "Dockerfile"
    path.write_text(re.sub(r"(EXPOSE[^\n]*?)\s6600\b", r"\1", path.read_text()))
    _, report = verify_json(ready_checkout)
    moved = next(f for f in findings(report, "flytoml", "error") if "internal_port = 24001" in f["message"])
    assert "the world server listens on 24000" in moved["message"] and moved["id"] == "flytoml.internal-port"
    assert (ready_checkout / "fly.toml").read_text().splitlines()[moved["line"] - 1].strip() == "internal_port = 24001"
    assert has(report, "dockerfile", "EXPOSE lacks 6600")


def test_ports_follow_the_settings_not_a_hardcoded_list(ready_checkout):
    env = {**os.environ, "BEZGELOR_WORLD_PORT": "24001"}
    proc = inv("verify", "--root", str(ready_checkout), "--json", env=env)
    report = json.loads(proc.stdout)
    assert has(report, "flytoml", "internal_port = 24000: the world server listens on 24001 (BEZGELOR_WORLD_PORT)")
    stale = next(f for f in findings(report, "dockerfile", "warning"))     # our Dockerfile: the diff is the finding
    assert stale["id"] == "dockerfile.differs" and "+EXPOSE" in stale["detail"] and "24001" in stale["detail"]


def test_dockerignore_excluding_what_the_dockerfile_copies(ready_checkout):
    with (ready_checkout / ".dockerignore").open("a") as fh:
        fh.write("apps/bezgelor_data/priv\n")
    _, report = verify_json(ready_checkout)
    assert has(report, "dockerignore", "excludes apps/bezgelor_data/priv", file=".dockerignore")


def test_overlay_scripts_missing_not_executable_or_calling_another_release(ready_checkout):
    migrate = ready_checkout / "rel/overlays/bin/migrate"
    server = ready_checkout / "rel/overlays/bin/server"
    migrate.chmod(0o644)
    edit(server, 'release="bezgelor"', 'release="bezgelor_portal"')
    _, report = verify_json(ready_checkout)
    assert has(report, "overlays", "is not executable", file="rel/overlays/bin/migrate")
    assert has(report, "overlays", "runs the release script `bezgelor_portal`", file="rel/overlays/bin/server")
    migrate.unlink()
    _, report = verify_json(ready_checkout)
    assert has(report, "overlays", "is missing", file="rel/overlays/bin/migrate")


def test_runtime_exs_missing_a_required_variable(ready_checkout):
    path = ready_checkout / "config/runtime.exs"
    path.write_text(path.read_text().replace('"CLOAK_KEY"', '"CLOAK_KEY_TYPO"'))
    _, report = verify_json(ready_checkout)
    assert has(report, "runtime", "never reads CLOAK_KEY")


def test_vm_memory_in_every_spelling_fly_accepts_is_read_as_the_same_size(ready_checkout):
    text = (ready_checkout / "fly.toml").read_text()
    assert 'memory = "4gb"' in text
    for spelling in ('"4GiB"', '"4 GB"', "4096", '"4096mb"'):
        (ready_checkout / "fly.toml").write_text(text.replace('memory = "4gb"', f"memory = {spelling}"))
        code, report = verify_json(ready_checkout)
        assert findings(report, "memory") == [] and code == 0, spelling


def test_shutdown_without_sigterm_or_with_a_kill_timeout_above_flys_limit(ready_checkout):
    edit(ready_checkout / "fly.toml", 'kill_signal = "SIGTERM"', 'kill_signal = "SIGINT"')
    edit(ready_checkout / "fly.toml", 'kill_timeout = "60s"', 'kill_timeout = "10m"')
    _, report = verify_json(ready_checkout)
    assert has(report, "flytoml", "kill_signal = 'SIGINT'", severity="warning")
    assert has(report, "flytoml", "kill_timeout = '10m' is not a duration between 1s and Fly's limit of 300s")


def test_an_http_service_beside_the_portals_service_is_an_error_naming_the_fix(ready_checkout):
    with (ready_checkout / "fly.toml").open("a") as fh:
        fh.write('\n[http_service]\n  internal_port = 4000\n  auto_stop_machines = "stop"\n'
                 "  min_machines_running = 0\n")
    code, report = verify_json(ready_checkout)
    assert code == 1
    f = next(f for f in findings(report, "flytoml", "error") if "[http_service]" in f["message"])
    assert f["id"] == "flytoml.http-service-twice" and "removes [http_service]" in f["fix"]


def test_vm_memory_below_the_estimate_from_the_game_data(ready_checkout):
    data = ready_checkout / "apps/bezgelor_data/priv/data/huge.json"
    with data.open("wb") as fh:  # a sparse 2 GB file: the size is what counts
        fh.truncate(2 * 1024 ** 3)
    code, report = verify_json(ready_checkout)
    assert code == 1
    f = next(f for f in findings(report, "memory", "error"))
    assert "below the estimate" in f["message"] and f["file"] == "fly.toml"
    assert "memory" in f["fix"]


def test_an_elixir_file_that_does_not_parse_is_named_with_its_line(ready_checkout):
    router = ready_checkout / "apps/bezgelor_portal/lib/bezgelor_portal_web/router.ex"
    lines = router.read_text().splitlines(keepends=True)
    lines.insert(3, "  def broken( do\n")
    router.write_text("".join(lines))
    _, report = verify_json(ready_checkout)
    (f,) = [f for f in report["findings"] if f["file"].endswith("router.ex")]
    assert f["id"] == "health.syntax" and f["line"] >= 4 and "does not parse as Elixir" in f["message"]


def test_a_mix_exs_with_a_syntax_error_is_one_finding_with_the_parsers_line_and_message(ready_checkout):
    mix = ready_checkout / "mix.exs"
    lines = mix.read_text().splitlines(keepends=True)
    lines[6] = lines[6].replace("version:", "version: [")     # line 7: a bracket that never closes
    mix.write_text("".join(lines))
    code, report = verify_json(ready_checkout)
    assert code == 1
    about_mix = [f for f in report["findings"] if f["file"] == "mix.exs"]
    assert [f["id"] for f in about_mix] == ["mixexs.syntax"], about_mix
    assert about_mix[0]["line"] and "does not parse as Elixir" in about_mix[0]["message"]
    assert "keyword list literal" not in json.dumps(report)
    assert "Elixir is not installed" not in json.dumps(report)   # it is: the skipped overlays name no false cause


def test_one_syntax_error_in_runtime_exs_adds_no_false_never_reads_errors(ready_checkout):
    path = ready_checkout / "config/runtime.exs"
    path.write_text(path.read_text().replace("if config_env() == :prod do", "if config_env() == :prod do (", 1))
    code, report = verify_json(ready_checkout)
    assert code == 1
    about = [f for f in report["findings"] if f["file"] == "config/runtime.exs"]
    assert [f["id"] for f in about] == ["runtime.syntax"], about
    assert not any("never reads" in f["message"] or "inv init" in f["fix"] for f in about)


def test_verify_without_elixir_says_loudly_what_it_skipped(bezgelor_checkout, tmp_path):
    bindir = tmp_path / "noelixir"
    bindir.mkdir()
    env = {**os.environ, "PATH": f"{bindir}:{Path(sys.executable).parent}"}
    assert shutil.which("elixir", path=env["PATH"]) is None
    proc = inv("verify", "--root", str(bezgelor_checkout), env=env)
    assert "SKIPPED" in proc.stdout and "Elixir is not installed" in proc.stdout
    assert "did NOT run every check" in proc.stdout
    # nothing about Elixir files is guessed at without Elixir: each is said to be unchecked
    assert "config/prod.exs was NOT evaluated" in proc.stdout and "outside `force_ssl`" not in proc.stdout
    strict = inv("verify", "--root", str(bezgelor_checkout), "--strict", env=env)
    assert strict.returncode == 1


def test_verify_on_a_folder_that_is_not_an_umbrella_is_a_clear_error(tmp_path):
    (tmp_path / "notumbrella").mkdir()
    (tmp_path / "notumbrella" / "mix.exs").write_text("defmodule X.MixProject do\nend\n")
    proc = inv("verify", "--root", str(tmp_path / "notumbrella"))
    assert proc.returncode == 1
    assert "not an umbrella" in proc.stderr and "Traceback" not in proc.stderr


def test_health_controller_probing_a_port_the_server_does_not_use(ready_checkout):
    controller = ready_checkout / "apps/bezgelor_portal/lib/bezgelor_portal_web/controllers/health_controller.ex"
    edit(controller, "world: 24000", "world: 24001")
    _, report = verify_json(ready_checkout)
    f = next(f for f in findings(report, "ports", "error") if "probes world on port 24001" in f["message"])
    assert "world: 24001" in controller.read_text().splitlines()[f["line"] - 1]


def test_the_seed_plans_own_prod_exs_fix_still_redirects_the_health_check(ready_checkout):
    """The seed moved `exclude` inside force_ssl but kept only hosts, and its fly.toml sends no header."""
    (ready_checkout / "config/prod.exs").write_text('''import Config

config :bezgelor_portal, BezgelorPortalWeb.Endpoint,
  cache_static_manifest: "priv/static/cache_manifest.json",
  force_ssl: [
    rewrite_on: [:x_forwarded_proto],
    hsts: true,
    # Exclude health checks and local development
    exclude: ["localhost", "127.0.0.1"]
  ]

config :logger, level: :info
''')
    path = ready_checkout / "fly.toml"
    path.write_text(re.sub(r'(?im)^\s*x-forwarded-proto\s*=\s*"https"\s*\n', "", path.read_text()))
    code, report = verify_json(ready_checkout)
    assert code == 1
    f = next(f for f in findings(report, "prodexs", "error") if "redirects the health path" in f["message"])
    assert (ready_checkout / "config/prod.exs").read_text().splitlines()[f["line"] - 1].strip() == "force_ssl: ["


def test_wrong_flyctl_commands_in_user_docs_are_one_summarised_note_and_prose_is_not_read(ready_checkout):
    (ready_checkout / "docs" / "old-notes.md").write_text(
        "# Old notes\nThere is no `fly releases rollback`; do not use it.\n\n```bash\n"
        "fly ips allocate v4 --app bezgelor\nfly secrets set \\\n  SECRET_KEY_BASE=\"x\" --app bezgelor\n"
        "fly releases rollback 3 --app bezgelor\n```\n")
    code, report = verify_json(ready_checkout)
    assert code == 0                                   # docs mislead people; they do not break a deploy
    assert findings(report, "docs", "warning") == []   # never a wall of warnings about prose
    (note,) = findings(report, "docs", "info")
    assert note["id"] == "docs.prose-commands"
    assert "3 command line(s)" in note["message"] and "docs/old-notes.md:5,6,8" in note["message"]


def test_wrong_flyctl_commands_in_a_script_that_runs_are_warnings_of_their_own(ready_checkout):
    (ready_checkout / "scripts").mkdir(exist_ok=True)
    (ready_checkout / "scripts" / "ops.sh").write_text("#!/bin/sh\nfly ips allocate v4 --app bezgelor\n"
                                                       "fly releases rollback 3 --app bezgelor\n")
    code, report = verify_json(ready_checkout)
    assert code == 0
    lines = {(f["file"], f["line"], f["message"].split("`")[1]) for f in findings(report, "scripts", "warning")}
    assert lines == {("scripts/ops.sh", 2, "fly ips allocate"), ("scripts/ops.sh", 3, "fly releases rollback")}


# --- config evaluated by real Elixir (Config.Reader) ----------------------------------------------


def runtime_edit(root: Path, old: str, new: str) -> None:
    path = root / "config/runtime.exs"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_runtime_exs_with_a_hardcoded_port_is_caught_by_evaluating_it(ready_checkout):
    runtime_edit(ready_checkout, "port: port]", "port: 4000]")
    code, report = verify_json(ready_checkout)
    assert code == 1
    f = next(f for f in findings(report, "runtime", "error") if "http port is 4000" in f["message"])
    assert "PORT" in f["fix"] and "inv init" in f["fix"]


def test_runtime_exs_that_boots_without_cloak_key_is_an_error(ready_checkout):
    """The seed's pattern: a development key as the fallback, so a missing secret goes unnoticed."""
    runtime_edit(ready_checkout, 'System.get_env("CLOAK_KEY") ||',
                 'System.get_env("CLOAK_KEY", "3Jnb0hZiHIzHTOih7t2cTEPEpY98Tu1wvQkPfq/XwqE=") ||')
    _, report = verify_json(ready_checkout)
    assert has(report, "runtime", "evaluates for :prod without CLOAK_KEY")
    # the key from the variable still reaches the Vault, so that is all it reports
    assert len(findings(report, "runtime")) == 1


def test_runtime_exs_values_that_do_not_reach_the_repo_vault_and_world_server(ready_checkout):
    runtime_edit(ready_checkout, "url: database_url,", 'url: "ecto://postgres@localhost/bezgelor",')
    runtime_edit(ready_checkout, "ssl: false,", "ssl: true,")
    runtime_edit(ready_checkout, "socket_options: socket_options ++ [keepalive: true],", "")
    runtime_edit(ready_checkout, "key: Base.decode64!(cloak_key)", "key: cloak_key")
    runtime_edit(ready_checkout, "public_address: world_public_address", 'public_address: "127.0.0.1"')
    code, report = verify_json(ready_checkout)
    assert code == 1
    assert has(report, "runtime", "BezgelorDb.Repo's url is set to something else, not DATABASE_URL")
    assert has(report, "runtime", "BezgelorDb.Repo demands TLS of Postgres Flex")      # Flex has no TLS inside
    assert has(report, "runtime", "BezgelorDb.Repo connects over IPv4 only")           # .flycast is IPv6 only
    assert has(report, "runtime", "CLOAK_KEY's base64 text, not the 32 bytes")
    assert has(report, "runtime", "public_address comes from WORLD_PUBLIC_ADDRESS")
    # the hard-coded url is never echoed (it may hold a real password)
    assert not any("postgres@localhost" in f["message"] for f in report["findings"])


def test_runtime_exs_that_fails_to_evaluate_is_named_with_its_line(ready_checkout):
    path = ready_checkout / "config/runtime.exs"
    with path.open("a") as fh:
        fh.write("\nconfig :bezgelor_world, greeting: undefined_helper()\n")
    line = len(path.read_text().splitlines())
    _, report = verify_json(ready_checkout)
    f = next(f for f in findings(report, "runtime", "error") if "fails" in f["message"])
    assert f["file"] == "config/runtime.exs" and f["line"] == line
    assert "undefined_helper" in f["message"] and f"at line {line}" in f["fix"]


def test_a_config_that_calls_into_a_dependency_is_skipped_as_needing_deps_not_failed(ready_checkout):
    with (ready_checkout / "config/config.exs").open("a") as fh:
        fh.write("\nconfig :bezgelor_portal, esbuild_version: Esbuild.configured_version()\n")
    code, report = verify_json(ready_checkout)
    assert code == 0
    note = next(f for f in findings(report, "config", "info"))
    assert "skipped (needs deps)" in note["message"] and "Esbuild" in note["message"]
    assert "mix compile" in note["fix"]


def test_an_env_config_that_fails_to_evaluate_for_prod_is_an_error(ready_checkout):
    with (ready_checkout / "config/config.exs").open("a") as fh:
        fh.write('\nimport_config "releases.exs"\n')
    _, report = verify_json(ready_checkout)
    assert has(report, "config", "could not read file")


# --- mix.exs overlays, memory advice, health routes behind a pipeline ------------------------------


def test_the_seeds_overlay_key_is_flagged_as_ignored_by_mix(ready_checkout):
    edit(ready_checkout / "mix.exs", "include_executables_for: [:unix]",
         'include_executables_for: [:unix],\n        overlay: "rel/overlays"')
    code, report = verify_json(ready_checkout)
    assert code == 0                                    # rel/overlays is still copied (the default)
    f = next(f for f in findings(report, "mixexs", "warning"))
    assert "`overlay:`" in f["message"] and "ignores" in f["message"]
    assert "remove `overlay:`" in f["fix"] and "copies rel/overlays" in f["fix"]
    assert "overlay:" in (ready_checkout / "mix.exs").read_text().splitlines()[f["line"] - 1]


def test_a_release_whose_templates_path_moves_its_overlays_is_missing_the_scripts_where_mix_looks(ready_checkout):
    edit(ready_checkout / "mix.exs", "include_executables_for: [:unix]",
         'include_executables_for: [:unix],\n        rel_templates_path: "rel/portal"')
    _, report = verify_json(ready_checkout)
    for script in ("migrate", "server"):
        assert has(report, "overlays", "is missing", file=f"rel/portal/overlays/bin/{script}")
    assert not any("overlays:" in f["fix"] for f in report["findings"])     # never an `overlays:` that hides


def test_memory_advice_never_scales_memory_past_what_the_cpus_allow(ready_checkout):
    data = ready_checkout / "apps/bezgelor_data/priv/data/huge.json"
    with data.open("wb") as fh:  # sparse: 6 GB of "game data" needs more than 2 shared CPUs allow
        fh.truncate(6 * 1024 ** 3)
    _, report = verify_json(ready_checkout)
    fix = next(f for f in findings(report, "memory", "error"))["fix"]
    assert "fly scale memory" not in fix
    assert "fly scale vm shared-cpu-8x --vm-memory" in fix and "BEZGELOR_VM_CPUS=8" in fix


def test_health_route_behind_the_browser_pipeline_is_flagged(ready_checkout):
    router = ready_checkout / "apps/bezgelor_portal/lib/bezgelor_portal_web/router.ex"
    text = router.read_text()
    marker = "  # bezgelor-tasks: health routes"
    router.write_text(text.replace(marker, '  scope "/", BezgelorPortalWeb do\n    pipe_through :browser\n\n'
                                           '    get "/health", HealthController, :index\n  end\n\n' + marker, 1))
    code, report = verify_json(ready_checkout)
    assert code == 0
    warned = findings(report, "health", "warning")
    assert len(warned) == 1 and "/health is routed through the pipeline(s) :browser" in warned[0]["message"]
    assert router.read_text().splitlines()[warned[0]["line"] - 1].strip().startswith('get "/health"')


# --- every finding says what to do ----------------------------------------------------------------


ACTION = re.compile(r"`inv [a-z]|`[^`]+`|\b(?:add|set|remove|edit|move|write|rename|change|restore|wrap|require|"
                    r"raise|delete|list|pass|pipe|use|keep|call|start|copy|chmod|upgrade|read|put|point|also)\b")


def test_every_finding_names_a_concrete_action(ready_checkout, tmp_path):
    untouched = copy_fixture(tmp_path / "untouched")
    git_init(untouched)
    _, raw = verify_json(untouched)
    runtime_edit(ready_checkout, "port: port]", "port: 4000]")
    edit(ready_checkout / "fly.toml", 'auto_stop_machines = "off"', "auto_stop_machines = false")
    (ready_checkout / "rel/overlays/bin/migrate").chmod(0o644)
    _, broken = verify_json(ready_checkout)
    all_findings = raw["findings"] + broken["findings"]
    assert len(all_findings) > 20
    for f in all_findings:
        assert f["fix"].strip() and ACTION.search(f["fix"]), f
        mentions_file = any(name in f["fix"] for name in (f["file"], Path(f["file"]).name, "inv "))
        assert mentions_file or "`" in f["fix"], f


def test_one_verify_or_init_starts_one_elixir_process_that_answers_every_question(ready_checkout, tmp_path):
    real = shutil.which("elixir")
    if real is None:
        pytest.skip("Elixir is not installed")
    log, shims = tmp_path / "elixir-starts", tmp_path / "shims"
    shims.mkdir()
    (shims / "elixir").write_text(f'#!/bin/sh\necho started >> "{log}"\nexec "{real}" "$@"\n')
    (shims / "elixir").chmod(0o755)
    env = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(Path(__file__).parents[1]),
                           "verify", "--root", str(ready_checkout)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert log.read_text().splitlines() == ["started"]
    log.unlink()
    proc = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(Path(__file__).parents[1]),
                           "init", "--check", "--root", str(ready_checkout)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert log.read_text().splitlines() == ["started"]


def test_a_finding_the_user_has_judged_can_be_silenced_by_its_id_and_verify_lists_it_as_ignored(ready_checkout):
    (ready_checkout / "scripts").mkdir(exist_ok=True)
    (ready_checkout / "scripts" / "ops.sh").write_text("#!/bin/sh\nfly releases rollback 3 --app bezgelor\n")
    _, report = verify_json(ready_checkout)
    (warned,) = findings(report, "scripts", "warning")
    assert warned["id"] == "scripts.releases-rollback"       # stable: the same on every checkout
    (ready_checkout / ".bezgelor-verify-ignore").write_text(
        f"{warned['id']} scripts/ops.sh  # kept for the old cluster, never run\n")
    code, report = verify_json(ready_checkout)
    assert code == 0 and findings(report, "scripts", "warning") == []
    assert [(i["id"], i["file"], i["why"]) for i in report["ignored"]] == [
        (warned["id"], "scripts/ops.sh", "kept for the old cluster, never run")]
    text = run_inv_text(ready_checkout)
    assert "ignored scripts/ops.sh:2 [scripts.releases-rollback]" in text


def run_inv_text(root: Path) -> str:
    proc = inv("verify", "--root", str(root))
    return proc.stdout + proc.stderr
