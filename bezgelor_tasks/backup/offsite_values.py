"""What the off-site settings' values mean, importing nothing of ours but errors: an `s3://bucket/prefix`
location and an age recipient. The settings check (settings_values.py) and the store and sealing (store.py,
crypto.py) read them from here, so checking a setting never imports the store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bezgelor_tasks.errors import UserError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str   # "" or "some/prefix/" (always ending in a slash)

    def key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"


def parse_s3_url(url: str) -> Location:
    m = re.match(r"^s3://([^/]+)/?(.*)$", url.strip())
    if m is None or not _BUCKET.match(m.group(1)):
        raise UserError(f"is not an s3://bucket/prefix URL ({url!r}): a bucket name is 3-63 lowercase letters, "
                        "digits, dots and dashes.", fix="write it like s3://my-bezgelor-backups/world1.")
    prefix = m.group(2).strip("/")
    return Location(m.group(1), prefix + "/" if prefix else "")


def recipient(text: str) -> Any:
    import pyrage

    if text.startswith("ssh-"):
        return pyrage.ssh.Recipient.from_str(text)
    return pyrage.x25519.Recipient.from_str(text)


def bad_recipients(values: Sequence[str]) -> list[str]:
    """The values that are not age (age1...) or ssh public keys (for the settings check)."""
    bad = []
    for v in values:
        try:
            recipient(v)
        except Exception:  # noqa: BLE001 - pyrage raises its own RecipientError (and ValueError for ssh keys)
            bad.append(_shown_bad(v))
    return bad


def _shown_bad(value: str) -> str:
    """A bad recipient as an error may show it: an age *identity* pasted by mistake is a secret key, so only
    its kind is named, never a character of it."""
    if value.strip().upper().startswith("AGE-SECRET-KEY-") or "PRIVATE KEY" in value:
        from bezgelor_tasks.redact import register

        register(value)   # wherever the value itself would be shown (the setting's line), it is masked
        return "a secret key (AGE-SECRET-KEY-…: put its public key, age1…, here instead)"
    return repr(value[:24] + ("…" if len(value) > 24 else ""))
