"""The Fly client against the fake flyctl: records come back, and flyctl's failures become clear errors."""

from __future__ import annotations

import io
import socket
import threading

import pytest

from bezgelor_tasks import redact, settings_load
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI
from tests.support.umbrella import write_release_module

APP, DB = "bz-game", "bz-db"
MIGRATIONS = {20240101000000: "create_accounts", 20240102000000: "create_characters",
              20240103000000: "add_guilds"}


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "bezgelor"
    mig = root / "apps" / "bezgelor_db" / "priv" / "repo" / "migrations"
    mig.mkdir(parents=True)
    for version, name in MIGRATIONS.items():
        (mig / f"{version}_{name}.exs").write_text("defmodule M do\nend\n")
    (root / "fly.toml").write_text(f'app = "{APP}"\nprimary_region = "sjc"\n')
    (root / "Dockerfile").write_text("FROM scratch\n")
    write_release_module(root)
    return root


@pytest.fixture
def out():
    return io.StringIO()


@pytest.fixture
def fly(checkout, fake_fly, out, monkeypatch):
    monkeypatch.setenv("BEZGELOR_FLY_APP", APP)
    monkeypatch.setenv("BEZGELOR_FLY_DB_APP", DB)
    s = settings_load.load(checkout)
    return FlyClient(s, Executor(ui=UI(stream=out), retry_delay=0.01))


def test_a_fresh_account_has_no_app_until_it_is_created(fly, fake_fly):
    assert fly.whoami().email == "pilot@example.com"
    assert fly.version().version
    assert fly.find_app(APP) is None
    fly.create_app(APP)
    app = fly.find_app(APP)
    assert app is not None and app.org == "personal"


def test_not_logged_in_names_fly_auth_login(fly, fake_fly):
    fake_fly.logout()
    with pytest.raises(UserError) as info:
        fly.whoami()
    assert "run `fly auth login` or set FLY_API_TOKEN" in str(info.value)


def test_an_app_name_taken_by_someone_else_says_to_choose_another(fly, fake_fly):
    fake_fly.take_name(APP)
    with pytest.raises(UserError, match="choose another BEZGELOR_FLY_APP"):
        fly.create_app(APP)


def test_a_missing_app_is_named_in_the_error(fly, fake_fly):
    with pytest.raises(UserError, match=f"Fly has no app named '{APP}'"):
        fly.secrets(APP)


def test_flyctl_missing_from_path_points_at_the_installer(fly, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UserError, match="https://fly.io/docs/flyctl/install/"):
        fly.version()


def test_postgres_create_output_is_never_shown_and_its_password_is_masked_everywhere(fly, fake_fly, out):
    output = fly.postgres_create()
    password_line = next(line for line in output.splitlines() if "Password:" in line)
    password = password_line.split(":", 1)[1].strip()
    assert password not in out.getvalue()
    assert f"postgres create --name {DB}" in out.getvalue()
    assert redact.redact(f"the password is {password}") == "the password is ***"


def test_attaching_twice_treats_the_existing_database_url_as_attached(fly, fake_fly):
    fly.create_app(APP)
    fly.postgres_create()
    assert fly.postgres_attach() is True
    assert fly.postgres_attach() is False
    assert "DATABASE_URL" in {s.name for s in fly.secrets(APP)}


def test_a_dedicated_ipv4_is_allocated_and_then_listed(fly, fake_fly):
    fly.create_app(APP)
    assert not any(ip.is_dedicated_v4 for ip in fly.ips(APP))
    fly.allocate_v4(APP)
    assert [ip.address for ip in fly.ips(APP) if ip.is_dedicated_v4] == ["127.0.0.1"]


def test_secrets_are_imported_on_stdin_and_never_recorded_in_argv(fly, fake_fly, out):
    fly.create_app(APP)
    value = "Zm9vYmFyYmF6cXV4cXV1eA-secret"
    fly.import_secrets(APP, {"CLOAK_KEY": value})
    assert fake_fly.secret_digest(APP, "CLOAK_KEY") == fake_fly.digest_of(value)
    assert fake_fly.secret_status(APP, "CLOAK_KEY") == "Staged"
    assert all(value not in " ".join(c["argv"]) for c in fake_fly.calls())
    assert value not in out.getvalue()
    fly.unset_secret(APP, "CLOAK_KEY")
    assert "CLOAK_KEY" not in {s.name for s in fly.secrets(APP)}


def test_build_then_deploy_the_image_then_read_releases_and_status(fly, fake_fly):
    fly.create_app(APP)
    ref = fly.deploy_build("1.2.3", "v1.2.3")
    assert ref == f"registry.fly.io/{APP}:v1.2.3"
    emitted = fly.deploy_image(ref, "1.2.3")
    releases = fly.releases(APP)
    assert releases[0].image_ref == ref
    if emitted is not None:
        assert emitted.image_ref == ref and emitted.version == releases[0].version
    status = fly.status(APP)
    assert status.machines and all(m.image_ref.startswith(f"registry.fly.io/{APP}:v1.2.3") for m in status.machines)


def test_migrations_run_show_their_status_and_roll_back(fly, fake_fly):
    fly.create_app(APP)
    fly.deploy_source("1.0.0", "v1.0.0")
    state = fly.migration_status(APP)
    assert [m.version for m in state.repos[0].migrations] == sorted(MIGRATIONS)
    fly.migrate(APP)
    assert not fly.migration_status(APP).pending
    fly.db_rollback(APP, 20240102000000)
    assert fake_fly.applied_migrations(APP) == [20240101000000]


def test_a_failing_remote_command_reports_its_exit_status(fly, fake_fly):
    fly.create_app(APP)
    fly.deploy_source("1.0.0", "v1.0.0")
    with pytest.raises(UserError, match="exited with status"):
        fly.ssh(APP, "/app/bin/migrate nonsense")


def test_the_proxy_reports_the_local_port_it_bound(fly, fake_fly):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        threading.Thread(target=lambda: server.accept()[0].close(), daemon=True).start()
        fake_fly.add_pg_app(DB, proxy_target=f"127.0.0.1:{server.getsockname()[1]}")
        with fly.proxy(DB) as bg:
            assert bg.match is not None
            port = int(bg.match.group(1))
            assert port > 0
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass


def test_garbage_from_flyctl_is_an_error_naming_the_command(fly, fake_fly):
    fly.create_app(APP)
    fake_fly.fault("releases", "garbage", error="<html>502 Bad Gateway</html>")
    with pytest.raises(UserError, match=r"`fly releases --image --json` printed something that is not JSON"):
        fly.releases(APP)


def test_a_read_only_query_is_retried_once_after_a_transient_failure(fly, fake_fly):
    fly.create_app(APP)
    fake_fly.fault("ips list", "fail_once", error="connection reset by peer")
    assert fly.ips(APP) == []
    assert len(fake_fly.calls("ips list")) == 2


def test_attaching_a_database_that_does_not_exist_names_the_database_app(fly, fake_fly):
    fly.create_app(APP)
    with pytest.raises(UserError, match=f"Fly has no app named '{DB}'"):
        fly.postgres_attach()
