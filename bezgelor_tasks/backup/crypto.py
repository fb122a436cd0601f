"""age encryption of off-site copies (the age file format, through pyrage): to public keys only.

The machine that uploads needs only the recipients (`BEZGELOR_BACKUP_AGE_RECIPIENTS`, public), so it can
never read what it stored. Reading needs an identity: `BEZGELOR_BACKUP_AGE_IDENTITY_FILE` (what
`age-keygen -o key.txt` writes) or the secret `BEZGELOR_BACKUP_AGE_IDENTITY`. A file we encrypt is a
plain age file: `age -d -i key.txt dump.pgc.age > dump.pgc` reads it without this tool.

Fail closed: no recipients means no upload, unless `BEZGELOR_OFFSITE_PLAINTEXT=yes` was set on purpose.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from bezgelor_tasks.backup.offsite_values import recipient
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.redact import register
from bezgelor_tasks.settings import Settings

AGE_MAGIC = b"age-encryption.org/v1\n"
IDENTITY_VARIABLE = "BEZGELOR_BACKUP_AGE_IDENTITY"
SUFFIX = ".age"
BLOCK = 1 << 20   # read and hash in large blocks


@dataclass(frozen=True)
class Sealing:
    """How an off-site copy is sealed: to these recipients, or (on purpose) not at all."""

    recipients: tuple[str, ...]

    @property
    def encrypted(self) -> bool:
        return bool(self.recipients)

    @property
    def suffix(self) -> str:
        return SUFFIX if self.encrypted else ""

    def describe(self) -> dict[str, Any]:
        """What the manifest says: public keys only, never a secret."""
        return {"method": "age" if self.encrypted else "none", "recipients": list(self.recipients)}


def sealing(settings: Settings) -> Sealing:
    """Fail closed: without recipients, only BEZGELOR_OFFSITE_PLAINTEXT=yes lets a copy leave unencrypted."""
    if settings.age_recipients:
        return Sealing(tuple(settings.age_recipients))
    if settings.offsite_plaintext:
        return Sealing(())
    raise UserError(
        "Nothing was uploaded: off-site copies are encrypted, and BEZGELOR_BACKUP_AGE_RECIPIENTS is empty. "
        "A copy at another provider must be unreadable to it (and to the machine that uploads it), so without "
        "a public key to encrypt to, bezgelor-tasks refuses to upload.",
        fix="make a key once with `age-keygen -o bezgelor-backup.key` (keep that file safe, offline), put the "
            "public key it prints (age1...) in BEZGELOR_BACKUP_AGE_RECIPIENTS, and run again; or set "
            "BEZGELOR_OFFSITE_PLAINTEXT=yes to upload unencrypted on purpose.")


class HashingWriter:
    """A binary writer that passes bytes on (or drops them) and hashes them as they go: sha256 and size."""

    def __init__(self, out: BinaryIO | None) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        if self.out is not None:
            self.out.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()


def seal_stream(source: BinaryIO, sink: Any, seal: Sealing) -> None:
    """Encrypt (or copy) everything `source` holds into `sink` (anything with `write`)."""
    if seal.encrypted:
        import pyrage

        pyrage.encrypt_io(source, sink, [recipient(r) for r in seal.recipients])
    else:
        for chunk in iter(lambda: source.read(BLOCK), b""):
            sink.write(chunk)
    sink.flush()


def seal_in_thread(open_source: Callable[[], BinaryIO], sink: Any, seal: Sealing) -> None:
    """`seal_stream` in a thread of its own, waited for in short steps: pyrage holds the GIL while it encrypts and
    would not let Ctrl-C through; here the waiting thread notices it at once. Raises what the sealing raised (the
    sink's own error first: an upload that failed is said as such, not as pyrage's report of it)."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            with open_source() as source:
                seal_stream(source, sink, seal)
        except BaseException as e:  # noqa: BLE001 - raised again by the waiting thread
            failed.append(getattr(sink, "error", None) or e)

    thread = threading.Thread(target=run, name="seal", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(timeout=0.2)
    if failed:
        raise failed[0]


# -- reading -------------------------------------------------------------------------------------------------

def identities(settings: Settings) -> list[Any]:
    """The identities that read off-site copies: the secret in the environment, then the identity file."""
    import pyrage

    texts: list[tuple[str, str]] = []
    if os.environ.get(IDENTITY_VARIABLE, "").strip():
        texts.append((IDENTITY_VARIABLE, os.environ[IDENTITY_VARIABLE]))
    if settings.age_identity_file:
        path = Path(settings.age_identity_file).expanduser()
        try:
            texts.append((str(path), path.read_text()))
        except OSError as e:
            raise UserError(f"The age identity file {path} cannot be read ({e.strerror}).",
                            fix="point BEZGELOR_BACKUP_AGE_IDENTITY_FILE at the key file `age-keygen` wrote.") \
                from None
    found = []
    for where, text in texts:
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            register(line)
            try:
                found.append(pyrage.x25519.Identity.from_str(line))
            except Exception:  # noqa: BLE001 - pyrage.IdentityError; the line itself is never shown
                raise UserError(f"{where} holds a line that is not an age identity (AGE-SECRET-KEY-1...).",
                                fix="use the file `age-keygen -o` wrote, unchanged.") from None
    if not found:
        raise UserError("No age identity to read the off-site copy with: it is encrypted, and neither "
                        f"BEZGELOR_BACKUP_AGE_IDENTITY_FILE nor {IDENTITY_VARIABLE} is set.",
                        fix="set BEZGELOR_BACKUP_AGE_IDENTITY_FILE to the key file made with `age-keygen` (the "
                            f"secret half of BEZGELOR_BACKUP_AGE_RECIPIENTS), or the secret {IDENTITY_VARIABLE}.")
    return found


def open_sealed(source: Path, target: Path, seal: dict[str, Any], keys: Callable[[], list[Any]],
                name: str) -> str:
    """Decrypt (or copy) a downloaded copy into `target`; returns the sha256 of what was written."""
    writer = HashingWriter(None)
    with source.open("rb") as f, target.open("wb") as out:
        writer.out = out
        if seal.get("method") == "age":
            import pyrage

            try:
                pyrage.decrypt_io(f, writer, keys())
            except pyrage.DecryptError as e:
                if "No matching keys" in str(e):
                    raise UserError(
                        f"The off-site copy {name} cannot be read with your age identity: it was encrypted to "
                        f"{', '.join(seal.get('recipients') or ['?'])}, and the identity given is none of them.",
                        fix="use the key file whose public key (`age-keygen -y KEYFILE`) is listed there.") from None
                raise UserError(f"The off-site copy {name} is damaged: age could not decrypt it ({e}).",
                                fix="use another copy (`inv db.backups`); take a new backup.") from None
        else:
            for chunk in iter(lambda: f.read(BLOCK), b""):
                writer.write(chunk)
    return writer.sha256.hexdigest()
