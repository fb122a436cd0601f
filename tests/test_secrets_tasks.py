"""`inv secrets.*`: values go in on stdin and never show up in argv or output; CLOAK_KEY is never rotated in place."""

from __future__ import annotations

import json

import pytest

from tests.support.inv import run_inv

APP = "bz-game"
VALUE = "c2VjcmV0LXZhbHVlLW5ldmVyLWluLWFyZ3Y"


@pytest.fixture
def checkout(tmp_path, fake_fly, monkeypatch):
    root = tmp_path / "bezgelor"
    (root / "config").mkdir(parents=True)
    (root / "config" / "runtime.exs").write_text(
        'import Config\n'
        'if config_env() == :prod do\n'
        '  secret_key_base = System.get_env("SECRET_KEY_BASE") || raise "SECRET_KEY_BASE missing"\n'
        '  discord = System.fetch_env!("DISCORD_TOKEN")\n'
        '  smtp = System.get_env("SMTP_RELAY") ||\n'
        '    raise """\n'
        '    SMTP_RELAY missing\n'
        '    """\n'
        '  pool = String.to_integer(System.get_env("POOL_SIZE") || "10")\n'
        '  host = System.get_env("PHX_HOST")\n'
        '  # old = System.fetch_env!("NOT_READ_ANYMORE")\n'
        'end\n')
    (root / "fly.toml").write_text(f'app = "{APP}"\n\n[env]\n  PHX_HOST = "{APP}.fly.dev"\n')
    monkeypatch.setenv("BEZGELOR_FLY_APP", APP)
    monkeypatch.setenv("BEZGELOR_ROOT", str(root))
    fake_fly.add_app(APP)
    return root


def test_setting_a_secret_from_stdin_keeps_the_value_out_of_argv_and_output(checkout, fake_fly):
    done = run_inv("secrets.set", "CLOAK_KEY", stdin=VALUE + "\n")
    assert done.returncode == 0, done.stderr
    assert fake_fly.secret_digest(APP, "CLOAK_KEY") == fake_fly.digest_of(VALUE)
    assert fake_fly.secret_status(APP, "CLOAK_KEY") == "Staged"
    calls = fake_fly.calls("secrets import")
    assert calls and calls[-1]["stdin_len"] > 0
    assert all(VALUE not in json.dumps(c) for c in fake_fly.calls())
    assert VALUE not in done.stdout + done.stderr
    assert "staged" in done.stdout


def test_setting_a_secret_with_nothing_on_stdin_is_refused(checkout, fake_fly):
    done = run_inv("secrets.set", "CLOAK_KEY", stdin="")
    assert done.returncode != 0
    assert "No value was given for CLOAK_KEY" in done.stderr
    assert fake_fly.calls("secrets import") == []


def test_a_dry_run_set_shows_the_command_but_not_the_value(checkout, fake_fly):
    done = run_inv("secrets.set", "CLOAK_KEY", "--dry-run", stdin=VALUE)
    assert done.returncode == 0, done.stderr
    assert "would run" in done.stdout and "secrets import" in done.stdout
    assert VALUE not in done.stdout + done.stderr
    assert fake_fly.secret_digest(APP, "CLOAK_KEY") is None


def test_rotating_cloak_key_is_refused_with_the_key_rotation_procedure(checkout, fake_fly):
    done = run_inv("secrets.rotate", "CLOAK_KEY")
    assert done.returncode != 0
    assert "Refusing to rotate CLOAK_KEY" in done.stderr
    assert "re-encrypt" in done.stderr and "old" in done.stderr
    assert fake_fly.calls("secrets import") == []


def test_rotating_secret_key_base_warns_that_sessions_end_and_stages_a_new_value(checkout, fake_fly):
    done = run_inv("secrets.rotate", "SECRET_KEY_BASE")
    assert done.returncode == 0, done.stderr
    assert "logged out" in done.stdout
    first = fake_fly.secret_digest(APP, "SECRET_KEY_BASE")
    assert first and run_inv("secrets.rotate", "SECRET_KEY_BASE").returncode == 0
    assert fake_fly.secret_digest(APP, "SECRET_KEY_BASE") != first


def test_check_lists_what_runtime_exs_needs_and_fails_until_it_is_all_set(checkout, fake_fly):
    done = run_inv("secrets.check", "--json")
    assert done.returncode != 0
    report = json.loads(done.stdout)
    assert set(report["missing"]) == {"SECRET_KEY_BASE", "CLOAK_KEY", "DATABASE_URL", "WORLD_PUBLIC_ADDRESS",
                                      "DISCORD_TOKEN", "SMTP_RELAY"}   # `|| raise` over two lines: Elixir reads it
    assert "NOT_READ_ANYMORE" not in report["required"]
    assert "PHX_HOST" not in report["optional_missing"]  # fly.toml [env] provides it
    assert report["optional_missing"] == ["POOL_SIZE"] and report["read_runtime_exs"]   # as Elixir reads it
    assert "inv secrets.set" in done.stderr
    for name in report["missing"]:
        assert run_inv("secrets.set", name, stdin=f"value-of-{name}").returncode == 0
    done = run_inv("secrets.check")
    assert done.returncode == 0, done.stderr
    assert "CLOAK_KEY (Staged)" in done.stdout


def test_list_shows_names_and_status_never_values(checkout, fake_fly):
    run_inv("secrets.set", "CLOAK_KEY", stdin=VALUE)
    done = run_inv("secrets.list", "--json")
    assert done.returncode == 0, done.stderr
    assert [s["name"] for s in json.loads(done.stdout)] == ["CLOAK_KEY"]
    assert VALUE not in done.stdout
