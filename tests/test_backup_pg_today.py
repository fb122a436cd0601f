"""Postgres as Fly runs it today: the major is pinned at create and known before dumping, a newer server
than every local pg_dump is refused before any tunnel, a fresh checkout backs up with no password file,
and a backup killed mid-dump leaves no pg_dump, psql, fly proxy or password file behind.

The fake flyctl's proxy forwards to a real PostgreSQL 15; the major Fly *reports* is the fake's (the
machine image tag), never faked in our code.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import backup, manifest, session
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import postgres_commands
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI
from tests.support.inv import INTERRUPTED, PROJECT

pytestmark = pytest.mark.postgres


def _settings(tmp_path: Path, **env: str) -> Settings:
    return settings_load.load(tmp_path, environ={"BEZGELOR_DB_NAME": env.pop("db"), **env})


def _create_flex(fake_fly, s, pg_server) -> Executor:
    """`fly postgres create` with our argv (the fake records the image it was pinned to), then point its
    proxy at the real PostgreSQL 15."""
    ex = Executor(ui=UI(color=False), echo=False)
    ex.run(postgres_commands.postgres_create(s))
    fake_fly.set_pg_proxy_target(s.db_app, pg_server.host, pg_server.port)
    return ex


def test_flex_pinned_at_15_is_created_with_fly_backups_and_dumped_with_a_client_chosen_before_the_tunnel(
        fake_fly, pg_server, game_db, tmp_path, monkeypatch):
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    s = _settings(tmp_path, db=game_db, BEZGELOR_DB_USER=pg_server.user)
    assert s.pg_major == 15  # the default: the client Debian 12 ships; newer clients dump it too
    ex = _create_flex(fake_fly, s, pg_server)
    create = fake_fly.argvs("postgres create")[0]
    assert create[create.index("--image-ref") + 1] == "flyio/postgres-flex:15"
    assert "--enable-backups" in create and fake_fly.app(s.db_app)["pg"]["backups_enabled"]
    assert session.reported_major(s, ex) == 15

    made = backup.create_backup(s, ex, UI(color=False))
    assert made.server_version.startswith("15.") and made.pg_dump_major >= 15
    order = [c["cmd"] for c in fake_fly.calls() if c["cmd"] in ("image show", "proxy")]
    assert order[-2:] == ["image show", "proxy"], "the major is known before the tunnel opens"
    assert manifest.load(made.path).row_counts["public.items"] == 3000


def test_a_server_newer_than_every_local_pg_dump_is_refused_before_any_tunnel_naming_what_to_install(
        fake_fly, pg_server, game_db, tmp_path, monkeypatch):
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    fake_fly.add_pg_app("bezgelor-db", proxy_target=f"127.0.0.1:{pg_server.port}")
    fake_fly.set_pg_image("bezgelor-db", "docker-hub-mirror.fly.io/flyio/postgres-flex:18")  # Fly reports 18
    s = _settings(tmp_path, db=game_db, BEZGELOR_DB_USER=pg_server.user)
    with pytest.raises(UserError) as err:
        backup.create_backup(s, Executor(ui=UI(color=False), echo=False), UI(color=False))
    text = str(err.value)
    assert "PostgreSQL 18" in text and "no dump was started" in text
    assert "install" in text.lower() and "18" in text.split("Fix:")[1]
    assert fake_fly.calls("proxy") == [], "no tunnel was opened"
    assert not manifest.list_backups(s.backups_path) and not manifest.partials(s.backups_path)


def _attached_app(fake_fly, pg_server, game_db: str) -> str:
    """The game app, deployed, its machine seeing the DATABASE_URL attach set (pointing at the real server)."""
    fake_fly.add_pg_app("bezgelor-db", proxy_target=f"127.0.0.1:{pg_server.port}")
    fake_fly.add_app("bezgelor")
    fake_fly.start_machine("bezgelor", "registry.fly.io/bezgelor:deployment-1")  # one started machine
    url = f"postgres://{pg_server.user}:{pg_server.password}@bezgelor-db.flycast:5432/{game_db}?sslmode=disable"
    fake_fly.set_machine_env("bezgelor", DATABASE_URL=url)
    return url


def test_a_fresh_checkout_with_no_password_file_backs_up_with_credentials_from_fly(
        fake_fly, pg_server, game_db, tmp_path, capsys):
    _attached_app(fake_fly, pg_server, game_db)
    s = _settings(tmp_path, db=game_db)  # no BEZGELOR_DB_PASSWORD, no .bezgelor/, user left at its default
    assert not (s.state_dir / f"{s.db_app}.password").exists()
    ex = Executor(ui=UI(color=False))
    made = backup.create_backup(s, ex, UI(color=False))
    assert made.row_counts["public.items"] == 3000
    ssh = fake_fly.argvs("ssh console")
    assert ssh and ssh[0][-2:] == ["-C", "printenv DATABASE_URL"]

    cache = s.state_dir / f"{s.db_app}.password"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600, "a local copy is only a 0600 cache"
    out = capsys.readouterr()
    for where in (out.out, out.err, *(" ".join(c["argv"]) for c in fake_fly.calls()),
                  *(" ".join(r.command.argv) + str(dict(r.command.env)) for r in ex.history),
                  (made.path / manifest.MANIFEST).read_text()):
        assert pg_server.password not in where

    # the next run uses the cache; a stale cache (rotated password) is refreshed from Fly once
    cache.write_text("PASSWORD=rotated-away\nUSERNAME=bezgelor\n")
    os.chmod(cache, 0o600)
    assert backup.create_backup(s, Executor(ui=UI(color=False), echo=False), UI(color=False)).size > 0
    assert pg_server.password in cache.read_text()


def test_a_wrong_password_is_one_sentence_without_libpq_internals(fake_fly, pg_server, game_db, tmp_path,
                                                                    monkeypatch):
    fake_fly.add_pg_app("bezgelor-db", proxy_target=f"127.0.0.1:{pg_server.port}")
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", "not-the-password")
    s = _settings(tmp_path, db=game_db, BEZGELOR_DB_USER=pg_server.user)
    with pytest.raises(UserError) as err:
        backup.create_backup(s, Executor(ui=UI(color=False), echo=False), UI(color=False))
    text = str(err.value)
    assert "refused the password for user bezgelor" in text and "PGPASSWORD/BEZGELOR_DB_PASSWORD" in text
    for internal in ("127.0.0.1", "port ", "FATAL", "/tmp", "/dev/fd", "before or while processing"):
        assert internal not in text.split("Fix:")[0], internal


def test_postgres_closing_the_connection_and_refusing_it_are_one_sentence_each():
    from bezgelor_tasks.backup import pgerrors
    s = settings_load.load(".", environ={})
    closed = pgerrors.explain(
        'pg_dump: error: connection to server at "127.0.0.1", port 39121 failed: server closed the connection '
        "unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the "
        "request.", s, user="postgres")
    refused = pgerrors.explain(
        'psql: error: connection to server at "127.0.0.1", port 39121 failed: FATAL:  sorry, too many clients '
        "already", s, user="postgres")
    assert closed is not None and closed.kind == "closed" and "before or while" not in closed.sentence
    assert refused is not None and refused.kind == "refused"
    assert refused.sentence == "PostgreSQL on bezgelor-db refused the connection: sorry, too many clients already."
    for said in (closed, refused):
        assert said.sentence.count(". ") == 0 and "39121" not in said.sentence


def _processes(marker: str) -> dict[str, list[int]]:
    """pg_dump, psql and fly proxy processes whose command line or environment carries `marker`."""
    found: dict[str, list[int]] = {"pg_dump": [], "psql": [], "proxy": []}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        text = b" ".join(argv)
        if marker.encode() not in text and marker.encode() not in env:
            continue
        if argv and argv[0].endswith(b"pg_dump"):
            found["pg_dump"].append(int(d.name))
        elif argv and argv[0].endswith(b"psql"):
            found["psql"].append(int(d.name))
        elif b" proxy 0:5432 " in text:
            found["proxy"].append(int(d.name))
    return found


def _pgpass_files() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("bezgelor-pgpass-*"))


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["sigterm", "sigint", "crash"])
def test_a_backup_interrupted_mid_dump_leaves_no_process_and_no_password_file(fake_fly, pg_server, game_db,
                                                                              tmp_path, how):
    fake_fly.add_pg_app("bezgelor-db", proxy_target=f"127.0.0.1:{pg_server.port}")
    env = {**os.environ, "BEZGELOR_DB_PASSWORD": pg_server.password, "BEZGELOR_DB_NAME": game_db,
           "BEZGELOR_DB_USER": pg_server.user, "BEZGELOR_ROOT": str(tmp_path)}
    before = set(_pgpass_files())
    marker, out, err = game_db, "", ""
    with pg_server.dumps_wait(game_db):   # pg_dump waits on a lock: it is surely mid-dump when we strike
        proc = subprocess.Popen([sys.executable, "-m", "invoke", "--search-root", str(PROJECT), "db.backup"],
                                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not _processes(marker)["pg_dump"] and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            running = _processes(marker)
            assert running["pg_dump"] and running["psql"], f"pg_dump never started: {proc.poll()} {running}"
            assert _processes(os.environ["FAKE_FLY_HOME"])["proxy"], "the tunnel is open"
            proc.send_signal(how)
            out, err = proc.communicate(timeout=30)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (any(_processes(marker).values()) or
                                                   any(_processes(os.environ["FAKE_FLY_HOME"]).values())):
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert _processes(marker) == {"pg_dump": [], "psql": [], "proxy": []}
    assert _processes(os.environ["FAKE_FLY_HOME"]) == {"pg_dump": [], "psql": [], "proxy": []}
    assert set(_pgpass_files()) <= before, "no file holding the password is left"
    if how != signal.SIGKILL:  # our own cleanup ran: no partial backup, a clear message, no traceback
        assert proc.returncode in INTERRUPTED and "Traceback" not in err and "interrupted" in err
        assert not manifest.partials(Path(tmp_path) / ".bezgelor" / "backups")
    assert pg_server.password not in out + err
