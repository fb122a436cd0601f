"""Migration-aware rollback: every deploy records its code's migrations; `rollback.app` refuses to run old
code on a database that is ahead of it, names the way out (`inv db.rollback --to A`, then the rollback),
and `--force` goes ahead with the risk stated in the summary and the journal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.deployrun import (
    commit_all,
    deployable_checkout,  # noqa: F401 (fixture)
    inv,
)

APP = "bezgelor"
MIGRATIONS = Path("apps/bezgelor_db/priv/repo/migrations")
V_ACCOUNTS, V_CHARACTERS, A = "20240101000000", "20240115120000", "20240302093000"  # the fixture's migrations
B = "20240410120000"

GUILDS_MIGRATION = """defmodule BezgelorDb.Repo.Migrations.CreateGuilds do
  use Ecto.Migration

  def change do
    create table(:guilds) do
      add :name, :string, null: false
    end
  end
end
"""


def journal(root: Path) -> list[dict[str, Any]]:
    path = root / ".bezgelor" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def deploy(root: Path, *extra: str) -> None:
    ran = inv("deploy.full", "--root", str(root), "--yes", "--skip-backup", *extra)
    assert ran.returncode == 0, ran.output


def add_migration_b_and_deploy_v2(root: Path) -> None:
    (root / MIGRATIONS / f"{B}_create_guilds.exs").write_text(GUILDS_MIGRATION)
    commit_all(root, "guilds", tag="v0.2.0")
    deploy(root)


def listed(root: Path) -> dict[int, dict[str, Any]]:
    ran = inv("rollback.list", "--root", str(root), "--json")
    assert ran.returncode == 0, ran.output
    return {row["version"]: row for row in json.loads(ran.stdout)}


@pytest.fixture
def v1_and_v2_with_migration_b(deployable_checkout: Path, fake_fly, game_servers) -> Path:  # noqa: ANN001, F811
    deploy(deployable_checkout)
    add_migration_b_and_deploy_v2(deployable_checkout)
    assert fake_fly.applied_migrations(APP)[-1] == int(B)
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.2.0")
    return deployable_checkout


def test_a_deploy_records_its_codes_migrations_in_the_journal_and_as_image_labels(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    deploy(deployable_checkout)

    deployed = [e for e in journal(deployable_checkout) if e["event"] == "deployed"]
    assert len(deployed) == 1
    record = deployed[0]
    assert record["release_version"] == 1 and record["version"] == "v0.1.0"
    assert record["image_ref"].endswith(":v0.1.0")
    assert record["migrations"] == [V_ACCOUNTS, V_CHARACTERS, A] and record["newest_migration"] == A
    assert record["migrations_source"].startswith("git HEAD ")
    labels = fake_fly.images()[record["image_ref"]]["labels"]
    assert labels["org.bezgelor.migrations.newest"] == A
    assert labels["org.bezgelor.migrations.count"] == "3"
    assert labels["org.bezgelor.git"] == "v0.1.0"


def test_rolling_back_past_a_migration_is_refused_until_the_database_is_rolled_back_first(
        v1_and_v2_with_migration_b: Path, fake_fly) -> None:  # noqa: ANN001
    root = v1_and_v2_with_migration_b
    rows = listed(root)
    assert rows[2]["newest_migration"] == B and rows[2]["safe_now"] == "running now"
    assert rows[1]["newest_migration"] == A and rows[1]["safe_now"] == f"no: db ahead ({B})"
    assert rows[1]["created_at"] and rows[1]["image_ref"].endswith(":v0.1.0") and rows[1]["status"] == "complete"
    text = inv("rollback.list", "--root", str(root)).stdout
    assert "newest migration" in text and "safe now" in text and f"database: newest applied migration {B}" in text
    v1_line = next(line for line in text.splitlines() if line.lstrip(" +*").startswith("v1 "))  # + offered
    assert A in v1_line and f"no: db ahead ({B})" in v1_line and ":v0.1.0" in v1_line
    before = len(fake_fly.releases(APP))

    refused = inv("rollback.app", "--root", str(root), "--version", "1", "--yes")

    assert refused.returncode != 0
    assert "database is ahead of release v1" in refused.stderr and B in refused.stderr
    assert f"inv db.rollback --to {A}" in refused.output and "backs the database up first" in refused.output
    assert "then inv rollback.app --version 1" in refused.output
    assert "--force" in refused.stderr and "risk" in refused.stderr
    assert len(fake_fly.releases(APP)) == before
    assert not (root / ".bezgelor" / f"deploy-{APP}.lock").exists()

    db = inv("db.rollback", "--root", str(root), "--to", A, "--yes", "--confirm-app", APP, "--skip-backup")
    assert db.returncode == 0, db.output
    assert "NOT backing up" in db.output and "NO backup was taken" in db.output
    assert fake_fly.applied_migrations(APP)[-1] == int(A)
    assert listed(root)[1]["safe_now"] == "yes"

    allowed = inv("rollback.app", "--root", str(root), "--version", "1", "--yes")

    assert allowed.returncode == 0, allowed.output
    live = fake_fly.live_release(APP)
    assert live["image_ref"].endswith(":v0.1.0") and live["version"] == 3
    assert "FORCED" not in allowed.output
    # The new release carries v1's record, so a later list or rollback knows what it contains.
    assert listed(root)[3]["newest_migration"] == A


def test_force_rolls_back_anyway_with_the_risk_in_the_summary_and_the_journal(
        v1_and_v2_with_migration_b: Path, fake_fly) -> None:  # noqa: ANN001
    root = v1_and_v2_with_migration_b

    forced = inv("rollback.app", "--root", str(root), "--version", "1", "--yes", "--force")

    assert forced.returncode == 0, forced.output
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.1.0")
    summary = forced.output[forced.output.index("Summary"):]
    assert "FORCED past the migration check" in summary and B in summary
    events = journal(root)
    assert [e for e in events if e["event"] == "rollback-forced"][0]["migration_check"]["ahead"] == [B]
    rollback = [e for e in events if e["event"] == "rollback"][-1]
    assert rollback["forced"] is True and rollback["migration_check"]["label"] == "unsafe"
    assert fake_fly.applied_migrations(APP)[-1] == int(B)  # the database was not touched


def test_a_release_without_a_migration_record_is_refused_without_force(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    root = deployable_checkout
    deploy(root)
    # v1 was deployed from elsewhere, from code this checkout never had: its journal knows nothing of it,
    # and git cannot say what v1's image holds (its tag names no commit here). With the tag, git would tell:
    # tests/test_ci_runner_story.py.
    (root / ".bezgelor" / "journal.jsonl").unlink()
    subprocess.run(["git", "tag", "-d", "v0.1.0"], cwd=root, check=True, capture_output=True)
    commit_all(root, "second", tag="v0.2.0")
    deploy(root)
    assert listed(root)[1]["safe_now"] == "unknown: no record"

    refused = inv("rollback.app", "--root", str(root), "--version", "1", "--yes")

    assert refused.returncode != 0
    assert "No migration record exists for release v1" in refused.stderr
    assert "inv rollback.app --version 1 --force" in refused.stderr
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.2.0")

    forced = inv("rollback.app", "--root", str(root), "--version", "1", "--yes", "--force")
    assert forced.returncode == 0, forced.output
    assert "FORCED past the migration check" in forced.output
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.1.0")


def test_a_failed_deploy_that_migrated_the_database_is_not_rolled_back_automatically(
        deployable_checkout: Path, fake_fly, game_servers, monkeypatch) -> None:  # noqa: ANN001, F811
    root = deployable_checkout
    monkeypatch.setenv("BEZGELOR_HEALTH_TIMEOUT", "1")
    deploy(root)
    (root / MIGRATIONS / f"{B}_create_guilds.exs").write_text(GUILDS_MIGRATION)
    commit_all(root, "guilds, broken", tag="v0.2.0")
    fake_fly.set_image_behavior("v0.2.0", "down")

    ran = inv("deploy.full", "--root", str(root), "--yes", "--skip-backup", "--json")

    assert ran.returncode != 0
    outcome = json.loads(ran.stdout)
    assert outcome["rollback"]["done"] is False
    assert outcome["rollback"]["migration_check"]["ahead"] == [B]
    assert "not rolling back automatically" in ran.stderr and f"inv db.rollback --to {A}" in ran.stderr
    # Nothing was redeployed behind the user's back: the release that migrated is still the last one.
    assert fake_fly.releases(APP)[-1]["image_ref"].endswith(":v0.2.0")
    assert any(e["event"] == "rollback-refused" and e.get("automatic") for e in journal(root))


def test_a_failed_deploy_without_new_migrations_still_rolls_back_automatically(
        deployable_checkout: Path, fake_fly, game_servers, monkeypatch) -> None:  # noqa: ANN001, F811
    root = deployable_checkout
    monkeypatch.setenv("BEZGELOR_HEALTH_TIMEOUT", "1")
    deploy(root)
    commit_all(root, "broken, same schema", tag="v0.2.0")
    fake_fly.set_image_behavior("v0.2.0", "down")

    ran = inv("deploy.full", "--root", str(root), "--yes", "--skip-backup", "--json")

    assert ran.returncode != 0
    assert json.loads(ran.stdout)["rollback"]["done"] is True
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.1.0")


@pytest.mark.postgres
def test_db_rollback_backs_the_database_up_first_through_fly_proxy(
        v1_and_v2_with_migration_b: Path, fake_fly, pg_server, game_db, monkeypatch) -> None:  # noqa: ANN001
    root = v1_and_v2_with_migration_b
    # The fake's `fly proxy` to the Fly database reaches a real PostgreSQL holding game data.
    fake_fly.set_pg_proxy_target("bezgelor-db", "127.0.0.1", pg_server.port)
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    monkeypatch.setenv("BEZGELOR_DB_NAME", game_db)
    monkeypatch.setenv("BEZGELOR_DB_USER", pg_server.user)

    db = inv("db.rollback", "--root", str(root), "--to", A, "--yes", "--confirm-app", APP)

    assert db.returncode == 0, db.output
    backups = [e for e in journal(root) if e["event"] == "db-rollback"]
    assert backups and backups[-1]["backup"] and backups[-1]["reverted"] == [int(B)]
    made = backups[-1]["backup"]
    assert f"the data before it is in backup {made}" in db.output
    manifest = json.loads((root / ".bezgelor" / "backups" / made / "manifest.json").read_text())
    assert manifest["row_counts"]["public.items"] == 3000
    assert fake_fly.applied_migrations(APP)[-1] == int(A)
