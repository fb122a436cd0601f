"""The Elixir judge: one process answers every question, started straight from `erl` once the `elixir` launcher
has compiled it and written down how it starts Erlang; a start from that note that dies falls back on the
launcher. Questions are pipelined and answered side by side, each answer with its question's."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from bezgelor_tasks import elixir, judge_launch

pytestmark = [pytest.mark.elixir,
              pytest.mark.skipif(not elixir.available(), reason="the judge is Elixir (apt-get install elixir)")]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "bezgelor"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of this test's own, holding what the user's already holds (no second compile)."""
    real = judge_launch.cache_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if real.is_dir():
        shutil.copytree(real, judge_launch.cache_dir(), ignore=shutil.ignore_patterns("launch-*.json", "*.tmp*"))
    return judge_launch.cache_dir()


def first_answer(judge: elixir.Judge) -> dict[str, object]:
    try:
        return judge.ask("version_match", "1.19.5", "~> 1.15")
    finally:
        judge.close()


SOURCES = [Path(elixir.__file__).parent / "templates" / "elixir" / name for name in elixir.JUDGE_SOURCES]


def test_the_launcher_starts_it_once_and_erl_after(cache: Path) -> None:
    assert judge_launch.command(SOURCES)[0][0] == "elixir"            # nothing written down yet
    assert first_answer(elixir.Judge()) == {"ok": True, "match": True}
    (launch,) = cache.glob("*/launch-*.json")
    argv, note, env = judge_launch.command(SOURCES)
    assert note == launch and Path(argv[0]).name == "erlexec" and "BezgelorJudge" in " ".join(argv)
    assert Path(env["BINDIR"], "erlexec") == Path(argv[0]) and env["PROGNAME"] == "erl"   # what `erl` exports
    straight = elixir.Judge()
    assert first_answer(straight) == {"ok": True, "match": True} and straight.starts == 1


def test_a_start_from_the_note_that_dies_falls_back_on_the_launcher(cache: Path) -> None:
    first_answer(elixir.Judge())                                      # the launcher writes the note
    (launch,) = cache.glob("*/launch-*.json")
    note = json.loads(launch.read_text())
    launch.write_text(json.dumps({**note, "args": [["eval", "erlang:halt(3)"]]}))   # an Erlang that dies at once
    judge = elixir.Judge()
    assert first_answer(judge) == {"ok": True, "match": True}
    assert judge.starts == 2                                          # the note's, then the launcher's
    assert json.loads(launch.read_text()) == note                     # written again by the launcher


def test_questions_from_several_threads_each_get_their_own_answer() -> None:
    judge = elixir.Judge()
    files = sorted((FIXTURE / "config").glob("*.exs")) + [FIXTURE / "mix.exs"]
    answers: dict[str, object] = {}

    def ask(path: Path) -> None:
        answers[path.name] = judge.ask("parse", str(path), files=(path,))

    try:
        threads = [threading.Thread(target=ask, args=(p,)) for p in files]
        for t in threads:
            t.start()
        lock = judge.ask("mix_lock", str(FIXTURE / "mix.lock"))      # meanwhile, from this thread
        for t in threads:
            t.join()
        broken = judge.ask("parse", "x.exs", "defmodule X do\n  def f(, do: 1\nend\n")
    finally:
        judge.close()
    assert answers == {p.name: {"ok": True} for p in files}
    assert lock["ok"] is True and "phoenix" in lock["versions"]      # type: ignore[operator]
    assert broken["ok"] is False and broken["line"] == 3
    assert judge.starts == 1 and judge.questions == len(files) + 2
