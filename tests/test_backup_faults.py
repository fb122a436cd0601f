"""Backups that go wrong: each failure is detected, named, leaves nothing that passes as complete,
and the next backup succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import backup, clients, manifest, session, verify
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(pg_server, game_db, tmp_path, monkeypatch):
    monkeypatch.setenv("BEZGELOR_DB_PASSWORD", pg_server.password)
    s = settings_load.load(tmp_path, environ={}, db_name=game_db, db_user=pg_server.user)
    ui = UI(color=False)
    return s, Executor(ui=ui, echo=False), ui, session.direct_endpoint(pg_server.host, pg_server.port)


def nothing_passes_as_complete(root: Path) -> None:
    assert manifest.list_backups(root) == [] or all(
        b.last_verification is not None and not b.verified for b in manifest.list_backups(root))
    assert not manifest.partials(root)


def _pg_dump_pids(marker: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"pg_dump") and any(marker.encode() in a for a in cmd):
                pids.append(int(d.name))
    return pids


def test_a_pg_dump_killed_mid_backup_leaves_nothing_and_the_next_backup_succeeds(env, pg_server, game_db):
    s, ex, ui, endpoint = env
    # pg_dump waits on a locked table (pg_server.dumps_wait), so it is certainly running when killed.
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = backup.create_backup(s, ex, ui, endpoint=endpoint)
        except UserError as e:
            outcome["error"] = e

    with pg_server.dumps_wait(game_db, rows=True):
        worker = threading.Thread(target=run)
        worker.start()
        pids: list[int] = []
        while not pids and worker.is_alive():
            pids = _pg_dump_pids(str(s.backups_path))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        worker.join(60)
    assert pids, f"pg_dump never started: {outcome}"
    assert "killed" in str(outcome.get("error"))
    nothing_passes_as_complete(s.backups_path)
    made = backup.create_backup(s, ex, ui, endpoint=endpoint)
    assert made.row_counts["public.events_2026"] == 1


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_fails_the_backup_clearly_and_leaves_nothing(env, tiny_disk):
    s, ex, ui, endpoint = env
    small = settings_load.load(s.root, environ={}, db_name=s.db_name, db_user=s.db_user, backup_dir=str(tiny_disk))
    with pytest.raises(UserError) as err:
        backup.create_backup(small, ex, ui, endpoint=endpoint)
    text = str(err.value)
    assert "full" in text.lower() or "space" in text.lower()
    assert "Nothing was kept" in text
    nothing_passes_as_complete(tiny_disk)
    assert list(tiny_disk.iterdir()) == []
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_disk)], check=True)
    assert backup.create_backup(small, ex, ui, endpoint=endpoint).path.parent == tiny_disk


def _damage_and_verify(env, damage, tier: str, *, jobs: int = 1) -> tuple[manifest.Backup, dict]:
    s, ex, ui, endpoint = env
    made = backup.create_backup(s, ex, ui, endpoint=endpoint, jobs=jobs)
    damage(made.path)
    b = manifest.load(made.path)
    result = verify.verify(ex, ui, b, tier)
    return manifest.load(made.path), result


def _truncate(path: Path) -> None:
    archive = path / "dump.pgc"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])


def _flip_one_byte(path: Path) -> None:
    archive = path / "dump.pgc"
    data = bytearray(archive.read_bytes())
    data[len(data) * 2 // 3] ^= 0x01
    archive.write_bytes(bytes(data))


def _remove_a_data_file(path: Path) -> None:
    next((path / "dump.dir").glob("*.dat.gz")).unlink()


@pytest.mark.parametrize("damage, words", [(_truncate, "truncated"), (_flip_one_byte, "corrupted")])
@pytest.mark.parametrize("tier", ["quick", "standard", "full"])
def test_a_damaged_archive_fails_every_verification_tier_and_is_marked_failed(env, damage, words, tier):
    b, result = _damage_and_verify(env, damage, tier)
    assert not result["ok"] and words in " ".join(result["problems"])
    assert not b.verified and b.last_verification["tier"] == tier
    with pytest.raises(UserError, match="damaged"):
        verify.require_ok(b, result)


def test_a_directory_backup_missing_a_file_fails_verification(env):
    b, result = _damage_and_verify(env, _remove_a_data_file, "full", jobs=2)
    assert not result["ok"] and "is missing" in " ".join(result["problems"])
    assert not b.verified


def test_a_truncated_archive_is_caught_by_the_full_read_even_when_its_checksum_was_recorded_after(env):
    """standard's full read does not rely on the manifest: an archive truncated before it was checksummed."""
    def truncate_and_rechecksum(path: Path) -> None:
        _truncate(path)
        b = manifest.load(path)
        b.data["files"] = manifest.file_digests(path / "dump.pgc", path)
        manifest.write(Executor(), path, b.data)

    b, result = _damage_and_verify(env, truncate_and_rechecksum, "standard")
    assert not result["ok"] and "reading the whole archive failed" in " ".join(result["problems"])


def test_a_server_newer_than_every_installed_pg_dump_names_the_client_to_install():
    with pytest.raises(UserError) as err:
        clients.choose(17, [clients.Client(15, Path("/usr/lib/postgresql/15/bin"))])
    assert "postgresql-client-17" in str(err.value) and "PostgreSQL 17" in str(err.value)
    assert clients.choose(14, clients.installed()).major >= 14
    assert clients.server_major("150020") == 15 and clients.server_major("90624") == 9


def test_without_any_matching_client_the_backup_fails_before_dumping(env, tmp_path):
    s, ex, ui, endpoint = env
    with pytest.raises(UserError, match="postgresql-client"):
        backup.create_backup(s, ex, ui, endpoint=endpoint, search=str(tmp_path / "nothing" / "*" / "bin"))
    nothing_passes_as_complete(s.backups_path)
