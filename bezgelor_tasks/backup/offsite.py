"""Off-site copies of backups: upload (sealed with age), list, fetch back, verify, pin, delete.

Layout under BEZGELOR_OFFSITE_URL (s3://bucket/prefix/):
    backups/<name>/dump.pgc.age            the archive, age-encrypted (dump.pgc when plaintext on purpose)
    backups/<name>/manifest.json           written LAST: without it nothing under <name> counts as a backup
    backups/<name>/pin.json                present while the backup is pinned (no retention removes it)
    backups/<name>/checks/<time>_<ok|failed>_<tier>.json    one per verification; the newest decides
    drills/<time>_<ok|failed>.json         restore drills (drill.py)
The manifest is the local one plus where the object is, its size and sha256, and how it is sealed (the
recipients' public keys): nothing secret. Objects are never rewritten; state changes add or remove objects.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bezgelor_tasks import files
from bezgelor_tasks.backup import crypto, manifest
from bezgelor_tasks.backup.manifest import Backup
from bezgelor_tasks.backup.multipart import MultipartWriter
from bezgelor_tasks.backup.store import Store
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI

BACKUPS, DRILLS, CHECKS = "backups", "drills", "checks"
PIN = "pin.json"
_CHECK = re.compile(r"^(\d{8}T\d{6}Z)(?:-\d+)?_(ok|failed)_(\w+)\.json$")


class OffsiteDamaged(UserError):
    """The off-site end is damaged (the object's checksum or its decryption failed)."""


@dataclass
class OffsiteBackup:
    name: str
    data: dict[str, Any]
    pinned: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)   # {at, ok, tier, key}, oldest first
    keys: list[str] = field(default_factory=list)                # every object under backups/<name>/

    @property
    def object(self) -> dict[str, Any]:
        return dict(self.data.get("offsite") or {})

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.data["created_at"]) if self.data.get("created_at") else \
            manifest.parse_stamp(self.name) or datetime.fromtimestamp(0, UTC)

    @property
    def size(self) -> int:
        return int(self.object.get("size", 0))

    @property
    def last_check(self) -> dict[str, Any] | None:
        return self.checks[-1] if self.checks else None

    @property
    def verified(self) -> bool:
        last = self.last_check
        return bool(last and last["ok"])


def object_key(store: Store, name: str, *rest: str) -> str:
    return store.where.key(BACKUPS, name, *rest)


def list_offsite(store: Store) -> list[OffsiteBackup]:
    """Complete off-site backups (those with a manifest), oldest first: one listing, then the manifests."""
    return scan(store)[0]


