"""`inv init`: the user's story on a Bezgelor-shaped checkout, through the real CLI.

verify shows the plan's bugs; init fixes them; verify is clean; a second init changes nothing;
the user's own lines survive; every file init writes parses with real Elixir; bad input is a clear
error and leaves the checkout byte-for-byte as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.elixir

USER_LINES = {
    "config/runtime.exs": ['max_players: String.to_integer(System.get_env("WORLD_MAX_PLAYERS", "500"))',
                           'config :bezgelor_portal, BezgelorPortalWeb.Endpoint, server: true'],
    "config/prod.exs": ["config :logger, level: :info", 'cache_static_manifest: "priv/static/cache_manifest.json"'],
    "apps/bezgelor_portal/lib/bezgelor_portal_web/router.ex": ['live "/realms", RealmLive.Index, :index',
                                                               "import BezgelorPortalWeb.AccountAuth",
                                                               'get "/realms", RealmController, :index'],
    "mix.exs": ["listeners: [Phoenix.CodeReloader]", '{:credo, "~> 1.7", only: [:dev, :test], runtime: false}'],
}


def inv(*args: str, env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file (outside .git) with its bytes and mode: 'unchanged' means equal snapshots."""
    out = {}
    for p in sorted(root.rglob("*")):
        if ".git" in p.relative_to(root).parts or not p.is_file():
            continue
        out[str(p.relative_to(root))] = (p.read_bytes(), p.stat().st_mode)
    return out


