"""Every flyctl command the toolkit builds is one the real flyctl accepts, with no prompt and no secret in argv."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands, operator_commands, postgres_commands, secret_commands
from bezgelor_tasks.fly.grammar import check, grammar
from bezgelor_tasks.settings import Settings

GRAMMAR = grammar()
SECRET = "s3cr3t-value-never-in-argv"


@pytest.fixture
def s(tmp_path):
    return settings_load.load(tmp_path, environ={"BEZGELOR_FLY_APP": "bz-game", "BEZGELOR_FLY_DB_APP": "bz-db"})


BUILDERS: dict[str, Callable[[Settings], Command]] = {
    "version": commands.version,
    "whoami": commands.whoami,
    "apps_list": commands.apps_list,
    "apps_create": lambda s: commands.apps_create(s, "bz-game"),
    "postgres_create": postgres_commands.postgres_create,
    "postgres_attach": postgres_commands.postgres_attach,
    "postgres_backup_create": postgres_commands.postgres_backup_create,
    "postgres_backup_create_named": lambda s: postgres_commands.postgres_backup_create(s, "before-deploy"),
    "postgres_backup_list": postgres_commands.postgres_backup_list,
    "postgres_backup_enable": postgres_commands.postgres_backup_enable,
    "mpg_backup_create": lambda s: postgres_commands.mpg_backup_create(s, "abc123"),
    "mpg_backup_list": lambda s: postgres_commands.mpg_backup_list(s, "abc123"),
    "ips_list": commands.ips_list,
    "ips_allocate_v4": commands.ips_allocate_v4,
    "secrets_list": secret_commands.secrets_list,
    "secrets_import": lambda s: secret_commands.secrets_import(s, {"CLOAK_KEY": SECRET,
                                                                   "SECRET_KEY_BASE": SECRET + "2"}),
    "secrets_import_unstaged": lambda s: secret_commands.secrets_import(s, {"CLOAK_KEY": SECRET}, stage=False),
    "secrets_unset": lambda s: secret_commands.secrets_unset(s, "OLD_KEY"),
    "deploy_build": lambda s: commands.deploy(s, "1.2.3", build_only=True, image_label="v1.2.3",
                                              labels={"org.opencontainers.image.version": "1.2.3"}),
    "deploy_image": lambda s: commands.deploy(s, "1.2.2", image="registry.fly.io/bz-game:v1.2.2"),
    "deploy_source": lambda s: commands.deploy(s, "1.2.3", image_label="v1.2.3", wait_timeout=120),
    "releases": commands.releases,
    "status": commands.status,
    "ssh_migrate_status": lambda s: commands.ssh_command(s, "bz-game", "/app/bin/migrate status", mutates=False),
    "ssh_migrate_rollback": lambda s: commands.ssh_command(s, "bz-game", "/app/bin/migrate rollback 20240101000000"),
    "proxy": lambda s: postgres_commands.proxy(s, "bz-db", 0),
    "proxy_fixed_port": lambda s: postgres_commands.proxy(s, "bz-db", 15432),
    "scale_memory": lambda s: commands.scale_memory(s, 1024, "bz-db"),
    "scale_vm": lambda s: commands.scale_vm(s, "shared-cpu-4x", 6144),
    "scale_count": lambda s: operator_commands.scale_count(s, 0),
    "apps_restart": operator_commands.apps_restart,
    "remote_console": operator_commands.remote_console,
    "volume_snapshots": lambda s: operator_commands.volume_snapshots(s, "vol_123"),
    "secrets_deploy": secret_commands.secrets_deploy,
    "auth_login": operator_commands.auth_login,
    "deploy_token": operator_commands.deploy_token,
    "machine_restart": lambda s: commands.machine_restart(s, "3d8d9e1b0a7e89"),
    "machine_stop": lambda s: commands.machine_stop(s, "3d8d9e1b0a7e89"),
    "machine_start": lambda s: commands.machine_start(s, "3d8d9e1b0a7e89"),
    "watcher_token": lambda s: operator_commands.deploy_token(s, name="bezgelor-tasks watcher", json=True),
    "deploy_watcher": lambda s: commands.deploy_app_from(s, "bz-game-watch", "/tmp/ctx", "/tmp/ctx/fly.toml"),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_fly_command_we_build_is_accepted_by_flyctls_grammar(s, name):
    cmd = BUILDERS[name](s)
    ok, message = check(GRAMMAR, list(cmd.argv))
    assert ok, f"{name}: {message} <- {cmd.argv}"
    assert "note:" not in message, f"{name}: {message}"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_fly_command_runs_from_the_checkout_without_update_checks_or_secrets_in_argv(s, name):
    cmd = BUILDERS[name](s)
    assert cmd.argv[0] == s.flyctl
    assert cmd.cwd == s.root
    assert cmd.env["FLY_NO_UPDATE_CHECK"] == "1"
    assert not any(SECRET in a for a in cmd.argv)
    takes_app = {"version", "whoami", "apps_list", "apps_create", "postgres_create", "mpg_backup_create",
                 "mpg_backup_list", "apps_restart", "volume_snapshots", "auth_login", "apps_destroy"}
    if name not in takes_app:
        assert "-a" in cmd.argv, f"{name} must name its app: {cmd.argv}"


def test_read_only_queries_run_under_dry_run_and_changes_do_not(s):
    read_only = {"version", "whoami", "apps_list", "ips_list", "secrets_list", "releases", "status",
                 "ssh_migrate_status", "postgres_backup_list", "mpg_backup_list", "proxy", "proxy_fixed_port",
                 "volume_snapshots"}
    for name, build in BUILDERS.items():
        assert build(s).mutates == (name not in read_only), name


def test_secrets_travel_only_on_stdin_as_name_value_lines(s):
    cmd = secret_commands.secrets_import(s, {"CLOAK_KEY": SECRET})
    assert cmd.stdin == f"CLOAK_KEY={SECRET}\n"
    assert cmd.secret_stdin
    assert "--stage" in cmd.argv
    assert SECRET not in cmd.shown()
    assert SECRET not in json.dumps(cmd.as_json())


def test_a_secret_value_on_several_lines_is_refused_before_anything_runs(s):
    with pytest.raises(UserError, match="several lines"):
        secret_commands.secrets_import(s, {"CLOAK_KEY": "a\nb"})
    with pytest.raises(UserError, match="not a valid secret name"):
        secret_commands.secrets_import(s, {"BAD NAME": "x"})


def test_postgres_create_passes_every_value_as_a_flag_so_flyctl_never_prompts(s):
    argv = postgres_commands.postgres_create(s).argv
    for flag, value in [("--name", "bz-db"), ("--region", s.region), ("--org", s.org),
                        ("--initial-cluster-size", "1"), ("--vm-size", s.pg_vm_size),
                        ("--volume-size", str(s.pg_volume_gb)), ("--vm-memory", str(s.pg_vm_memory_mb))]:
        assert argv[argv.index(flag) + 1] == value


def test_deploys_wait_with_a_rolling_strategy_and_emit_the_release_json(s):
    build = commands.deploy(s, "1.2.3", build_only=True, image_label="v1.2.3")
    assert {"--build-only", "--push", "--remote-only", "--yes"} <= set(build.argv)
    assert "APP_VERSION=1.2.3" in build.argv and "v1.2.3" in build.argv
    rollback = commands.deploy(s, "1.2.2", image="registry.fly.io/bz-game:v1.2.2", wait_timeout=90)
    assert rollback.argv[rollback.argv.index("--wait-timeout") + 1] == "90s"
    assert rollback.argv[rollback.argv.index("--strategy") + 1] == "rolling"
    assert "--remote-only" not in rollback.argv
    assert rollback.env["FLY_EMIT_RELEASE_JSON"] == "1"
