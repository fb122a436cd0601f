"""The Repo options init writes reach Postgres the way Fly serves it — proven on a real server.

Fly's private network is IPv6 only (`<db>.flycast` has no A record) and Postgres Flex offers no TLS
there. A real PostgreSQL listening on IPv6 loopback only, with ssl off, plays that database: runtime.exs
is evaluated for :prod by real Elixir with a Fly-shaped DATABASE_URL, its Repo options are turned into
the equivalent libpq connection (the address family the socket options ask for, the sslmode `ssl:`
demands), and psql connects with them. The options the seed plan wrote (`ssl: true`, no `:inet6`) fail
against the same server.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bezgelor_tasks import elixir
from bezgelor_tasks.backup import clients, commands, scratch
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI
from tests.support.inv import run_inv
from tests.support.umbrella import copy_fixture, git_init

pytestmark = [pytest.mark.elixir, pytest.mark.postgres]


@pytest.fixture(scope="module")
def ipv6_only_postgres():
    if not elixir.available():
        pytest.skip("Elixir is not installed")
    try:
        client = clients.newest(need=("initdb", "pg_ctl", "psql"))
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"PostgreSQL server programs not installed: {e}")
    ex = Executor(ui=UI(color=False), echo=False)
    with scratch.scratch_cluster(ex, client, prefix="bezgelor-test-v6-", listen="::1") as cluster:
        password = "pw-" + secrets.token_urlsafe(12)
        ex.run(commands.psql(client, cluster.socket_conn(),
                             f"CREATE ROLE bezgelor LOGIN PASSWORD '{password}'; "
                             "CREATE DATABASE bezgelor OWNER bezgelor;",
                             purpose="create the game role", mutates=True))
        yield client, cluster.port, password


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_fixture(tmp_path_factory.mktemp("v6") / "bezgelor")
    git_init(root)
    assert run_inv("init", "--root", str(root)).returncode == 0
    return root


def evaluated_repo(root: Path, database_url: str) -> dict:
    env = {"SECRET_KEY_BASE": "x" * 64, "CLOAK_KEY": base64.b64encode(bytes(32)).decode(),
           "DATABASE_URL": database_url, "WORLD_PUBLIC_ADDRESS": "203.0.113.7", "PHX_HOST": "bz.example.com"}
    config = elixir.read_config(root / "config/runtime.exs", "prod", env)
    return config[":bezgelor_db"]["Elixir.BezgelorDb.Repo"]


def libpq_connection(repo: dict) -> dict[str, str]:
    """What Postgrex does with these options, as libpq parameters: `.flycast` resolves only in the family
    the socket options ask for (here: the loopback address of that family); `ssl: true` demands TLS."""
    url = urlsplit(repo["url"])
    inet6 = ":inet6" in (repo.get("socket_options") or [])
    ssl = repo.get("ssl") not in (None, "false", "nil", False)
    return {"hostaddr": "::1" if inet6 else "127.0.0.1", "port": str(url.port), "user": url.username or "",
            "password": url.password or "", "dbname": url.path.lstrip("/"), "sslmode": "require" if ssl else "disable"}


def connects(client, conn: dict[str, str]) -> subprocess.CompletedProcess:
    conninfo = " ".join(f"{k}={v}" for k, v in conn.items() if k != "password")
    return subprocess.run([client.tool("psql"), conninfo, "-XAtc", "select 'connected'"], capture_output=True,
                          text=True, env={**os.environ, "PGPASSWORD": conn["password"], "PGCONNECT_TIMEOUT": "5"},
                          timeout=30)


def fly_url(port: int, password: str) -> str:
    # `fly postgres attach` writes this shape (with the app's .flycast name and sslmode=disable).
    return f"postgres://bezgelor:{password}@bezgelor-db.flycast:{port}/bezgelor?sslmode=disable"


def test_the_repo_init_configures_connects_to_an_ipv6_only_postgres_without_tls(initialised, ipv6_only_postgres):
    client, port, password = ipv6_only_postgres
    repo = evaluated_repo(initialised, fly_url(port, password))
    conn = libpq_connection(repo)
    assert conn["hostaddr"] == "::1" and conn["sslmode"] == "disable"
    proc = connects(client, conn)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "connected"


def test_the_seed_plans_repo_options_fail_against_the_same_server(initialised, ipv6_only_postgres, tmp_path):
    client, port, password = ipv6_only_postgres
    root = tmp_path / "seed-plan"
    shutil.copytree(initialised, root, symlinks=True)
    runtime = root / "config/runtime.exs"
    text = runtime.read_text()
    ours = "    socket_options: socket_options ++ [keepalive: true],\n    ssl: false,\n"
    assert ours in text
    runtime.write_text(text.replace(ours, "    ssl: true,\n    ssl_opts: [verify: :verify_none],\n"))
    repo = evaluated_repo(root, fly_url(port, password))
    conn = libpq_connection(repo)
    assert conn == {**conn, "hostaddr": "127.0.0.1", "sslmode": "require"}
    assert connects(client, conn).returncode != 0
    # each mistake alone is enough to fail
    assert connects(client, {**conn, "hostaddr": "::1"}).returncode != 0          # TLS the server does not offer
    assert connects(client, {**conn, "sslmode": "disable"}).returncode != 0       # no A record / IPv4 refused
    assert connects(client, {**conn, "hostaddr": "::1", "sslmode": "disable"}).returncode == 0
