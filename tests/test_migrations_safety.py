"""Rolling the app back is refused when the database is ahead of the target release's migrations."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.records import parse_migration_status
from bezgelor_tasks.migrations import (
    assess,
    code_migrations_at,
    ecto_rollback_target,
    ls_tree_command,
    versions_from_names,
)
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI

V1, V2, V3 = "20240101000000", "20240215093000", "20240301120000"


# -- the decision -----------------------------------------------------------------------------------------

def test_rolling_back_to_a_release_with_the_same_migrations_is_safe():
    s = assess(V2, V2, [V1, V2], target_version=7)
    assert s.safe is True and s.way_out == [] and s.ahead == ()


def test_rolling_back_when_the_database_is_behind_the_target_is_safe():
    s = assess(V3, V2, [V1, V2], target_version=7)
    assert s.safe is True
    assert "bring it to " + V3 in s.reason


def test_rolling_back_past_a_migration_is_refused_with_the_exact_way_out():
    s = assess(V1, V3, [V1, V2, V3], target_version=4)
    assert s.safe is False and s.label == "unsafe"
    assert s.ahead == (V2, V3)
    assert V2 in s.reason and V3 in s.reason
    assert s.way_out[0].startswith(f"inv db.rollback --to {V1}")
    assert "backs the database up first" in s.way_out[0]
    assert s.way_out[1] == "then inv rollback.app --version 4"
    assert "--force" in s.way_out[2] and "risk" in s.way_out[2]


def test_a_release_without_a_migration_record_needs_force_instead_of_a_guess():
    s = assess(None, V3, [V1, V2, V3], target_version=2)
    assert s.safe is None and s.label == "unknown"
    assert "No migration record" in s.reason
    assert s.way_out == ["check the migrations yourself, then `inv rollback.app --version 2 --force`"]


def test_a_recorded_release_with_no_migrations_is_unsafe_once_the_database_has_some():
    s = assess(None, V1, [V1], target_version=1, target_recorded=True)
    assert s.safe is False and s.ahead == (V1,)
    assert s.way_out[0].startswith("inv db.rollback --to 0")
    assert assess(None, None, [], target_recorded=True).safe is True


def test_an_empty_database_is_never_ahead():
    assert assess(V1, None, []).safe is True


def test_the_ecto_version_that_leaves_the_database_at_the_target():
    # Ecto's `:down, to: V` reverts down to and including V: to keep V1 we revert to V2.
    assert ecto_rollback_target([V1, V2, V3], V1) == V2
    assert ecto_rollback_target([V1, V2, V3], V3) is None
    assert ecto_rollback_target([V1, V2], None) == V1


def test_versions_come_from_migration_file_names_in_numeric_order():
    names = [f"apps/bezgelor_db/priv/repo/migrations/{V3}_add_guilds.exs", f"{V1}_create_accounts.exs",
             ".formatter.exs", "README.md", f"{V2}_create_characters.exs", "999_x.exs"]
    assert versions_from_names(names) == ["999", V1, V2, V3]


# -- the database's side: `/app/bin/migrate status` ------------------------------------------------------

def test_parsing_the_migrate_status_line():
    payload = {"repos": [{"repo": "BezgelorDb.Repo", "migrations": [
        {"version": int(V1), "name": "create_accounts", "status": "up"},
        {"version": int(V3), "name": "add_guilds", "status": "down"},
        {"version": int(V2), "name": "create_characters", "status": "up"}]}]}
    out = "Connecting to fdaa::3...\n" + "BEZGELOR_MIGRATIONS " + json.dumps(payload) + "\n"
    db = parse_migration_status(out)
    assert db.repos[0].repo == "BezgelorDb.Repo"
    assert [str(m.version) for m in db.applied] == [V1, V2] and [str(m.version) for m in db.pending] == [V3]
    assert str(db.latest_applied) == V2


def test_a_release_without_the_status_command_is_reported_not_guessed():
    with pytest.raises(UserError, match="no BEZGELOR_MIGRATIONS line"):
        parse_migration_status("Error: ssh shell: Process exited with status 1\n")
    with pytest.raises(UserError, match="not JSON"):
        parse_migration_status("BEZGELOR_MIGRATIONS {not json")


# -- the code's side: migrations at a git version --------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=t@example.invalid", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo_with_tagged_releases(tmp_path):
    """A checkout whose history adds one migration per tagged release (v1: none, v2: V1, v3: V1+V2+V3)."""
    repo = tmp_path / "bezgelor"
    mdir = repo / "apps" / "bezgelor_db" / "priv" / "repo" / "migrations"
    mdir.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "mix.exs").write_text('defmodule U.MixProject do\n  def project, do: [apps_path: "apps"]\nend\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "umbrella")
    git(repo, "tag", "v1")
    (mdir / f"{V1}_create_accounts.exs").write_text("defmodule M1 do\nend\n")
    (mdir / ".formatter.exs").write_text("[]\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "accounts")
    git(repo, "tag", "v2")
    (mdir / f"{V2}_create_characters.exs").write_text("defmodule M2 do\nend\n")
    (mdir / f"{V3}_add_guilds.exs").write_text("defmodule M3 do\nend\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "characters and guilds")
    git(repo, "tag", "v3")
    (mdir / "20990101000000_uncommitted.exs").write_text("# not in any commit\n")
    return repo


def test_code_migrations_at_each_release_come_from_git_not_the_working_tree(repo_with_tagged_releases):
    s = settings_load.load(repo_with_tagged_releases, environ={})
    ex = Executor(ui=UI(), echo=False)
    assert code_migrations_at(s, ex, "v1") == []
    assert code_migrations_at(s, ex, "v2") == [V1]
    assert code_migrations_at(s, ex, "HEAD") == [V1, V2, V3]
    head = git(repo_with_tagged_releases, "rev-parse", "HEAD").strip()
    assert code_migrations_at(s, ex, head) == [V1, V2, V3]


def test_listing_migrations_is_read_only_and_runs_in_dry_run(repo_with_tagged_releases):
    s = settings_load.load(repo_with_tagged_releases, environ={})
    assert ls_tree_command(s, "v2").mutates is False
    assert code_migrations_at(s, Executor(ui=UI(), dry_run=True, echo=False), "v2") == [V1]


def test_an_unknown_git_version_is_a_clear_error(repo_with_tagged_releases):
    s = settings_load.load(repo_with_tagged_releases, environ={})
    with pytest.raises(UserError, match="v9") as e:
        code_migrations_at(s, Executor(ui=UI(), echo=False), "v9")
    assert "git fetch --tags" in str(e.value)


def test_the_whole_story_deploy_v3_then_try_to_roll_back_to_v2(repo_with_tagged_releases):
    s = settings_load.load(repo_with_tagged_releases, environ={})
    ex = Executor(ui=UI(), echo=False)
    recorded = {2: code_migrations_at(s, ex, "v2"), 3: code_migrations_at(s, ex, "v3")}
    db_applied = recorded[3]  # v3 was deployed and migrated
    target = recorded[2]
    safety = assess(target[-1] if target else None, db_applied[-1], db_applied, target_version=2,
                    target_recorded=True)
    assert safety.safe is False and safety.ahead == (V2, V3)
    assert safety.way_out[0].startswith(f"inv db.rollback --to {V1}")
    assert ecto_rollback_target(db_applied, V1) == V2
