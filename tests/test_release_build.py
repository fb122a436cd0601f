"""`inv release.build` (plan task 9) on a real umbrella: init, build the release with real mix, run bin/migrate."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.elixir, pytest.mark.slow]


def inv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
                          capture_output=True, text=True, env=env, timeout=900)


def release_env(log: Path) -> dict[str, str]:
    """What Fly would give the machine: the secrets runtime.exs requires (dummy values)."""
    return {**os.environ, "MIX_ENV": "prod", "FIXTURE_MIGRATOR_LOG": str(log),
            "SECRET_KEY_BASE": "s" * 64, "CLOAK_KEY": base64.b64encode(b"k" * 32).decode(),
            "DATABASE_URL": "ecto://u:p@localhost/bezgelor", "WORLD_PUBLIC_ADDRESS": "127.0.0.1",
            "RELEASE_COOKIE": "fixture-cookie"}


def test_init_then_release_build_makes_a_release_whose_migrate_script_runs(nodeps_checkout, tmp_path):
    root = str(nodeps_checkout)
    init = inv("init", "--root", root)
    assert init.returncode == 0, init.stderr + init.stdout

    built = inv("release.build", "--root", root, "--json")
    assert built.returncode == 0, built.stderr + built.stdout
    result = json.loads(built.stdout)
    assert result["release"] == "bezgelor"
    assert set(result["scripts"]) == {"bezgelor", "migrate", "server"}
    bindir = nodeps_checkout / "_build" / "prod" / "rel" / "bezgelor" / "bin"
    for script in ("bezgelor", "migrate", "server"):
        assert os.access(bindir / script, os.X_OK)

    log = tmp_path / "migrator.log"
    migrate = subprocess.run([str(bindir / "migrate")], env=release_env(log), capture_output=True, text=True,
                             timeout=120)
    assert migrate.returncode == 0, migrate.stderr + migrate.stdout
    assert "run BezgelorDb.Repo up" in log.read_text()

    status = subprocess.run([str(bindir / "migrate"), "status"], env=release_env(log), capture_output=True,
                            text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    line = next(ln for ln in status.stdout.splitlines() if ln.startswith("BEZGELOR_MIGRATIONS "))
    repos = json.loads(line.split(" ", 1)[1])["repos"]
    assert repos[0]["repo"] == "BezgelorDb.Repo"
    assert {m["status"] for m in repos[0]["migrations"]} <= {"up", "down"}


def test_release_build_dry_run_shows_the_mix_command_and_builds_nothing(nodeps_checkout):
    proc = inv("release.build", "--root", str(nodeps_checkout), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would run mix release bezgelor --overwrite" in proc.stdout
    assert not (nodeps_checkout / "_build").exists()


def test_release_build_without_mix_is_a_clear_error(nodeps_checkout, tmp_path):
    bindir = tmp_path / "bin-without-mix"
    bindir.mkdir()
    env = {**os.environ, "PATH": f"{bindir}:{Path(sys.executable).parent}"}
    proc = inv("release.build", "--root", str(nodeps_checkout), env=env)
    assert proc.returncode == 1
    assert "`mix` is not installed" in proc.stderr and "Fix:" in proc.stderr and "Traceback" not in proc.stderr


def test_release_build_names_the_missing_overlay_scripts(nodeps_checkout):
    """Without init, mix.exs has no release: mix fails and the error says what to run."""
    proc = inv("release.build", "--root", str(nodeps_checkout))
    assert proc.returncode == 1
    assert "mix release bezgelor" in proc.stderr and "inv verify" in proc.stderr
