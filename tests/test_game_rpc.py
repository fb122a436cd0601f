"""The remote console call is data: one word for the machine's word splitter, user text a plain Elixir string.

Checked with the real tools: Python's shlex plays hallpass's shell-style splitting, flyctl's grammar
checks the argv, and Debian's Elixir evaluates the literals (nothing of the text is evaluated).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from bezgelor_tasks import settings_checks, settings_load
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.game import countdown, rpc

HOSTILE = [
    'He said "log out" now',
    "#{System.halt(3)}",
    'x"; System.halt(3); "',
    "back\\slash \\\" \\n and \\#{not} \\u{41}",
    "two\nlines\r\nand a\ttab",
    "it's 'quoted' $HOME `id` $(id) ; | & > < *",
    "é ü ß — 😀 中文",
    "\x00\x07 control",
    "ends with a backslash \\",
]


def _check_argv():
    from bezgelor_tasks.fly.grammar import check, grammar

    return check, grammar()


@pytest.fixture
def s(tmp_path):
    return settings_load.load(tmp_path, environ={"BEZGELOR_FLY_APP": "bz-game", "BEZGELOR_RELEASE_NAME": "bezgelor"})


def test_user_text_becomes_an_elixir_string_that_evaluates_to_exactly_that_text(tmp_path: Path) -> None:
    literals = [rpc.elixir_string(text) for text in HOSTILE]
    for literal in literals:  # plain ASCII, no single quote, one line: safe inside '...' on any splitter
        assert literal.isascii() and "'" not in literal and "\n" not in literal and "\r" not in literal
    script = tmp_path / "eval.exs"
    # Each literal is evaluated as Elixir code; its value is written back hex-encoded, one per line.
    script.write_text("".join(f"IO.puts(Base.encode16({lit}))\n" for lit in literals), encoding="ascii")
    proc = subprocess.run(["elixir", str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr  # System.halt(3) never ran
    values = [bytes.fromhex(line).decode("utf-8") for line in proc.stdout.split()]
    assert values == HOSTILE


def test_the_remote_command_is_one_word_after_rpc_and_flyctl_accepts_it(s) -> None:
    check, grammar = _check_argv()
    for text in HOSTILE:
        cmd = rpc.announce(s, text)
        assert cmd.argv[:5] == ("fly", "ssh", "console", "-a", "bz-game") and cmd.argv[5] == "-C"
        ok, why = check(grammar, list(cmd.argv))
        assert ok, why
        words = shlex.split(cmd.argv[6])  # what the machine's SSH server runs (no shell)
        assert words[:2] == ["/app/bin/bezgelor", "rpc"] and len(words) == 3
        assert rpc.elixir_string(text) in words[2]
    read = rpc.read(s, players=True)
    assert not read.mutates and rpc.announce(s, "hi").mutates and rpc.maintenance(s, True).mutates
    assert read.timeout == s.rpc_timeout_s and read.retries == 0


def test_bad_announcements_are_refused_with_a_fix(s) -> None:
    for text in ("", "   ", "x" * (rpc.MAX_MESSAGE + 1), "bad \udcff surrogate"):
        with pytest.raises(UserError) as e:
            rpc.announce(s, text)
        assert "Fix:" in e.value.paragraph()


def test_the_status_lines_parse_and_an_older_bezgelor_is_recognised() -> None:
    out = ("rpc noise\nBEZGELOR_PORTAL count=2 maintenance=true\n"
           "BEZGELOR_PLAYER account=1 name=Kira+Of+Thayd zone=5\nBEZGELOR_PLAYER account=2 name=%22x%22 zone=\n")
    status = rpc.parse(out, players=True)
    assert status is not None and status.count == 2 and status.maintenance is True
    assert [p.name for p in status.players or ()] == ["Kira Of Thayd", '"x"']
    assert rpc.parse("BEZGELOR_PORTAL count=0 maintenance=unknown").maintenance is None  # type: ignore[union-attr]
    assert rpc.parse("Error: ssh shell: Process exited with status 1") is None
    with pytest.raises(rpc.PortalMissing):
        rpc.parse("BEZGELOR_PORTAL missing BezgelorWorld.Portal with online_player_count/0")


def test_drain_durations_and_marks_read_like_people_write_them(tmp_path: Path) -> None:
    assert [countdown.parse_duration(t) for t in ("10m", "30s", "1m30s", "1h", "90", "0", "2.5s")] == \
        [600, 30, 90, 3600, 90, 0, 2.5]
    for bad in ("ten", "10x", "", "-5s", "1m 30"):
        with pytest.raises(UserError):
            countdown.parse_duration(bad)
    assert countdown.human(600) == "10 minutes" and countdown.human(90) == "1 minute 30 seconds"
    assert countdown.human(1) == "1 second" and countdown.human(0.2) == "1 second"
    s = settings_load.load(tmp_path, environ={})
    assert countdown.marks_of(s) == (600, 300, 60, 30, 10)
    with pytest.raises(UserError):  # validated with the other settings, before anything is written
        settings_checks.validate(settings_load.load(tmp_path, environ={"BEZGELOR_DRAIN_MARKS": "5m,soon"}))
