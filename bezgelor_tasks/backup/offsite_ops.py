"""Work on both ends at once: verify an off-site copy, apply retention locally and off-site, list both.

Verifying an off-site copy downloads it, checks the stored object's sha256, decrypts it, checks the archive's
sha256, then runs the local tiers on that copy (quick: table of contents; standard: a full read; full: a
restore into a scratch PostgreSQL and the row counts). A failure says which end is damaged, and how the other
end is. The result is recorded off-site (`checks/`), never by rewriting the manifest.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bezgelor_tasks.backup import manifest, offsite, retention, verify
from bezgelor_tasks.backup import prune as prune_mod
from bezgelor_tasks.backup.offsite import OffsiteBackup, OffsiteDamaged
from bezgelor_tasks.backup.store import Store
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI

STALE_UPLOAD = timedelta(hours=1)   # an unfinished upload older than this is not running any more


def local_end(settings: Settings, executor: Executor, ui: UI, name: str) -> str:
    """How the local copy of `name` is (quick tier, not recorded): for messages about the other end."""
    b = next((x for x in manifest.list_backups(settings.backups_path) if x.name == name), None)
    if b is None:
        return "there is no local copy"
    result = verify.verify(executor, ui, b, "quick", record=False)
    return "the local copy is intact (quick check passed)" if result["ok"] else \
        "the local copy is damaged too: " + "; ".join(result["problems"])


def verify_offsite(settings: Settings, executor: Executor, ui: UI, name: str | None, tier: str, *,
                   store: Store | None = None, record: bool = True) -> dict[str, Any]:
    """Check an off-site copy at `tier`; the result (recorded off-site) names the damaged end."""
    if tier not in verify.TIERS:
        raise UserError(f"Unknown verification tier {tier!r}.", fix=f"use one of {', '.join(verify.TIERS)}.")
    store = store or Store(settings, executor)
    ob = offsite.find_offsite(store, name)
    started = time.monotonic()
    try:
        with offsite.fetched(settings, store, ob) as copy:
            problems = verify.verify(executor, ui, copy, tier, record=False, timeout=settings.command_timeout_s,
                                     )["problems"]
    except OffsiteDamaged as e:
        problems = [e.message]
    result: dict[str, Any] = {"tier": tier, "ok": not problems, "problems": problems, "end": "off-site",
                              "at": datetime.now(UTC).isoformat(), "seconds": round(time.monotonic() - started, 3)}
    if record:
        offsite.record_check(store, ob.name, result)
    if problems:
        result["other_end"] = local_end(settings, executor, ui, ob.name)
        ui.error(f"off-site {ob.name} FAILED {tier} verification: the off-site end is damaged. "
                 f"{'; '.join(problems)} ({result['other_end']})")
    else:
        ui.ok(f"off-site {ob.name} passed {tier} verification (downloaded, checksums and decryption verified)")
    result["backup"] = ob.name
    return result


def require_ok(result: dict[str, Any]) -> None:
    if not result["ok"]:
        raise UserError(f"The off-site copy {result['backup']} is damaged (the off-site end): "
                        f"{'; '.join(result['problems'])}. {result.get('other_end', '').capitalize()}.",
                        fix="restore from the local copy or another backup (`inv db.backups`), and take a new "
                            "off-site copy (`inv db.backup --offsite`); `inv db.prune` removes the damaged one.")


def prune_offsite(settings: Settings, executor: Executor, ui: UI, *, today: date,
                  now: datetime | None = None) -> dict[str, Any]:
    """Retention off-site (BEZGELOR_OFFSITE_KEEP_*), pins honoured, the newest verified copy kept; also
    removes what unfinished uploads left (older than an hour: one running now keeps its own)."""
    store = Store(settings, executor)
    found, incomplete = offsite.scan(store)
    by_name = {b.name: b for b in found}
    decisions = retention.with_pins([retention.Candidate(b.name, b.created_at, b.verified) for b in found],
                                    {b.name for b in found if b.pinned}, today,
                                    daily_days=settings.offsite_keep_daily_days,
                                    monthly_months=settings.offsite_keep_monthly_months)
    verb = "would delete" if executor.dry_run else "deleted"
    for d in decisions:
        if d.keep:
            ui.line(f"  keep   off-site {d.name}  ({d.reason})")
            continue
        _delete(store, by_name[d.name], d.reason)
        ui.line(f"  {verb} off-site {d.name}  ({d.reason})")
    now = now or datetime.now(UTC)
    leftovers = [n for n, e in incomplete.items() if now - e["modified"] > STALE_UPLOAD]
    for n in leftovers:
        store.delete(incomplete[n]["keys"], shown=f"delete the unfinished off-site upload {n}")
        ui.line(f"  {verb} off-site {n}  (unfinished upload)")
    aborted = [u for u in store.incomplete_uploads() if now - u["initiated"] > STALE_UPLOAD]
    for u in aborted:
        store.abort_upload(u)
        ui.line(f"  {'would abort' if executor.dry_run else 'aborted'} the unfinished multipart upload of "
                f"{u['key']}")
    return {"kept": [d.__dict__ for d in decisions if d.keep], "deleted": [d.__dict__ for d in decisions if not d.keep],
            "unfinished": leftovers, "aborted_uploads": [u["key"] for u in aborted]}


def _delete(store: Store, b: OffsiteBackup, reason: str) -> None:
    """The manifest first (the copy stops counting at once), then the rest: a removal cut short leaves an
    unfinished name, which the next prune removes."""
    mkey = offsite.object_key(store, b.name, manifest.MANIFEST)
    store.delete([mkey], shown=f"delete off-site {b.name} ({reason}): its manifest first")
    store.delete([k for k in b.keys if k != mkey], shown=f"delete off-site {b.name}: {len(b.keys) - 1} object(s)")


def prune_both(settings: Settings, executor: Executor, ui: UI, *, today: date | None = None,
               now: datetime | None = None, offsite_end: bool = True) -> dict[str, Any]:
    """`inv db.prune`: retention at both ends (each never deletes its newest verified copy nor a pinned one).
    `offsite_end=False`: the local end only (after a local-only backup, which must not depend on the bucket)."""
    today = today or date.today()
    ui.line("local:")
    out: dict[str, Any] = {"local": prune_mod.prune(settings, ui, executor, today=today)}
    if settings.offsite_url and offsite_end:
        ui.line("off-site:")
        out["offsite"] = prune_offsite(settings, executor, ui, today=today, now=now)
    return out
