"""`inv ips.*`, `inv db.*` (migrations) and `inv build.image` against the fake flyctl, as a user runs them."""

from __future__ import annotations

import io
import json
import os
import sys

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.health import health_gate
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI
from tests.support.inv import run_inv
from tests.support.umbrella import write_release_module

APP = "bz-game"
MIGRATIONS = {20240101000000: "create_accounts", 20240102000000: "create_characters",
              20240103000000: "add_guilds"}


@pytest.fixture
def checkout(tmp_path, fake_fly, monkeypatch):
    root = tmp_path / "bezgelor"
    mig = root / "apps" / "bezgelor_db" / "priv" / "repo" / "migrations"
    mig.mkdir(parents=True)
    for version, name in MIGRATIONS.items():
        (mig / f"{version}_{name}.exs").write_text("defmodule M do\nend\n")
    (root / "fly.toml").write_text(f'app = "{APP}"\n')
    (root / "Dockerfile").write_text("FROM scratch\n")
    write_release_module(root)
    monkeypatch.setenv("BEZGELOR_FLY_APP", APP)
    monkeypatch.setenv("BEZGELOR_ROOT", str(root))
    fake_fly.add_app(APP)
    return root


def test_allocating_the_ipv4_twice_allocates_once(checkout, fake_fly):
    first = run_inv("ips.allocate")
    assert first.returncode == 0, first.stderr
    assert "dedicated IPv4 127.0.0.1" in first.stdout
    second = run_inv("ips.allocate")
    assert second.returncode == 0, second.stderr
    assert "already has the dedicated IPv4 127.0.0.1; nothing to do" in second.stdout
    assert len(fake_fly.calls("ips allocate-v4")) == 1
    listed = json.loads(run_inv("ips.list", "--json").stdout)
    assert [ip["address"] for ip in listed if ip["type"] == "v4"] == ["127.0.0.1"]


def test_a_dry_run_allocation_changes_nothing(checkout, fake_fly):
    done = run_inv("ips.allocate", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "would run fly ips allocate-v4 -a bz-game --yes" in done.stdout
    assert fake_fly.calls("ips allocate-v4") == []


def test_not_logged_in_is_one_clear_paragraph(checkout, fake_fly):
    fake_fly.logout()
    done = run_inv("ips.list")
    assert done.returncode == 1
    assert "run `fly auth login` or set FLY_API_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_flyctl_missing_from_path_is_one_clear_paragraph(checkout, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    done = run_inv("secrets.list")
    assert done.returncode == 1
    assert "flyctl (`fly`) is not installed" in done.stderr
    assert "https://fly.io/docs/flyctl/install/" in done.stderr


def _deployed(fake_fly, checkout, expect_checks_to_pass=True):
    build = run_inv("build.image", "--version", "1.0.0", "--json")
    assert build.returncode == 0, build.stderr
    ref = json.loads(build.stdout)["image_ref"]
    assert ref == f"registry.fly.io/{APP}:1.0.0"
    assert any("--build-only" in argv for argv in fake_fly.argvs("deploy"))
    fly = FlyClient(settings_load.load(checkout), Executor(ui=UI(stream=io.StringIO())))
    if expect_checks_to_pass:
        fly.deploy_image(ref, "1.0.0")
    else:
        with pytest.raises(UserError, match="did not pass their health checks"):
            fly.deploy_image(ref, "1.0.0")
    return ref


def test_migrate_then_status_then_rollback_to_a_version_with_confirmation(checkout, fake_fly):
    _deployed(fake_fly, checkout)
    status = json.loads(run_inv("db.status", "--json").stdout)
    assert status["pending"] == []  # the release command already migrated
    assert run_inv("db.migrate").returncode == 0

    refused = run_inv("db.rollback", "--to", "20240101000000")
    assert refused.returncode == 1 and "--yes --confirm-app bz-game" in refused.stderr
    wrong = run_inv("db.rollback", "--to", "20240101000000", "--yes", "--confirm-app", "other")
    assert wrong.returncode == 1
    assert fake_fly.applied_migrations(APP) == sorted(MIGRATIONS)

    dry = run_inv("db.rollback", "--to", "20240101000000", "--dry-run")
    assert dry.returncode == 0 and "would run" in dry.stdout and "add_guilds" in dry.stdout
    assert fake_fly.applied_migrations(APP) == sorted(MIGRATIONS)

    # db.rollback backs up first (through `fly proxy`; tests/test_rollback_migrations.py does that against a real
    # PostgreSQL); without a database to reach, the backup fails and nothing is reverted.
    no_backup = run_inv("db.rollback", "--to", "20240101000000", "--yes", "--confirm-app", APP)
    assert no_backup.returncode == 1 and "password" in no_backup.stderr
    assert fake_fly.applied_migrations(APP) == sorted(MIGRATIONS)

    done = run_inv("db.rollback", "--to", "20240101000000", "--yes", "--confirm-app", APP, "--skip-backup")
    assert done.returncode == 0, done.stderr
    assert "NOT backing up" in done.stdout + done.stderr
    assert fake_fly.applied_migrations(APP) == [20240101000000]
    table = run_inv("db.status").stdout
    assert "down  20240103000000  add_guilds" in table and "2 pending" in table


def test_rolling_back_to_a_version_that_is_not_applied_is_refused(checkout, fake_fly):
    _deployed(fake_fly, checkout)
    done = run_inv("db.rollback", "--to", "20990101000000", "--yes", "--confirm-app", APP)
    assert done.returncode == 1 and "not an applied migration" in done.stderr


def test_the_loopback_servers_play_the_live_release_of_the_fake(checkout, fake_fly, game_servers):
    assert game_servers.behavior == "down"  # nothing deployed yet
    fake_fly.set_image_behavior("1.0.0", "degraded")
    _deployed(fake_fly, checkout, expect_checks_to_pass=False)
    assert game_servers.behavior == "degraded"
    # long enough for at least one poll on a loaded machine
    report = health_gate(settings_load.load(checkout), UI(stream=io.StringIO()), "127.0.0.1", timeout=3)
    assert not report.ok and report.failing["world"] == "error"
    fake_fly.set_image_behavior("1.0.0", "healthy")
    report = health_gate(settings_load.load(checkout), UI(stream=io.StringIO()), "127.0.0.1",
                         expect_version="1.0.0", timeout=10)
    assert report.ok, report.summary()


def test_build_image_is_labelled_with_the_checkouts_git_version_and_pushed_without_deploying(checkout, fake_fly):
    import subprocess

    git = ["git", "-C", str(checkout), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    subprocess.run([*git, "tag", "v2.0.0"], check=True)
    done = run_inv("build.image", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"version": "v2.0.0", "image_ref": f"registry.fly.io/{APP}:v2.0.0",
                                       "dry_run": False}
    argv = fake_fly.argvs("deploy")[-1]
    assert {"--build-only", "--push", "--remote-only"} <= set(argv) and "APP_VERSION=v2.0.0" in argv
    assert fake_fly.releases(APP) == []
