"""A small record kept in the *name* of a staged Fly app secret (Fly shows names, never values): the
deploy lock (deploy/fly_lock.py) and the watcher's memory (watch/state.py). The name is a fixed prefix
and the base32 (A-Z2-7, valid in a secret name, padding dropped) of compact JSON. Unverified: how long a
name Fly accepts; callers keep their JSON near 120 bytes (about 210 characters of name)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class Unreadable(ValueError):
    """A name with the prefix whose body is not a record of ours (damaged, or from another version)."""


def pack(prefix: str, data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return prefix + base64.b32encode(raw).decode().rstrip("=")


def unpack(prefix: str, name: str) -> dict[str, Any] | None:
    """The record in `name`; None when the name is not one of `prefix`'s; Unreadable when it is, but damaged."""
    if not name.startswith(prefix):
        return None
    body = name[len(prefix):]
    try:
        data = json.loads(base64.b32decode(body + "=" * (-len(body) % 8)))
    except (binascii.Error, ValueError) as e:
        raise Unreadable(str(e)) from None
    if not isinstance(data, dict):
        raise Unreadable("not a JSON object")
    return data
