"""deploy.full's backup slot: an account with data is backed up before the release command migrates it.

The fake flyctl's `fly proxy` forwards to a real PostgreSQL holding a game database, so the backup
taken before the new release is a real pg_dump that restores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.deployrun import commit_all, deployable_checkout, inv  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.elixir]
APP, DB = "bezgelor", "bezgelor-db"


@pytest.fixture
def account_with_data(deployable_checkout: Path, fake_fly, game_servers, pg_server, game_db, monkeypatch):  # noqa: F811
    """v0.1.0 deployed; its database (a real PostgreSQL behind `fly proxy`) holds players' rows."""
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    monkeypatch.setenv("BEZGELOR_DB_NAME", game_db)
    monkeypatch.setenv("BEZGELOR_DB_USER", pg_server.user)
    first = inv("deploy.full", "--root", str(deployable_checkout), "--yes")
    assert first.returncode == 0, first.output
    fake_fly.set_pg_proxy_target(DB, "127.0.0.1", pg_server.port)
    (deployable_checkout / "CHANGELOG.md").write_text("v0.2.0: new quests\n")
    commit_all(deployable_checkout, "v0.2.0", tag="v0.2.0")
    return deployable_checkout


def journal(co: Path) -> list[dict]:
    return [json.loads(line) for line in (co / ".bezgelor" / "journal.jsonl").read_text().splitlines()]


def test_a_deploy_to_an_account_with_data_backs_up_first_and_journals_it(account_with_data: Path, fake_fly,
                                                                         pg_server) -> None:
    ran = inv("deploy.full", "--root", str(account_with_data), "--yes")

    assert ran.returncode == 0, ran.output
    backups = [p for p in (account_with_data / ".bezgelor" / "backups").iterdir() if not p.name.startswith(".")]
    assert len(backups) == 1
    made = json.loads((backups[0] / "manifest.json").read_text())
    assert made["release_version"] == "1" and made["row_counts"]["public.items"] == 3000
    record = next(e for e in journal(account_with_data) if e["event"] == "predeploy-backup")
    assert record["backup"] == backups[0].name and record["live_release"] == "1"
    assert record["deploying_version"] == "v0.2.0"
    # the backup was taken before the release that migrates: proxy call precedes the deploy by image
    order = [c["cmd"] for c in fake_fly.calls()]
    last_deploy = max(i for i, c in enumerate(order) if c == "deploy")
    assert "proxy" in order[:last_deploy]
    assert "backup" in ran.stdout and backups[0].name in ran.stdout
    assert pg_server.password not in ran.output


def test_skip_backup_deploys_without_one_and_says_so(account_with_data: Path, fake_fly) -> None:
    ran = inv("deploy.full", "--root", str(account_with_data), "--yes", "--skip-backup")

    assert ran.returncode == 0, ran.output
    assert not (account_with_data / ".bezgelor" / "backups").exists() or not [
        p for p in (account_with_data / ".bezgelor" / "backups").iterdir() if not p.name.startswith(".")]
    assert "proxy" not in [c["cmd"] for c in fake_fly.calls()]
    assert "SKIPPED (--skip-backup)" in ran.stdout


def test_a_failed_backup_stops_the_deploy_before_anything_migrates(account_with_data: Path, fake_fly) -> None:
    fake_fly.fault("proxy", "fail_always")
    releases_before = len(fake_fly.releases(APP))

    ran = inv("deploy.full", "--root", str(account_with_data), "--yes")

    assert ran.returncode != 0
    assert "Step `backup`" in ran.stderr and "--skip-backup" in ran.stderr
    assert len(fake_fly.releases(APP)) == releases_before
    assert not (account_with_data / ".bezgelor" / f"deploy-{APP}.lock").exists()
