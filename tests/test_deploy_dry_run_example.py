"""`inv deploy.full --dry-run` on the bundled example prints a plan whose every flyctl argv is valid flyctl.

Checked against flyctl's real grammar (bezgelor_tasks/fly/grammar.py, read from flyctl's source), both without
flyctl installed (the plan for a fresh account) and against the fake flyctl's fresh account.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bezgelor_tasks.fly.grammar import check, grammar
from tests.support.deployrun import commit_all, inv

pytestmark = pytest.mark.elixir
GRAMMAR = grammar()


@pytest.fixture
def example(bezgelor_checkout: Path) -> Path:
    ran = inv("init", "--root", str(bezgelor_checkout), timeout=600)
    assert ran.returncode == 0, ran.output
    commit_all(bezgelor_checkout, "inv init")
    return bezgelor_checkout


def fly_argvs(plan: dict) -> list[list[str]]:
    return [argv for step in plan["steps"] for argv in step["argv"] if Path(argv[0]).name in ("fly", "flyctl")]


def assert_valid_flyctl(argvs: list[list[str]]) -> None:
    assert argvs
    for argv in argvs:
        ok, why = check(GRAMMAR, argv)
        assert ok, f"{argv}: {why}"
        assert "probably ignored" not in why, f"{argv}: {why}"


def test_without_flyctl_the_dry_run_plans_a_fresh_account_in_valid_flyctl(example: Path) -> None:
    no_fly = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])}
    ran = inv("deploy.full", "--root", str(example), "--dry-run", "--json", env=no_fly)

    assert ran.returncode == 0, ran.output
    plan = json.loads(ran.stdout)
    assert plan["dry_run"] is True
    assert [s["name"] for s in plan["steps"]] == ["preflight", "app", "machines", "build", "database", "ipv4",
                                                  "secrets", "drain", "backup", "deploy", "health"]
    argvs = fly_argvs(plan)
    assert_valid_flyctl(argvs)
    assert ["fly", "ips", "allocate-v4", "-a", "bezgelor", "--yes"] in argvs
    assert "assumes a fresh Fly account" in ran.stderr
    assert not (example / ".bezgelor" / "journal.jsonl").exists()


def test_against_a_fresh_fake_account_the_dry_run_changes_nothing_and_is_valid_flyctl(example: Path,
                                                                                        fake_fly) -> None:
    ran = inv("deploy.full", "--root", str(example), "--dry-run", "--json")

    assert ran.returncode == 0, ran.output
    assert_valid_flyctl(fly_argvs(json.loads(ran.stdout)))
    changing = {"apps create", "postgres create", "postgres attach", "ips allocate-v4", "secrets import", "deploy"}
    assert [c for c in fake_fly.calls() if c["cmd"] in changing] == []
