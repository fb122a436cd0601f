"""A user with a bad setting runs `inv init`: a headline, one line per problem, the fix; exit 1, nothing in the
checkout changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bezgelor_tasks import settings, settings_checks, settings_load, settings_sources, settings_values
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import platform
from tests.support.inv import run_inv


def git_status(root: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root,
                          capture_output=True, text=True, check=True).stdout


# (what the user has in .env, what the message must say)
BAD_DOTENV = {
    "port out of range": ("BEZGELOR_AUTH_PORT=70000\n", "BEZGELOR_AUTH_PORT=70000 (", "1 to 65535"),
    "auth port is the portal's": ("BEZGELOR_AUTH_PORT=4000\n",
                                  "BEZGELOR_PORTAL_PORT and BEZGELOR_AUTH_PORT are both 4000", "port of their own"),
    "app name Fly refuses": ("BEZGELOR_FLY_APP=Bad_Name!\n", "BEZGELOR_FLY_APP=Bad_Name!", "'bad-name'"),
    "region mars": ("BEZGELOR_FLY_REGION=mars\n", "BEZGELOR_FLY_REGION=mars", "is not a Fly region"),
    "cpu kind turbo": ("BEZGELOR_VM_CPU_KIND=turbo\n", "BEZGELOR_VM_CPU_KIND=turbo", "shared or performance"),
    "typo in a key": ("BEZGELOR_FLY_REGOIN=ams\n", "BEZGELOR_FLY_REGOIN", "did you mean BEZGELOR_FLY_REGION?"),
    "garbage line": ("BEZGELOR_FLY_APP=my-game\nthis line is not a setting\n", ".env line 2", "NAME=value"),
    "zero timeout": ("BEZGELOR_HEALTH_TIMEOUT=0\n", "BEZGELOR_HEALTH_TIMEOUT=0", "more than 0"),
    "memory the cpus cannot hold": ("BEZGELOR_VM_MEMORY_MB=6144\n", "BEZGELOR_VM_MEMORY_MB=6144",
                                    "BEZGELOR_VM_CPUS=4"),
}


@pytest.mark.parametrize("case", sorted(BAD_DOTENV))
def test_a_bad_setting_stops_init_before_it_writes_anything(bezgelor_checkout, case):
    dotenv, names, fix = BAD_DOTENV[case]
    (bezgelor_checkout / ".env").write_text(dotenv)
    subprocess.run(["git", "add", ".env"], cwd=bezgelor_checkout, check=True)
    before = git_status(bezgelor_checkout)

    proc = run_inv("init", "--root", str(bezgelor_checkout), "--force", cwd=bezgelor_checkout)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    message = proc.stderr.strip()
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = message.splitlines()
    assert lines[0].startswith("error: ") and len(lines[0]) <= 130     # a headline people can scan
    assert lines[-1].startswith("Fix: ")                               # the fix on its own line
    assert any(names in line and fix in line for line in lines[1:-1])  # one line per problem
    assert "before changing anything" in lines[0]
    assert git_status(bezgelor_checkout) == before                     # nothing written, nothing created


def test_every_problem_is_named_in_the_same_message(bezgelor_checkout, monkeypatch):
    monkeypatch.setenv("BEZGELOR_FLY_APP", "Bad_Name!")
    monkeypatch.setenv("BEZGELOR_VM_CPU_KIND", "turbo")
    (bezgelor_checkout / ".env").write_text("BEZGELOR_AUTH_PORT=70000\nBEZGELOR_FLY_REGOIN=ams\n")
    proc = run_inv("verify", "--root", str(bezgelor_checkout), cwd=bezgelor_checkout)
    assert proc.returncode == 1
    message = proc.stderr
    assert "4 setting problem(s)" in message
    for part in ("BEZGELOR_FLY_APP=Bad_Name! (the environment)", "BEZGELOR_VM_CPU_KIND=turbo",
                 f"BEZGELOR_AUTH_PORT=70000 ({bezgelor_checkout / '.env'} line 1)",
                 "BEZGELOR_FLY_REGOIN", "did you mean BEZGELOR_FLY_REGION?"):
        assert part in message


def test_deploy_and_backup_tasks_check_the_same_settings(bezgelor_checkout, monkeypatch):
    monkeypatch.setenv("BEZGELOR_FLY_REGION", "sea")
    for task in (("deploy.full", "--dry-run"), ("db.backup",), ("plan.size",)):
        proc = run_inv(task[0], "--root", str(bezgelor_checkout), *task[1:], cwd=bezgelor_checkout)
        assert proc.returncode == 1, task
        assert "BEZGELOR_FLY_REGION=sea" in proc.stderr and "use sjc" in proc.stderr, task


def test_keys_the_checkout_itself_reads_are_not_called_typos(bezgelor_checkout):
    # A BEZGELOR_* variable of the user's own app (its code reads it) belongs to the app, not to us.
    (bezgelor_checkout / "config" / "assets.exs").write_text('import Config\nSystem.get_env("BEZGELOR_ASSETS_URL")\n')
    src = settings_sources.read_sources(bezgelor_checkout, {"BEZGELOR_ASSETS_URL": "s3://bucket",
                                                            "BEZGELOR_FLY_APPP": "x", "BEZGELOR_DB_PASSWORD": "pw"})
    found = settings_checks.unknown_keys(src)
    assert len(found) == 1 and "BEZGELOR_FLY_APPP" in found[0] and "did you mean BEZGELOR_FLY_APP?" in found[0]


def test_the_defaults_and_every_listed_region_are_valid():
    assert settings_checks.problems(settings.Settings()) == []
    for code in platform.regions():
        assert settings_checks.problems(settings.Settings(region=code)) == []


@pytest.mark.parametrize("kind,cpus,memory,ok", [
    ("shared", 1, 256, True), ("shared", 1, 2048, True), ("shared", 1, 2304, False), ("shared", 2, 256, False),
    ("shared", 8, 16384, True), ("shared", 3, 1024, False), ("shared", 1, 1000, False),
    ("performance", 1, 2048, True), ("performance", 1, 1024, False), ("performance", 16, 131072, True),
    ("performance", 2, 17408, False), ("performance", 1, 2560, False),
])
def test_cpus_and_memory_follow_flyctls_limits(kind, cpus, memory, ok):
    found = settings_checks.problems(settings.Settings(vm_cpu_kind=kind, vm_cpus=cpus, vm_memory_mb=memory))
    assert (found == []) is ok, found


def test_validate_raises_one_user_error_for_a_settings_object():
    with pytest.raises(UserError, match=r"2 setting problem\(s\).*BEZGELOR_WORLD_PORT=0.*BEZGELOR_PG_VM_SIZE"):
        settings_checks.validate(settings.Settings(world_port=0, pg_vm_size="huge"))


def test_new_ports_and_timeouts_cannot_slip_in_unchecked():
    # Settings added on other branches slot into the same table: a port, timeout, interval or size
    # without a `check` would reach fly.toml unvalidated.
    unchecked = [f.metadata["env"] for f in settings.FIELDS
                 if f.metadata["env"].endswith(("_PORT", "_TIMEOUT", "_INTERVAL", "_MB", "_GB", "_CPUS"))
                 and f.metadata.get("check") is None]
    assert unchecked == []
    assert settings_values.in_range(1, 300, "Fly's limit")(301) == "is out of range: use 1 to 300 (Fly's limit)"
    assert settings_values.in_range(1, 300)(300) is None


def test_an_age_secret_key_pasted_as_a_recipient_is_refused_without_showing_any_of_it(monkeypatch):
    import pyrage

    identity = str(pyrage.x25519.Identity.generate())
    monkeypatch.setenv("BEZGELOR_BACKUP_AGE_RECIPIENTS", identity)
    with pytest.raises(UserError) as err:
        settings_checks.validate(settings_load.load())
    said = err.value.paragraph()
    assert "BEZGELOR_BACKUP_AGE_RECIPIENTS" in said and "a secret key" in said
    assert identity[15:] not in said and identity[15:23] not in said
