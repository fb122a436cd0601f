"""What a deploy records about its code's migrations, and how a rollback finds a release's record (fast, no fake)."""

from __future__ import annotations

from pathlib import Path

from bezgelor_tasks import settings_load
from bezgelor_tasks.migrations import code_migrations_for_build, read_records
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI
from tests.support.deployrun import commit_all, git

A, B = "20240101000000", "20240202000000"
FOLDER = Path("apps/bezgelor_db/priv/repo/migrations")


def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "co"
    (root / FOLDER).mkdir(parents=True)
    (root / FOLDER / f"{A}_create_accounts.exs").write_text("defmodule M do\nend\n")
    git(root, "init", "-q")
    commit_all(root, "first", tag="v1")
    return root


def test_a_clean_tree_records_the_migrations_git_has_at_head(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    code = code_migrations_for_build(settings_load.load(root), Executor(ui=UI(color=False), echo=False))
    assert code.versions == (A,) and code.source.startswith("git HEAD ") and len(code.git_sha) == 40
    assert code.image_labels("v1") == {"org.bezgelor.migrations.newest": A, "org.bezgelor.migrations.count": "1",
                                       "org.bezgelor.git": "v1"}


def test_an_uncommitted_migration_is_recorded_because_the_build_uploads_it(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    (root / FOLDER / f"{B}_create_guilds.exs").write_text("defmodule G do\nend\n")
    code = code_migrations_for_build(settings_load.load(root), Executor(ui=UI(color=False), echo=False))
    assert code.versions == (A, B) and code.source == "working tree" and code.newest == B


def test_a_release_is_found_by_its_version_or_else_by_its_image() -> None:
    entries = [
        {"event": "built", "app": "game", "image_ref": "reg/game:v1", "version": "v1", "migrations": [A]},
        {"event": "deployed", "app": "game", "release_version": 1, "image_ref": "reg/game:v1", "migrations": [A]},
        {"event": "deployed", "app": "game", "release_version": 2, "image_ref": "reg/game:v2", "migrations": [B, A]},
        {"event": "deployed", "app": "other", "release_version": 3, "image_ref": "reg/other:v1", "migrations": []},
        {"event": "deployed", "app": "game", "release_version": 4, "image_ref": "reg/game:v0"},  # before records
    ]
    records = read_records(entries, "game")
    assert records.find(2, "reg/game:v2").versions == (A, B)  # type: ignore[union-attr]
    assert records.find(9, "reg/game:v1").newest == A  # type: ignore[union-attr]  (a rollback's new release)
    assert records.find(3, "reg/other:v1") is None
    assert records.find(4, "reg/game:v0") is None
