"""The fake flyctl behaves like flyctl where our tools depend on it: grammar, JSON, errors, state."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fakefly import FakeFly


def fly(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(["fly", *args], input=stdin if stdin is not None else "", capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def write_migrations(root: Path, *names: str) -> None:
    folder = root / "apps" / "bezgelor_db" / "priv" / "repo" / "migrations"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("defmodule M do\nend\n")


@pytest.mark.parametrize("argv", [
    ["releases", "rollback", "3"],            # no such command
    ["deploy", "-a", "bz", "--region", "fra"],  # deploy has no --region
    ["apps", "list", "--bogus"],
    ["ips", "allocate", "v4", "-a", "bz"],    # valid words, but an interactive prompt off a TTY
    ["secrets", "set", "A=1", "-a", "bz"],    # valid, but not emulated: tests must notice
])
def test_the_fake_rejects_what_real_flyctl_rejects(fake_fly: FakeFly, argv: list[str]) -> None:
    fake_fly.add_app("bz")
    result = fly(*argv)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert fake_fly.calls()[-1]["argv"] == ["fly", *argv]


def test_an_unknown_flag_prints_usage_like_flyctl(fake_fly: FakeFly) -> None:
    result = fly("deploy", "--region", "fra")
    assert "Usage:" in result.stdout
    assert "unknown flag: --region" in result.stderr
    assert "invalid" in fake_fly.calls()[-1]


def test_logged_out_commands_fail_but_version_and_a_token_work(fake_fly: FakeFly) -> None:
    fake_fly.logout()
    result = fly("auth", "whoami", "--json")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: no access token available. Please login with 'flyctl auth login'"
    assert json.loads(fly("version", "--json").stdout)["Version"] == "0.4.87"
    assert json.loads(fly("auth", "whoami", "--json", env={"FLY_API_TOKEN": "t"}).stdout)["email"]
    fake_fly.login("ops@example.com")
    assert json.loads(fly("auth", "whoami", "--json").stdout) == {"email": "ops@example.com"}


def test_apps_create_then_list_json_and_a_taken_name_fails(fake_fly: FakeFly) -> None:
    assert fly("apps", "list", "--json").stdout.strip() == "[]"
    assert fly("apps", "create", "bezgelor", "-o", "personal").stdout.strip() == "New app created: bezgelor"
    apps = json.loads(fly("apps", "list", "--json", "-o", "personal").stdout)
    assert [(a["Name"], a["Organization"]["Slug"], a["Deployed"]) for a in apps] == [("bezgelor", "personal", False)]
    fake_fly.take_name("someone-elses")
    for name in ("bezgelor", "someone-elses"):
        result = fly("apps", "create", name, "-o", "personal")
        assert result.returncode == 1
        assert result.stderr.strip() == "Error: Validation failed: Name has already been taken"


def test_parallel_fly_processes_do_not_lose_each_others_changes(fake_fly: FakeFly) -> None:
    procs = [subprocess.Popen(["fly", "apps", "create", f"app-{n}", "-o", "personal"], stdout=subprocess.DEVNULL)
             for n in range(8)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 8
    assert sorted(fake_fly.state()["apps"]) == sorted(f"app-{n}" for n in range(8))


def test_secrets_import_keeps_digests_only_and_never_records_stdin(fake_fly: FakeFly) -> None:
    fake_fly.add_app("bz")
    value = "hunter2-correct-horse-battery"
    stdin = f"# generated\nSECRET_KEY_BASE={value}\nCLOAK_KEY='quoted-{value}'\n\n"
    assert fly("secrets", "import", "-a", "bz", "--stage", stdin=stdin).returncode == 0
    listed = json.loads(fly("secrets", "list", "--json", "-a", "bz").stdout)
    assert listed == [
        {"name": "CLOAK_KEY", "digest": fake_fly.digest_of(f"quoted-{value}"), "status": "Staged"},
        {"name": "SECRET_KEY_BASE", "digest": fake_fly.digest_of(value), "status": "Staged"},
    ]
    assert fake_fly.calls("secrets import")[0]["stdin_len"] == len(stdin.encode())
    for path in fake_fly.home_dir.rglob("*"):
        if path.is_file():
            assert value.encode() not in path.read_bytes(), path


def test_postgres_create_needs_every_flag_and_attach_refuses_a_second_database_url(fake_fly: FakeFly) -> None:
    result = fly("postgres", "create", "--name", "bz-db", "--region", "fra", "--initial-cluster-size", "1",
                 "--vm-size", "shared-cpu-1x", "--volume-size", "10")
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        1, "Error: org slug must be specified when not running interactively")
    result = fly("postgres", "create", "--name", "bz-db", "--region", "fra", "--org", "personal",
                 "--initial-cluster-size", "1", "--vm-size", "shared-cpu-1x", "--volume-size", "10")
    assert result.returncode == 0
    assert "Unmanaged Fly Postgres" in result.stderr
    assert re.search(r"Password:\s+\S+", result.stdout) and "Connection string: postgres://" in result.stdout
    fake_fly.add_app("bz")
    assert fly("postgres", "attach", "bz-db", "-a", "bz", "--yes").returncode == 0
    assert fake_fly.secret_status("bz", "DATABASE_URL") == "Staged"
    again = fly("postgres", "attach", "bz-db", "-a", "bz", "--yes")
    assert again.returncode == 1 and "already contains a secret named DATABASE_URL" in again.stderr


def test_postgres_backups_need_enable_and_enough_memory(fake_fly: FakeFly) -> None:
    fake_fly.add_pg_app("bz-db")
    assert "Backups are not enabled" in fly("postgres", "backup", "create", "-a", "bz-db").stderr
    assert fly("postgres", "backup", "enable", "-a", "bz-db").returncode == 1  # 256 MB is too little
    assert fly("scale", "memory", "1024", "-a", "bz-db").returncode == 0
    assert fly("postgres", "backup", "enable", "-a", "bz-db").returncode == 0
    assert fly("postgres", "backup", "create", "-a", "bz-db").returncode == 0
    assert "DONE" in fly("postgres", "backups", "list", "-a", "bz-db").stdout


def test_a_dedicated_ipv4_needs_yes_and_replaces_the_shared_one(fake_fly: FakeFly) -> None:
    fake_fly.add_app("bz")
    fly("ips", "allocate-v4", "--shared", "-a", "bz")
    no_yes = fly("ips", "allocate-v4", "-a", "bz")
    assert no_yes.returncode == 1 and "yes flag must be specified" in no_yes.stderr
    assert fly("ips", "allocate-v4", "-a", "bz", "--yes").returncode == 0
    ips = json.loads(fly("ips", "list", "--json", "-a", "bz").stdout)
    assert [(ip["Type"], ip["Address"]) for ip in ips] == [("v4", "127.0.0.1")]


def test_deploy_builds_releases_fails_on_a_bad_image_and_rolls_back_by_image(fake_fly: FakeFly, tmp_path: Path
                                                                              ) -> None:
    fake_fly.add_app("bz")
    write_migrations(tmp_path, "20240101000000_create_accounts.exs")
    built = fly("deploy", "-a", "bz", "--build-only", "--push", "--image-label", "v1", "--build-arg", "MIX_ENV=prod")
    assert built.returncode == 0 and "image: registry.fly.io/bz:v1" in built.stdout
    image = fake_fly.images()["registry.fly.io/bz:v1"]
    assert image["migrations"] == [{"version": 20240101000000, "name": "create_accounts"}]
    assert image["build_args"] == {"MIX_ENV": "prod"}

    first = fly("deploy", "-a", "bz", "--image", "registry.fly.io/bz:v1", "--ha=false", "--yes",
                env={"FLY_EMIT_RELEASE_JSON": "1"})
    assert first.returncode == 0
    assert json.loads(first.stdout.splitlines()[-1])["image_ref"] == "registry.fly.io/bz:v1"
    assert fake_fly.applied_migrations("bz") == [20240101000000]

    write_migrations(tmp_path, "20240202000000_add_realms.exs")
    fake_fly.set_image_behavior("v2", "503")
    fly("deploy", "-a", "bz", "--build-only", "--push", "--image-label", "v2")
    bad = fly("deploy", "-a", "bz", "--image", "registry.fly.io/bz:v2", "--yes")
    assert bad.returncode == 1
    assert re.match(r"Error: timeout reached waiting for health checks to pass for machine \w+", bad.stderr)
    assert fake_fly.live_behavior("bz") == "503"  # rolling leaves the machines on the bad image

    releases = json.loads(fly("releases", "--image", "--json", "-a", "bz").stdout)
    assert [(r["Version"], r["Status"], r["ImageRef"]) for r in releases] == [
        (2, "failed", "registry.fly.io/bz:v2"), (1, "complete", "registry.fly.io/bz:v1")]
    assert fly("deploy", "-a", "bz", "--image", releases[1]["ImageRef"], "--yes").returncode == 0
    machines = json.loads(fly("status", "--json", "-a", "bz").stdout)["Machines"]
    assert [(m["image_ref"]["tag"], m["config"]["metadata"]["fly_release_version"], m["checks"][0]["status"])
            for m in machines] == [("v1", "3", "passing")]
    unknown = fly("deploy", "-a", "bz", "--image", "registry.fly.io/bz:nope")
    assert unknown.returncode == 1


SERVICES_TOML = 'app = "bz"\nprimary_region = "fra"\n\n[[services]]\n  internal_port = 24000\n  protocol = "tcp"\n'


def machines_of(app: str) -> list[dict]:
    return json.loads(fly("status", "--json", "-a", app).stdout)["Machines"]


@pytest.mark.parametrize(("toml", "flags", "expected"), [
    (SERVICES_TOML, [], 2),                                   # services: a second machine for HA
    (SERVICES_TOML, ["--ha=false"], 1),
    (SERVICES_TOML + '\n[mounts]\n  source = "data"\n  destination = "/data"\n', [], 1),  # mounts: one only
    ('app = "bz"\n', [], 2),                                  # no services: one machine and a standby
], ids=["services", "ha-false", "mounts", "no-services"])
def test_a_first_deploy_creates_the_ha_spare_exactly_when_flyctl_does(
        fake_fly: FakeFly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, flags: list[str],
        expected: int) -> None:
    fake_fly.add_app("bz")
    (tmp_path / "fly.toml").write_text(toml)
    monkeypatch.chdir(tmp_path)
    fly("deploy", "-a", "bz", "--build-only", "--push", "--image-label", "v1")
    first = fly("deploy", "-a", "bz", "--image", "registry.fly.io/bz:v1", "--yes", *flags)
    assert first.returncode == 0, first.stderr
    machines = machines_of("bz")
    assert len(machines) == expected
    if expected == 2 and "services" not in toml:
        assert machines[1]["config"]["standbys"] == [machines[0]["id"]]
    # Later deploys update what is there: no new spare, even without --ha=false.
    assert fly("deploy", "-a", "bz", "--image", "registry.fly.io/bz:v1", "--yes").returncode == 0
    assert len(machines_of("bz")) == expected


def test_a_started_machine_is_destroyed_only_with_force_and_scale_count_needs_yes(
        fake_fly: FakeFly, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_fly.add_app("bz")
    (tmp_path / "fly.toml").write_text(SERVICES_TOML)
    monkeypatch.chdir(tmp_path)
    fly("deploy", "-a", "bz", "--build-only", "--push", "--image-label", "v1")
    fly("deploy", "-a", "bz", "--image", "registry.fly.io/bz:v1", "--yes")
    keep, spare = (m["id"] for m in machines_of("bz"))
    refused = fly("machine", "destroy", spare, "-a", "bz")
    assert refused.returncode == 1 and "use --force" in refused.stderr
    assert fly("machine", "destroy", spare, "--force", "-a", "bz").returncode == 0
    assert [m["id"] for m in machines_of("bz")] == [keep]
    assert fly("scale", "count", "1", "-a", "bz").returncode == 0  # already one: nothing to confirm
    logs = fly("logs", "--no-tail", "-a", "bz")
    assert logs.returncode == 0 and "[world] listening on port 24000" in logs.stdout


def test_ssh_console_plays_the_migrate_script(fake_fly: FakeFly, tmp_path: Path) -> None:
    fake_fly.add_app("bz")
    write_migrations(tmp_path, "20240101000000_create_accounts.exs", "20240202000000_add_realms.exs")
    assert fly("deploy", "-a", "bz", "--yes").returncode == 0
    assert fly("ssh", "console", "-a", "bz", "-C", "/app/bin/migrate rollback 20240202000000").returncode == 0
    out = fly("ssh", "console", "-a", "bz", "-C", "/app/bin/migrate status").stdout
    payload = json.loads(out.split("BEZGELOR_MIGRATIONS ", 1)[1])
    assert [(m["version"], m["status"]) for m in payload["repos"][0]["migrations"]] == [
        (20240101000000, "up"), (20240202000000, "down")]
    failing = fly("ssh", "console", "-a", "bz", "-C", "/app/bin/nope")
    assert (failing.returncode, failing.stderr.splitlines()[-1]) == (
        1, "Error: ssh shell: Process exited with status 127")


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A real TCP echo server on loopback."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()
    listener.close()


def start_proxy() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(["fly", "proxy", "0:5432", "-a", "bz-db"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.match(r"Proxying localhost:(\d+) to remote \S+:5432", line)
    assert match, line
    return proc, int(match.group(1))


def test_proxy_forwards_to_the_pg_target_and_exits_0_on_sigterm(fake_fly: FakeFly, echo_server: tuple[str, int]
                                                                ) -> None:
    fake_fly.add_pg_app("bz-db")
    fake_fly.set_pg_proxy_target("bz-db", *echo_server)
    proc, port = start_proxy()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"hello postgres")
            assert conn.recv(100) == b"hello postgres"
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert fake_fly.calls("proxy")[-1]["exit"] == 0


def test_the_drop_fault_cuts_a_proxied_connection(fake_fly: FakeFly, echo_server: tuple[str, int]) -> None:
    fake_fly.add_pg_app("bz-db", proxy_target="{}:{}".format(*echo_server))
    fake_fly.fault("proxy", "drop", after_bytes=4)
    proc, port = start_proxy()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"0123456789")
            received = b""
            while chunk := conn.recv(100):
                received += chunk
        assert received == b"0123"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_fail_once_fails_the_first_call_only(fake_fly: FakeFly) -> None:
    fake_fly.fault("apps create", "fail_once", error="Post \"https://api.fly.io/graphql\": EOF")
    first = fly("apps", "create", "bz", "-o", "personal")
    assert (first.returncode, first.stderr.strip()) == (1, 'Error: Post "https://api.fly.io/graphql": EOF')
    assert fly("apps", "create", "bz", "-o", "personal").returncode == 0


def test_a_fault_can_match_one_kind_of_deploy(fake_fly: FakeFly) -> None:
    fake_fly.add_app("bz")
    fake_fly.fault("deploy", "fail_always", match="--build-only")
    assert fly("deploy", "-a", "bz", "--build-only", "--image-label", "v1").returncode == 1
    assert fly("deploy", "-a", "bz", "--yes").returncode == 0


def test_garbage_output_is_not_json_but_exits_0(fake_fly: FakeFly) -> None:
    fake_fly.add_app("bz")
    fake_fly.fault("apps list", "garbage")
    result = fly("apps", "list", "--json")
    assert result.returncode == 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_a_hanging_fly_can_be_killed(fake_fly: FakeFly) -> None:
    fake_fly.fault("releases", "hang")
    fake_fly.add_app("bz")
    proc = subprocess.Popen(["fly", "releases", "--json", "-a", "bz"], stdout=subprocess.DEVNULL)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1)
    proc.terminate()
    assert proc.wait(timeout=30) != 0
    assert fake_fly.calls("releases")[-1]["hung"] is True


def test_a_failing_release_command_aborts_the_deploy_before_migrating(fake_fly: FakeFly, tmp_path: Path) -> None:
    fake_fly.add_app("bz")
    write_migrations(tmp_path, "20240101000000_create_accounts.exs")
    fake_fly.fault("release_command", "fail_once")
    failed = fly("deploy", "-a", "bz", "--yes")
    assert failed.returncode == 1 and "release command failed - aborting deployment" in failed.stderr
    assert fake_fly.applied_migrations("bz") == [] and fake_fly.live_release("bz") is None
    assert fly("deploy", "-a", "bz", "--yes").returncode == 0
    assert fake_fly.applied_migrations("bz") == [20240101000000]
    assert [r["status"] for r in fake_fly.releases("bz")] == ["failed", "complete"]


def test_the_call_log_names_env_vars_without_their_values(fake_fly: FakeFly) -> None:
    fly("auth", "whoami", env={"FLY_API_TOKEN": "fo1_very_secret_token"})
    call = fake_fly.calls("auth whoami")[-1]
    assert "FLY_API_TOKEN" in call["env_names"] and call["exit"] == 0
    assert b"fo1_very_secret_token" not in (fake_fly.home_dir / "calls.jsonl").read_bytes()