def scan(store: Store) -> tuple[list[OffsiteBackup], dict[str, dict[str, Any]]]:
    """(complete backups oldest first, {name: {keys, modified}} of names without a manifest: unfinished
    uploads, or a backup whose removal was cut short)."""
    by_name: dict[str, dict[str, Any]] = {}
    base = store.where.key(BACKUPS) + "/"
    for obj in store.list_objects(BACKUPS + "/"):
        name, _, rest = obj.key[len(base):].partition("/")
        entry = by_name.setdefault(name, {"keys": [], "checks": [], "pinned": False, "manifest": False,
                                          "modified": obj.modified})
        entry["keys"].append(obj.key)
        entry["modified"] = max(entry["modified"], obj.modified)
        if rest == manifest.MANIFEST:
            entry["manifest"] = True
        elif rest == PIN:
            entry["pinned"] = True
        elif rest.startswith(CHECKS + "/") and (m := _CHECK.match(rest[len(CHECKS) + 1:])):
            entry["checks"].append({"at": m.group(1), "ok": m.group(2) == "ok", "tier": m.group(3), "key": obj.key})
    complete = sorted(n for n, e in by_name.items() if e["manifest"])

    def load(name: str) -> OffsiteBackup:
        data = json.loads(store.get_bytes(object_key(store, name, manifest.MANIFEST)))
        e = by_name[name]
        return OffsiteBackup(name, data, e["pinned"], sorted(e["checks"], key=lambda c: c["key"]), e["keys"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(load, complete))
    incomplete = {n: {"keys": e["keys"], "modified": e["modified"]} for n, e in by_name.items() if not e["manifest"]}
    return sorted(found, key=lambda b: b.created_at), incomplete


def find_offsite(store: Store, name: str | None, backups: list[OffsiteBackup] | None = None) -> OffsiteBackup:
    found = list_offsite(store) if backups is None else backups
    if not found:
        raise UserError(f"There are no off-site backups in {store.where.url(store.where.prefix)}.",
                        fix="take one with `inv db.backup --offsite`.")
    if not name:
        return found[-1]
    hits = [b for b in found if b.name == name] or [b for b in found if b.name.startswith(name)]
    if len(hits) != 1:
        raise UserError(f"The name {name!r} {'matches no' if not hits else f'matches {len(hits)}'} off-site "
                        f"backup{'s' if hits else ''} in {store.where.url(store.where.prefix)}.",
                        fix="use a name from `inv db.backups` (a unique prefix is enough).")
    return hits[0]


def preflight(settings: Settings, executor: Executor) -> Store:
    """Before any dump: the copy could be sealed (recipients, or plaintext on purpose) and the bucket answers
    to these credentials. Raises the one clear error otherwise, with nothing changed anywhere."""
    crypto.sealing(settings)
    store = Store(settings, executor)
    store.check_access()
    return store


def record_check(store: Store, name: str, result: dict[str, Any]) -> None:
    stamp = manifest.stamp(datetime.fromisoformat(result["at"]) if result.get("at") else datetime.now(UTC))
    key = object_key(store, name, CHECKS, f"{stamp}_{'ok' if result['ok'] else 'failed'}_{result['tier']}.json")
    store.put_bytes(key, json.dumps(result, indent=2, sort_keys=True).encode(),
                    shown=f"record the {result['tier']} check of off-site {name}: {'ok' if result['ok'] else 'FAILED'}")


def upload(settings: Settings, executor: Executor, ui: UI, b: Backup, *, store: Store | None = None) -> str | None:
    """Seal and upload a local backup; the manifest goes last. The object name, or None under dry-run."""
    store = store or Store(settings, executor)
    seal = crypto.sealing(settings)
    if b.archive.is_dir():
        raise UserError(f"Backup {b.name} is a directory archive (--jobs): off-site copies take one file.",
                        fix="take the backup without --jobs for an off-site copy.")
    if not seal.encrypted:
        ui.warn(f"uploading {b.name} UNENCRYPTED (BEZGELOR_OFFSITE_PLAINTEXT=yes)")
    key = object_key(store, b.name, b.archive.name + seal.suffix)

    writer = store.upload_stream(key, lambda sink: crypto.seal_in_thread(lambda: b.archive.open("rb"), sink, seal))
    if writer is None:
        return None
    last = b.last_verification
    finish_upload(store, ui, b.name, b.data, key, writer, seal,
                  # verified before it left, and the stored object's checksum matched
                  {**last, "note": "verified before upload; the stored object's checksum matched"}
                  if last is not None and last.get("ok") else None)
    return key


def finish_upload(store: Store, ui: UI, name: str, data: dict[str, Any], key: str, writer: MultipartWriter,
                  seal: crypto.Sealing, verified: dict[str, Any] | None) -> None:
    """After the object is stored and checked: its manifest (last: it makes the copy count), then the record of
    the verification it passed before it counted."""
    told = {k: v for k, v in data.items() if k not in ("verifications", "pinned")}
    told["offsite"] = {"object": key.rsplit("/", 1)[-1], "size": writer.size, "sha256": writer.sha256.hexdigest(),
                       "encryption": seal.describe(), "uploaded_at": datetime.now(UTC).isoformat(),
                       "uploaded_from": socket.gethostname()}
    store.put_bytes(object_key(store, name, manifest.MANIFEST), json.dumps(told, indent=2, sort_keys=True).encode(),
                    shown=f"write the manifest of off-site {name} (last: it makes the copy count)")
    if verified is not None:
        record_check(store, name, {**verified, "at": datetime.now(UTC).isoformat()})
    ui.ok(f"off-site copy {store.where.url(key)}: {writer.size / 1e6:.1f} MB"
          f"{', age-encrypted to ' + str(len(seal.recipients)) + ' key(s)' if seal.encrypted else ''}")


def fetch_into(settings: Settings, store: Store, ob: OffsiteBackup, target: Path) -> Backup:
    """Download, check, decrypt, check again: a local backup directory `target` (created) with its manifest."""
    obj = ob.object
    archive = ob.data["archive"]
    sealed_name = str(obj.get("object") or archive)
    target.mkdir(mode=0o700)
    where = store.where.url(object_key(store, ob.name, sealed_name))
    sha, size = store.download(object_key(store, ob.name, sealed_name), target / (sealed_name + ".download"))
    if obj.get("sha256") and sha != obj["sha256"]:
        raise OffsiteDamaged(f"The off-site end of {ob.name} is damaged: {where} has {size} bytes whose sha256 "
                             "differs from its manifest (corrupted in storage or in transit).",
                             fix="use the local copy or another backup (`inv db.backups`), and take a new "
                                 "off-site backup (`inv db.backup --offsite`).")
    seal = obj.get("encryption") or {"method": "none"}
    plain = crypto.open_sealed(target / (sealed_name + ".download"), target / archive, seal,
                               lambda: crypto.identities(settings), ob.name)
    (target / (sealed_name + ".download")).unlink()
    want = (ob.data.get("files") or {}).get(archive, {}).get("sha256")
    if want and plain != want:
        raise OffsiteDamaged(f"The off-site end of {ob.name} is damaged: it decrypts, but not to the archive its "
                             "manifest describes (sha256 differs).", fix="use another backup (`inv db.backups`).")
    data = {**{k: v for k, v in ob.data.items() if k != "offsite"}, "verifications": [],
            "fetched_from": where, "offsite": obj}
    # `target` is a private folder being filled (a temporary copy, or the partial folder of a change the
    # executor is already making), so its manifest is written directly.
    files.atomic_write(target / manifest.MANIFEST, manifest.text(data), mode=0o600)
    return manifest.load(target)


@contextmanager
def fetched(settings: Settings, store: Store, ob: OffsiteBackup) -> Iterator[Backup]:
    """A checked, decrypted copy in a private temporary directory, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="bezgelor-offsite-"))
    try:
        yield fetch_into(settings, store, ob, tmp / ob.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def looked_at(settings: Settings, executor: Executor, ui: UI, name: str) -> Iterator[Backup]:
    """For a dry run of `db.restore --from offsite NAME`: the off-site copy fetched, checked and decrypted into
    a private temporary folder (reading it changes nothing), removed afterwards."""
    store = Store(settings, executor)
    ob = find_offsite(store, name)
    ui.command(f"download, check and decrypt off-site {ob.name} into {settings.backups_path / ob.name}",
               dry_run=True)
    with fetched(settings, store, ob) as b:
        ui.info(f"off-site {ob.name} checked (checksum and decryption) in a temporary folder")
        yield b


@contextmanager
def bring_back(settings: Settings, executor: Executor, ui: UI, name: str) -> Iterator[Backup]:
    """`db.restore --from offsite NAME`: the copy back among the local backups (a complete directory appears
    only after every check passed), or, when a local one of that name exists, a temporary copy beside it
    (removed when the restore is done: it holds the decrypted dump)."""
    store = Store(settings, executor)
    ob = find_offsite(store, name)
    root = settings.backups_path
    if not (root / ob.name / manifest.MANIFEST).is_file():
        yield _download(settings, executor, ui, store, ob, root)
        return
    ui.info(f"a local {ob.name} exists; the off-site copy is fetched beside it, not over it")
    temporary = Path(tempfile.mkdtemp(prefix=f"{manifest.PARTIAL_PREFIX}offsite-", dir=root))   # on that disk
    try:
        yield _download(settings, executor, ui, store, ob, temporary)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _download(settings: Settings, executor: Executor, ui: UI, store: Store, ob: OffsiteBackup,
              root: Path) -> Backup:
    partial = root / f"{manifest.PARTIAL_PREFIX}{ob.name}-offsite"

    def download() -> Backup:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        try:
            fetch_into(settings, store, ob, partial)
            partial.rename(root / ob.name)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return manifest.load(root / ob.name)

    if executor.change(f"download, check and decrypt off-site {ob.name} into {root / ob.name}", download) is None:
        raise UserError("A dry run downloads nothing.", fix="run it without --dry-run.")
    ui.ok(f"fetched off-site {ob.name}: checksum and decryption verified")
    return manifest.load(root / ob.name)


def set_pin(settings: Settings, executor: Executor, ui: UI, name: str, pinned: bool) -> dict[str, Any]:
    """Pin (or unpin) a backup at every end that holds it: no retention removes a pinned backup."""
    ends: list[str] = []
    local = [b for b in manifest.list_backups(settings.backups_path) if b.name == name or b.name.startswith(name)]
    store = Store(settings, executor) if settings.offsite_url else None
    offsite_hits = [b for b in list_offsite(store) if b.name == name or b.name.startswith(name)] if store else []
    names = {b.name for b in local} | {b.name for b in offsite_hits}
    if len(names) != 1:
        raise UserError(f"The name {name!r} matches {len(names) or 'no'} backup{'s' if len(names) != 1 else ''}.",
                        fix="use a name from `inv db.backups` (a unique prefix is enough).")
    full = names.pop()
    for b in local:
        if b.name == full:
            data = {**b.data, "pinned": pinned}
            manifest.write(executor, b.path, data)
            ends.append("local")
    for ob in offsite_hits:
        if ob.name != full or store is None:
            continue
        key = object_key(store, full, PIN)
        if pinned:
            store.put_bytes(key, json.dumps({"pinned_at": datetime.now(UTC).isoformat(),
                                             "by": socket.gethostname()}).encode(), shown=f"pin off-site {full}")
        else:
            store.delete([key], shown=f"unpin off-site {full}")
        ends.append("off-site")
    ui.ok(f"{'pinned' if pinned else 'unpinned'} {full} ({' and '.join(ends)})"
          + ("; no retention removes it" if pinned else "; retention applies to it again"))
    return {"backup": full, "pinned": pinned, "ends": ends}
