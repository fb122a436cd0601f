"""The generated workflow's story: every tag is deployed by a fresh CI runner — a new clone, an empty
`.bezgelor/`, no password file — and what a later run needs comes from Fly and git, never from a cache.

Runner 1 deploys v0.1.0 to a fresh account. Runner 2 deploys v0.2.0, which adds a migration: it takes its
pre-deploy backup with the database credentials the app's machine sees (`fly ssh console -C 'printenv
DATABASE_URL'`), pointing at a real PostgreSQL. Runner 3 knows which migrations each release holds from the
migrations folder at each image's git version, so it refuses to put v0.1.0's code on the migrated database
and names the way out.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.deployrun import commit_all, deployable_checkout, inv  # noqa: F401 (fixture)

# The fixture's newest migration (A) and the one v0.2.0 adds (B), as in the rollback stories.
from tests.test_rollback_migrations import GUILDS_MIGRATION as GUILDS
from tests.test_rollback_migrations import MIGRATIONS, A, B

pytestmark = [pytest.mark.postgres, pytest.mark.elixir]
APP, DB = "bezgelor", "bezgelor-db"


def runner(origin: Path, tmp_path: Path, name: str, tag: str) -> Path:
    """What a CI job does first: a fresh clone of the tag (with the tags, as actions/checkout fetch-depth 0)."""
    dest = tmp_path / name
    subprocess.run(["git", "clone", "-q", "--branch", tag, str(origin), str(dest)], check=True,
                   capture_output=True)
    assert not (dest / ".bezgelor").exists()
    return dest


def test_fresh_runners_deploy_each_tag_back_up_before_the_migration_and_know_every_releases_migrations(
        deployable_checkout: Path, fake_fly, game_servers, pg_server, game_db, tmp_path, monkeypatch):  # noqa: F811
    origin = deployable_checkout
    monkeypatch.setenv("BEZGELOR_DB_NAME", game_db)
    monkeypatch.delenv("BEZGELOR_DB_PASSWORD", raising=False)   # a runner has no password: Fly has it

    first = inv("deploy.full", "--root", str(runner(origin, tmp_path, "runner1", "v0.1.0")), "--yes")
    assert first.returncode == 0, first.output

    # The database Fly attached is the real PostgreSQL; the app's machine sees its URL (as attach set it).
    fake_fly.set_pg_proxy_target(DB, "127.0.0.1", pg_server.port)
    fake_fly.set_machine_env(APP, DATABASE_URL=f"postgres://{pg_server.user}:{pg_server.password}"
                                                f"@{DB}.flycast:5432/{game_db}?sslmode=disable")
    (origin / MIGRATIONS / f"{B}_create_guilds.exs").write_text(GUILDS)
    commit_all(origin, "guilds", tag="v0.2.0")

    second_root = runner(origin, tmp_path, "runner2", "v0.2.0")
    second = inv("deploy.full", "--root", str(second_root), "--yes")
    assert second.returncode == 0, second.output
    assert fake_fly.applied_migrations(APP)[-1] == int(B)
    backups = [p for p in (second_root / ".bezgelor" / "backups").iterdir() if not p.name.startswith(".")]
    assert len(backups) == 1, second.output                         # taken before v0.2.0 migrated
    made = json.loads((backups[0] / "manifest.json").read_text())
    assert made["row_counts"]["public.items"] == 3000
    assert any(a[-2:] == ["-C", "printenv DATABASE_URL"] for a in fake_fly.argvs("ssh console"))
    assert pg_server.password not in second.output

    third_root = runner(origin, tmp_path, "runner3", "v0.2.0")
    listed = inv("rollback.list", "--root", str(third_root), "--json")
    assert listed.returncode == 0, listed.output
    rows = {row["version"]: row for row in json.loads(listed.stdout)}
    assert rows[1]["newest_migration"] == A and rows[2]["newest_migration"] == B   # from git, not a journal
    refused = inv("rollback.app", "--root", str(third_root), "--version", "1", "--yes")
    assert refused.returncode != 0
    assert f"inv db.rollback --to {A}" in refused.stderr                       # the way out, named
    assert fake_fly.applied_migrations(APP)[-1] == int(B)                     # nothing was run on the database
