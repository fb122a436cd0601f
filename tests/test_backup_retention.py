"""Retention on a synthetic history of backups (dates from names and manifests, never the clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from invoke import Context

from bezgelor_tasks import settings_load
from bezgelor_tasks.backup import manifest, prune, retention
from bezgelor_tasks.run import Executor
from bezgelor_tasks.tasks import db_backup
from bezgelor_tasks.ui import UI

TODAY = date(2026, 11, 28)


def at(day: date, hour: int = 3) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def history(verified_days: set[date] | None = None) -> list[retention.Candidate]:
    """A nightly backup for 150 days, all verified unless `verified_days` says which are."""
    out = []
    for n in range(150, -1, -1):
        day = TODAY - timedelta(days=n)
        ok = verified_days is None or day in verified_days
        out.append(retention.Candidate(f"{manifest.stamp(at(day))}_x", at(day), ok))
    return out


def kept(decisions: list[retention.Decision]) -> list[str]:
    return [d.name[:8] for d in decisions if d.keep]


def test_dailies_stay_a_week_and_firsts_of_month_stay_three_months():
    decisions = retention.decide(history(), TODAY, daily_days=7, monthly_months=3)
    assert kept(decisions) == ["20260901", "20261001", "20261101",
                               "20261122", "20261123", "20261124", "20261125", "20261126", "20261127", "20261128"]
    reasons = {d.name[:8]: d.reason for d in decisions}
    assert "first of 2026-09" in reasons["20260901"] and "daily" in reasons["20261125"]
    assert not next(d for d in decisions if d.name.startswith("20260801")).keep
    assert "older than 3 months" in next(d for d in decisions if d.name.startswith("20260801")).reason


def test_the_newest_verified_backup_stays_however_old_it_is():
    only = {TODAY - timedelta(days=100)}
    decisions = retention.decide(history(verified_days=only), TODAY, daily_days=7, monthly_months=3)
    newest_verified = next(d for d in decisions if d.name.startswith(manifest.stamp(at(TODAY - timedelta(days=100)))))
    assert newest_verified.keep and "newest verified" in newest_verified.reason


def test_a_month_keeps_its_first_verified_backup_rather_than_an_unverified_earlier_one():
    oct_days = {date(2026, 10, d) for d in range(3, 32)} | {date(2026, 11, d) for d in range(1, 29)} | \
        {date(2026, 9, d) for d in range(1, 31)}
    decisions = retention.decide(history(verified_days=oct_days), TODAY)
    assert "20261003" in kept(decisions) and "20261001" not in kept(decisions)


def test_an_empty_history_keeps_nothing_and_deletes_nothing():
    assert retention.decide([], TODAY) == []


def _write_backup(root, when: datetime, verified: bool | None) -> None:
    d = root / f"{manifest.stamp(when)}_bezgelor-db_bezgelor"
    d.mkdir(parents=True)
    (d / "dump.pgc").write_bytes(b"PGDMP")
    verifications = [] if verified is None else [{"tier": "full", "ok": verified, "problems": [], "at": "x"}]
    manifest.write(Executor(), d, {"created_at": when.isoformat(), "files": {"dump.pgc": {"size": 5, "sha256": "0"}},
                       "archive": "dump.pgc", "verifications": verifications, "row_counts": {}})


def test_prune_deletes_on_disk_what_retention_says_and_dry_run_deletes_nothing(tmp_path, capsys):
    s = settings_load.load(tmp_path, environ={})
    for n in range(0, 40, 2):
        _write_backup(s.backups_path, at(TODAY - timedelta(days=n)), verified=(n == 30) or None)
    (s.backups_path / f"{manifest.PARTIAL_PREFIX}old").mkdir()
    before = sorted(p.name for p in s.backups_path.iterdir())

    dry = prune.prune(s, UI(color=False), Executor(dry_run=True), today=TODAY)
    assert sorted(p.name for p in s.backups_path.iterdir()) == before
    assert dry["deleted"] and "would delete" in capsys.readouterr().out

    prune.prune(s, UI(color=False), Executor(), today=TODAY)
    left = [b.name[:8] for b in manifest.list_backups(s.backups_path)]
    assert left == ["20261029", "20261102", "20261122", "20261124", "20261126", "20261128"]
    # 20261029 is the only verified backup (and so also the first of October that counts)


def test_inv_db_prune_dry_run_shows_what_would_go(tmp_path, capsys):
    s = settings_load.load(tmp_path, environ={})
    _write_backup(s.backups_path, at(date(2020, 1, 5)), verified=False)
    _write_backup(s.backups_path, at(date(2020, 1, 9)), verified=True)
    db_backup.prune(Context(), root=str(tmp_path), dry_run=True)
    out = capsys.readouterr().out
    assert "would delete 20200105T030000Z" in out and "keep   20200109T030000Z" in out
    assert len(manifest.list_backups(s.backups_path)) == 2


def test_inv_db_backup_dry_run_shows_the_proxy_and_pg_dump_and_runs_nothing(tmp_path, capsys):
    db_backup.backup(Context(), root=str(tmp_path), jobs=4, dry_run=True)
    out = capsys.readouterr().out
    assert "would run fly proxy 0:5432 -a bezgelor-db" in out
    assert "pg_dump" in out and "-Fd -j 4 --compress=" in out and "--lock-wait-timeout=60s" in out
    assert not (tmp_path / ".bezgelor" / "backups").exists()
