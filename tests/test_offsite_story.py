"""Off-site copies, end to end: a real PostgreSQL, the fake flyctl's real `fly proxy`, a real S3 server
(SeaweedFS on loopback) and age keys made here."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest
from invoke import Context
from invoke.exceptions import Exit

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import commands, manifest, offsite, offsite_ops, session
from bezgelor_tasks.backup.store import Store
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.tasks import db_backup, db_offsite, world
from bezgelor_tasks.ui import UI

pytestmark = pytest.mark.postgres


@dataclass
class Env:
    root: Path
    bucket: str
    prefix: str
    identity: object
    s3: object
    pg: object
    db: str

    def settings(self) -> Settings:
        return settings_load.load(self.root)

    def objects(self) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(  # type: ignore[attr-defined]
            Bucket=self.bucket, Prefix=self.prefix + "/")
        return sorted(o["Key"][len(self.prefix) + 1:] for p in pages for o in p.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket,  # type: ignore[attr-defined]
                                  Key=f"{self.prefix}/{key}")["Body"].read()

    def restore_by_hand(self, archive: bytes, dbname: str) -> dict[str, int]:
        """What README tells an operator: decrypt, then pg_restore into a new database (no bezgelor-tasks)."""
        path = self.root / "by-hand.pgc"
        if shutil.which("age"):   # the age CLI when installed (Debian: apt-get install age), else pyrage's decrypt
            key = self.root / "by-hand.key"
            key.write_text(str(self.identity) + "\n")
            subprocess.run(["age", "-d", "-i", str(key), "-o", str(path)], input=archive, check=True)
        else:
            path.write_bytes(pyrage.decrypt(archive, [self.identity]))
        self.pg.sql(f'CREATE DATABASE "{dbname}";')
        ex = Executor(ui=UI(color=False), echo=False)
        ex.run(commands.pg_restore(self.pg.client, self.pg.admin(dbname), path, jobs=1))
        return session.fetch_row_counts(ex, self.pg.client, self.pg.admin(dbname))


@pytest.fixture
def env(s3_server, fake_fly, pg_server, game_db, tmp_path, monkeypatch) -> Env:
    fake_fly.add_pg_app("bezgelor-db", proxy_target=f"127.0.0.1:{pg_server.port}")
    bucket, prefix = s3_server.new_bucket("bezgelor-tests"), f"t-{secrets.token_hex(4)}"
    for k, v in s3_server.env(bucket, prefix).items():
        monkeypatch.setenv(k, v)
    identity = pyrage.x25519.Identity.generate()
    keyfile = tmp_path / "bezgelor-backup.key"
    keyfile.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    for k, v in {"BEZGELOR_BACKUP_AGE_RECIPIENTS": str(identity.to_public()),
                 "BEZGELOR_BACKUP_AGE_IDENTITY_FILE": str(keyfile), "BEZGELOR_DB_PASSWORD": pg_server.password,
                 "BEZGELOR_DB_NAME": game_db, "BEZGELOR_DB_USER": pg_server.user,
                 "PGHOST": pg_server.host, "PGPORT": str(pg_server.port), "PGUSER": pg_server.user,
                 "PGPASSWORD": pg_server.password}.items():
        monkeypatch.setenv(k, v)
    return Env(tmp_path, bucket, prefix, identity, s3_server.client(), pg_server, game_db)


def test_an_offsite_backup_is_sealed_with_age_and_restores_by_hand_with_equal_row_counts(env, capsys):
    db_backup.backup(Context(), root=str(env.root), offsite=True)
    (local,) = manifest.list_backups(env.settings().backups_path)
    keys = env.objects()
    sealed = f"backups/{local.name}/dump.pgc.age"
    assert sealed in keys and f"backups/{local.name}/manifest.json" in keys
    data = env.read(sealed)
    assert data.startswith(b"age-encryption.org/v1\n") and b"PGDMP" not in data
    told = json.loads(env.read(f"backups/{local.name}/manifest.json"))
    assert told["offsite"]["encryption"] == {"method": "age", "recipients": [str(env.identity.to_public())]}
    assert env.pg.password not in json.dumps(told) and "AGE-SECRET-KEY" not in json.dumps(told)
    assert env.restore_by_hand(data, f"{env.db}_by_hand") == local.row_counts
    capsys.readouterr()
    db_backup.backups(Context(), root=str(env.root), json=True, fly=False)
    (row,) = json.loads(capsys.readouterr().out)["backups"]
    assert row["where"] == ["local", "off-site"] and row["offsite"] == "verified (standard)" and row["encrypted"]


def test_with_the_local_copy_gone_restore_from_offsite_brings_it_back(env):
    db_backup.backup(Context(), root=str(env.root), offsite=True, verify="quick")
    s = env.settings()
    (local,) = manifest.list_backups(s.backups_path)
    shutil.rmtree(local.path)
    db_backup.restore(Context(), backup=local.name[:10], root=str(env.root), from_="offsite",
                      database=f"{env.db}_back")
    assert [b.name for b in manifest.list_backups(s.backups_path)] == [local.name]
    assert env.pg.dump_contents(f"{env.db}_back") == env.pg.dump_contents(env.db)


def test_restoring_the_offsite_copy_of_a_backup_kept_locally_leaves_no_decrypted_copy_behind(env):
    db_backup.backup(Context(), root=str(env.root), offsite=True, verify="quick")
    s = env.settings()
    (local,) = manifest.list_backups(s.backups_path)
    before = sorted(p.name for p in s.backups_path.iterdir())
    db_backup.restore(Context(), backup=local.name, root=str(env.root), from_="offsite", database=f"{env.db}_again")
    assert env.pg.dump_contents(f"{env.db}_again") == env.pg.dump_contents(env.db)
    assert [b.name for b in manifest.list_backups(s.backups_path)] == [local.name]
    assert sorted(p.name for p in s.backups_path.iterdir()) == before   # the fetched copy is gone again


def test_one_flipped_byte_fails_every_tier_names_the_damaged_end_and_the_drill_fails_loudly(env, capsys):
    db_backup.backup(Context(), root=str(env.root), offsite=True, verify="quick")
    (local,) = manifest.list_backups(env.settings().backups_path)
    key = f"backups/{local.name}/dump.pgc.age"
    data = bytearray(env.read(key))
    data[len(data) // 2] ^= 0x01
    env.s3.put_object(Bucket=env.bucket, Key=f"{env.prefix}/{key}", Body=bytes(data))
    s, ui = env.settings(), UI(color=False)
    for tier in ("quick", "standard", "full"):
        result = offsite_ops.verify_offsite(s, Executor(ui=ui), ui, None, tier)
        assert not result["ok"] and "off-site end" in result["problems"][0]
        assert result["other_end"] == "the local copy is intact (quick check passed)"
    capsys.readouterr()
    with pytest.raises(Exit):
        db_offsite.drill(Context(), root=str(env.root))
    err = capsys.readouterr().err
    assert "restore drill" in err and "FAILED" in err and "off-site end" in err and "Fix:" in err
    assert any(k.startswith("drills/") and k.endswith("_failed.json") for k in env.objects())
    assert not offsite.list_offsite(Store(s, Executor(ui=ui)))[0].verified


def test_a_drill_records_how_long_the_restore_took_where_later_runs_find_it(env, capsys):
    db_backup.backup(Context(), root=str(env.root), offsite=True, verify="none")
    capsys.readouterr()
    db_offsite.drill(Context(), root=str(env.root), json=True)
    record = json.loads(capsys.readouterr().out)
    assert record["ok"] and record["restore_seconds"] > 0 and record["problems"] == []
    assert sum(record["row_counts"].values()) == 6902
    db_backup.backups(Context(), root=str(env.root), fly=False)
    out = capsys.readouterr().out
    assert f"last drill               ok {record['at'][:10]}" in out and "restore took" in out
    assert "newest verified off-site " + record["backup"] in out
    # The operator's one screen says the same: the newest verified copy at each end, the last drill and its time.
    world.status(Context(), root=str(env.root))
    screen = capsys.readouterr().out
    assert f"old ({record['backup']})" in screen.split("backup       off-site (s3://")[1].splitlines()[0]
    assert "none yet" in screen.split("backup       local backups (")[1].splitlines()[0]   # taken unverified
    assert f"last drill   ok {record['at'][:10]}" in screen and f"{record['backup']}, restore took" in screen


def _error_of(fn, capsys) -> str:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    with pytest.raises(Exit):
        fn()
    err = capsys.readouterr().err.strip()
    assert err.count("error:") == 1 and err.count("Fix:") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("broken, said", [
    ("bucket", "does not exist"), ("credentials", "refused the credentials"), ("recipients", "Nothing was uploaded")])
def test_a_missing_bucket_bad_credentials_or_no_recipients_is_one_clear_error_and_nothing_changes(
        env, capsys, monkeypatch, broken, said):
    if broken == "bucket":
        monkeypatch.setenv("BEZGELOR_OFFSITE_URL", f"s3://no-such-bucket-here/{env.prefix}")
    elif broken == "credentials":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key")
    else:
        monkeypatch.delenv("BEZGELOR_BACKUP_AGE_RECIPIENTS")
    err = _error_of(lambda: db_backup.backup(Context(), root=str(env.root), offsite=True), capsys)
    assert said in err and "not-the-secret-key" not in err
    assert manifest.list_backups(env.settings().backups_path) == [] and env.objects() == []


def test_the_wrong_key_is_one_clear_error_and_records_nothing(env, capsys, monkeypatch):
    db_backup.backup(Context(), root=str(env.root), offsite=True, verify="quick")
    before = env.objects()
    other = pyrage.x25519.Identity.generate()
    (env.root / "other.key").write_text(f"{other}\n")
    monkeypatch.setenv("BEZGELOR_BACKUP_AGE_IDENTITY_FILE", str(env.root / "other.key"))
    err = _error_of(lambda: db_backup.verify_backup(Context(), root=str(env.root), from_="offsite", tier="quick"),
                    capsys)
    assert "cannot be read with your age identity" in err and str(env.identity.to_public()) in err
    assert str(other) not in err and env.objects() == before


def test_offsite_plaintext_only_when_asked_and_then_it_says_so(env, monkeypatch):
    monkeypatch.delenv("BEZGELOR_BACKUP_AGE_RECIPIENTS")
    monkeypatch.setenv("BEZGELOR_OFFSITE_PLAINTEXT", "yes")
    db_backup.backup(Context(), root=str(env.root), offsite=True, verify="none")
    (local,) = manifest.list_backups(env.settings().backups_path)
    assert env.read(f"backups/{local.name}/dump.pgc").startswith(b"PGDMP")


def test_a_dry_run_shows_the_upload_and_changes_nothing(env, capsys):
    db_backup.backup(Context(), root=str(env.root), offsite=True, dry_run=True)
    assert "would run upload <the new backup>, age-encrypted, to s3://" in capsys.readouterr().out
    assert env.objects() == [] and manifest.list_backups(env.settings().backups_path) == []


def test_retention_applies_at_both_ends_and_keeps_a_pinned_backup(env, monkeypatch, capsys):
    from datetime import UTC, datetime, timedelta

    from bezgelor_tasks.backup import backup, verify

    for k in ("BEZGELOR_BACKUP_KEEP_DAILY", "BEZGELOR_BACKUP_KEEP_MONTHLY", "BEZGELOR_OFFSITE_KEEP_DAILY",
              "BEZGELOR_OFFSITE_KEEP_MONTHLY"):
        monkeypatch.setenv(k, "1")
    s, ui = env.settings(), UI(color=False)
    ex = Executor(ui=ui)
    endpoint = session.direct_endpoint(env.pg.host, env.pg.port)
    now = datetime.now(UTC)
    names = []
    for days in (200, 100, 50, 0):
        made = backup.create_backup(s, ex, ui, endpoint=endpoint, now=now - timedelta(days=days))
        b = manifest.load(made.path)
        verify.verify(ex, ui, b, "quick")
        offsite.upload(s, ex, ui, manifest.load(made.path))
        names.append(made.name)
    db_offsite.pin(Context(), backup=names[0], root=str(env.root))
    db_backup.prune(Context(), root=str(env.root), dry_run=True)
    assert len(manifest.list_backups(s.backups_path)) == 4 and len(offsite.list_offsite(Store(s, ex))) == 4
    capsys.readouterr()
    db_backup.prune(Context(), root=str(env.root), json=True)
    decided = json.loads(capsys.readouterr().out)
    kept = {names[0], names[3]}
    assert {b.name for b in manifest.list_backups(s.backups_path)} == kept
    assert {b.name for b in offsite.list_offsite(Store(s, ex))} == kept
    assert {d["name"]: d["reason"] for d in decided["offsite"]["kept"]} == {
        names[0]: "pinned (kept until `inv db.unpin`)", names[3]: "newest verified backup (always kept)"}
    assert not any(names[1] in k or names[2] in k for k in env.objects())
    db_offsite.unpin(Context(), backup=names[0], root=str(env.root))
    db_backup.prune(Context(), root=str(env.root))
    assert {b.name for b in offsite.list_offsite(Store(s, ex))} == {names[3]}


def test_the_s3_server_killed_mid_upload_leaves_nothing_listed_and_the_next_run_succeeds(
        env, tmp_path, monkeypatch):
    import os
    from datetime import UTC, datetime, timedelta

    from tests.support.s3 import S3Server

    server = S3Server.start(tmp_path / "s3", owner=os.getpid())
    try:
        bucket = server.new_bucket()
        for k, v in server.env(bucket).items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("BEZGELOR_OFFSITE_MAX_MBPS", "4")   # ~3 s for 12 MB: the kill lands mid-upload
        s, ui = env.settings(), UI(color=False)
        ex = Executor(ui=ui)
        made = _fabricated_backup(s.backups_path, 12 << 20)
        killer = server.kill_once_uploading(bucket)
        with pytest.raises(UserError, match="did not answer|Cannot upload"):
            offsite.upload(s, ex, ui, made)
        killer.join()
        server = S3Server.start(tmp_path / "s3", ports=server.ports, owner=os.getpid(),
                                access_key=server.access_key, secret_key=server.secret_key)
        store = Store(s, ex)
        assert offsite.list_offsite(store) == []
        offsite.upload(s, ex, ui, made)
        assert [b.name for b in offsite.list_offsite(store)] == [made.name]
        later = datetime.now(UTC) + timedelta(hours=2)
        result = offsite_ops.prune_offsite(s, ex, ui, today=later.date(), now=later)
        assert [b.name for b in offsite.list_offsite(store)] == [made.name]
        assert result["aborted_uploads"] == [f"bezgelor/backups/{made.name}/dump.pgc.age"]
    finally:
        server.kill()


def _fabricated_backup(root: Path, size: int) -> manifest.Backup:
    """A complete local backup directory around `size` random bytes (the upload does not read the dump)."""
    import os
    from datetime import UTC, datetime

    name = f"{manifest.stamp(datetime.now(UTC))}_bezgelor-db_big"
    d = root / name
    d.mkdir(parents=True)
    (d / "dump.pgc").write_bytes(os.urandom(size))
    data = {"format_version": 1, "archive": "dump.pgc", "created_at": datetime.now(UTC).isoformat(),
            "files": manifest.file_digests(d / "dump.pgc", d), "row_counts": {}, "verifications": []}
    (d / manifest.MANIFEST).write_text(manifest.text(data))
    return manifest.load(d)
