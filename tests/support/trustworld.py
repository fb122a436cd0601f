"""A live world for the trust stories, built fast: tasks run in this process (as `inv TASK ARGS` would, through
Invoke's own parser), against the fake flyctl, the loopback game servers and the session's real PostgreSQL.

`two_healthy_releases`: the fixture umbrella after `inv init`, committed; v0.1.0 and v0.2.0 deployed and
healthy; the Fly database is a real game database behind the fake's `fly proxy`; one local backup of it.
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.deployrun import commit_all

APP, DB = "bezgelor", "bezgelor-db"


@dataclass
class Ran:
    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_task(*argv: str, stdin: str = "") -> Ran:
    """`inv ARGV` in this process: Invoke's parser turns the words into the task's arguments, the task runs
    with stdin not a terminal, and its exit code is what `inv` would exit with."""
    from invoke import Context
    from invoke.exceptions import Exit

    from bezgelor_tasks.tasks import namespace

    parsed = parser().parse_argv(list(argv))
    if len(parsed) != 1:
        raise AssertionError(f"one task per call: {argv}")
    out, err = io.StringIO(), io.StringIO()
    saved_stdin, sys.stdin = sys.stdin, io.StringIO(stdin)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            namespace[parsed[0].name](Context(), **parsed[0].as_kwargs)
    except Exit as e:
        code = e.code
    finally:
        sys.stdin = saved_stdin
    return Ran(tuple(argv), code, out.getvalue(), err.getvalue())


def parser() -> Any:
    from invoke.parser import Parser

    from bezgelor_tasks.tasks import namespace

    return Parser(contexts=namespace.to_contexts())


def takes(task: str, flag: str) -> bool:
    """Whether `task` has `--flag` (e.g. dry-run)."""
    context = next(c for c in parser().contexts.values() if c.name == task)
    return flag.replace("-", "_") in context.args


@pytest.fixture
def two_healthy_releases(bezgelor_checkout: Path, fake_fly: Any, game_servers: Any, pg_server: Any, game_db: str,
                         monkeypatch: pytest.MonkeyPatch) -> Path:
    root = bezgelor_checkout
    monkeypatch.setenv("BEZGELOR_ROOT", str(root))
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    monkeypatch.setenv("BEZGELOR_DB_NAME", game_db)
    monkeypatch.setenv("BEZGELOR_DB_USER", pg_server.user)
    for key, value in (("PGHOST", pg_server.host), ("PGPORT", str(pg_server.port)), ("PGUSER", pg_server.user),
                       ("PGPASSWORD", pg_server.password)):
        monkeypatch.setenv(key, value)  # a local PostgreSQL for `db.restore --target local`: the same server
    monkeypatch.chdir(root)
    fake_fly.add_pg_app(DB, proxy_target=f"127.0.0.1:{pg_server.port}", memory_mb=1024)
    fake_fly.set_pg_image(DB, "flyio/postgres-flex:15.8")
    inited = run_task("init", "--yes")
    assert inited.code == 0, inited.output
    commit_all(root, "inv init", tag="v0.1.0")
    first = run_task("deploy.full", "--yes")
    assert first.code == 0, first.output
    fake_fly.set_machine_env(APP, DATABASE_URL=f"postgres://{pg_server.user}:{pg_server.password}@"
                                               f"{DB}.flycast:5432/{game_db}?sslmode=disable")
    (root / "CHANGELOG.md").write_text("v0.2.0: new quests\n")
    commit_all(root, "v0.2.0", tag="v0.2.0")
    second = run_task("deploy.full", "--yes")  # backs the game database up first (a real pg_dump)
    assert second.code == 0, second.output
    assert [r["status"] for r in fake_fly.releases(APP)] == ["complete", "complete"]
    return root