def no_elixir_env(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "bin-without-elixir"
    bindir.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{bindir}:{Path(sys.executable).parent}"}
    assert shutil.which("elixir", path=env["PATH"]) is None
    return env


def test_verify_finds_the_bugs_init_fixes_them_verify_is_clean_and_a_second_init_changes_nothing(
        bezgelor_checkout):
    root = str(bezgelor_checkout)
    before = inv("verify", "--root", root, "--json")
    assert before.returncode == 1
    assert json.loads(before.stdout)["counts"]["error"] > 5

    first = inv("init", "--root", root)
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout and "patched" in first.stdout
    assert "every .ex/.exs written parses with Elixir" in first.stdout

    after = inv("verify", "--root", root, "--json")
    report = json.loads(after.stdout)
    assert report["findings"] == [] and report["skipped"] == [], report
    assert after.returncode == 0

    written = snapshot(bezgelor_checkout)
    second = inv("init", "--root", root)
    assert second.returncode == 0
    assert "nothing to change" in second.stdout
    assert snapshot(bezgelor_checkout) == written

    for rel, lines in USER_LINES.items():
        text = (bezgelor_checkout / rel).read_text()
        for line in lines:
            assert line in text, f"{rel} lost the user's line {line!r}"


def test_every_file_init_writes_parses_with_real_elixir_and_prod_exs_evaluates(bezgelor_checkout):
    proc = inv("init", "--root", str(bezgelor_checkout), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    elixir_files = [f["file"] for f in result["files"] if f["written"] and f["file"].endswith((".ex", ".exs"))]
    assert {"mix.exs", "config/prod.exs", "config/runtime.exs"} <= set(elixir_files)
    assert any(f.endswith("health_controller.ex") for f in elixir_files)
    for rel in elixir_files:
        check = subprocess.run(["elixir", "-e", "Code.string_to_quoted!(File.read!(hd(System.argv())))", "--",
                                str(bezgelor_checkout / rel)], capture_output=True, text=True)
        assert check.returncode == 0, f"{rel}: {check.stderr}"
    evaluated = subprocess.run(
        ["elixir", "-e", 'cfg = Config.Reader.read!("config/prod.exs", env: :prod); '
         'IO.inspect(cfg[:bezgelor_portal][BezgelorPortalWeb.Endpoint][:force_ssl])'],
        cwd=bezgelor_checkout, capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    assert '"/health"' in evaluated.stdout and "exclude" in evaluated.stdout


def test_init_check_exits_1_with_diffs_and_changes_nothing_then_0_once_applied(bezgelor_checkout):
    root = str(bezgelor_checkout)
    before = snapshot(bezgelor_checkout)
    check = inv("init", "--root", root, "--check")
    assert check.returncode == 1
    assert "--- a/config/prod.exs" in check.stdout and "+++ b/Dockerfile" in check.stdout
    assert snapshot(bezgelor_checkout) == before
    assert inv("init", "--root", root).returncode == 0
    again = inv("init", "--root", root, "--check")
    assert again.returncode == 0, again.stdout
    assert "nothing to change" in again.stdout


def test_init_dry_run_prints_the_diffs_and_writes_nothing(bezgelor_checkout):
    before = snapshot(bezgelor_checkout)
    proc = inv("init", "--root", str(bezgelor_checkout), "--dry-run")
    assert proc.returncode == 0
    assert "+++ b/fly.toml" in proc.stdout and "would create" in proc.stdout
    assert snapshot(bezgelor_checkout) == before


def test_init_refuses_to_replace_a_hand_written_dockerfile_without_a_terminal_and_yes_keeps_an_orig_copy(
        bezgelor_checkout):
    mine = "FROM debian:bookworm-slim\n# my own Dockerfile\nCMD [\"true\"]\n"
    (bezgelor_checkout / "Dockerfile").write_text(mine)
    before = snapshot(bezgelor_checkout)
    refused = inv("init", "--root", str(bezgelor_checkout))
    assert refused.returncode == 1
    assert "Dockerfile" in refused.stderr and "--yes" in refused.stderr
    assert "-# my own Dockerfile" in refused.stdout          # the diff is shown
    assert snapshot(bezgelor_checkout) == before              # all or nothing: no file was written
    forced = inv("init", "--root", str(bezgelor_checkout), "--yes")
    assert forced.returncode == 0, forced.stderr
    assert (bezgelor_checkout / "Dockerfile.orig").read_text() == mine
    assert "# my own Dockerfile" not in (bezgelor_checkout / "Dockerfile").read_text()


def test_init_force_is_still_accepted_as_the_old_name_of_yes(bezgelor_checkout):
    (bezgelor_checkout / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    forced = inv("init", "--root", str(bezgelor_checkout), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (bezgelor_checkout / "Dockerfile.orig").read_text() == "FROM debian:bookworm-slim\n"


def test_init_json_lists_every_file_with_its_action_and_why(bezgelor_checkout):
    proc = inv("init", "--root", str(bezgelor_checkout), "--dry-run", "--json")
    data = json.loads(proc.stdout)
    assert data["mode"] == "dry-run" and data["changed"] > 0
    actions = {f["file"]: f["action"] for f in data["files"]}
    assert actions["config/prod.exs"] == "patch" and actions["fly.toml"] == "create"
    assert all(f["why"] for f in data["files"])


def test_init_writes_every_area_that_has_files_to_write():
    from bezgelor_tasks.areas import registry

    assert sum(a.changes is not None for a in registry()) == 12


# --- bad input ------------------------------------------------------------------------------------


def test_init_on_a_folder_that_is_not_an_umbrella_is_a_clear_error(bezgelor_checkout):
    app = bezgelor_checkout / "apps" / "bezgelor_portal"
    before = snapshot(bezgelor_checkout)
    proc = inv("init", "--root", str(app))
    assert proc.returncode == 1
    assert "not an umbrella" in proc.stderr and "Fix:" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(bezgelor_checkout) == before


def test_init_on_an_unparsable_mix_exs_names_the_file_and_line_and_changes_nothing(bezgelor_checkout):
    mix = bezgelor_checkout / "mix.exs"
    lines = mix.read_text().splitlines(keepends=True)
    lines.insert(6, "      version: \"0.1.0\",,\n")       # line 7
    mix.write_text("".join(lines))
    before = snapshot(bezgelor_checkout)
    proc = inv("init", "--root", str(bezgelor_checkout))
    assert proc.returncode == 1
    assert "mix.exs:7" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(bezgelor_checkout) == before


def test_init_with_a_read_only_file_is_a_clear_error_and_changes_nothing(bezgelor_checkout):
    prod = bezgelor_checkout / "config" / "prod.exs"
    prod.chmod(0o444)
    before = snapshot(bezgelor_checkout)
    # We run as root, who may write anything: drop the override so permissions count, as for a user.
    proc = inv("init", "--root", str(bezgelor_checkout), prefix=("setpriv", "--bounding-set=-dac_override,-fowner"))
    assert proc.returncode == 1
    assert "config/prod.exs" in proc.stderr and "permission" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr
    assert snapshot(bezgelor_checkout) == before


def test_init_without_elixir_refuses_to_write_unchecked_files(bezgelor_checkout, tmp_path):
    env = no_elixir_env(tmp_path)
    before = snapshot(bezgelor_checkout)
    proc = inv("init", "--root", str(bezgelor_checkout), env=env)
    assert proc.returncode == 1
    assert "Elixir is not installed" in proc.stderr and "--skip-syntax-check" in proc.stderr
    assert snapshot(bezgelor_checkout) == before
    check = inv("init", "--root", str(bezgelor_checkout), "--check", env=env)
    assert check.returncode == 1 and "SKIPPED" in check.stdout
    assert snapshot(bezgelor_checkout) == before


def test_init_without_elixir_writes_when_told_to_and_says_loudly_it_did_not_check(bezgelor_checkout, tmp_path):
    env = no_elixir_env(tmp_path)
    proc = inv("init", "--root", str(bezgelor_checkout), "--skip-syntax-check", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "SKIPPED" in proc.stdout and "NOT checked" in proc.stdout
    assert (bezgelor_checkout / "fly.toml").is_file()


def test_demo_copies_the_example_shows_the_bugs_fixes_them_and_verifies_clean(tmp_path):
    dest = tmp_path / "demo-checkout"
    proc = inv("demo", "--dest", str(dest))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = proc.stdout
    assert out.index("outside `force_ssl`") < out.index("2. init") < out.index("ready to deploy")
    assert (dest / ".git").is_dir() and (dest / "fly.toml").is_file()
    again = inv("demo", "--dest", str(dest))
    assert again.returncode == 1 and "never overwrites" in again.stderr


def test_a_checkout_that_already_has_a_portal_release_gets_ours_beside_it(bezgelor_checkout):
    from tests.support.umbrella import make_portal_release_variant

    make_portal_release_variant(bezgelor_checkout)
    assert inv("init", "--root", str(bezgelor_checkout)).returncode == 0
    proc = inv("verify", "--root", str(bezgelor_checkout), "--json")
    report = json.loads(proc.stdout)
    assert report["counts"]["error"] == 0, report
    assert "bezgelor_portal:" in (bezgelor_checkout / "mix.exs").read_text()
