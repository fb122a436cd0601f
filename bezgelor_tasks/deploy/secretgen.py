"""The two secrets the app needs that only we can make: generated locally, never shown.

SECRET_KEY_BASE: 64 random bytes as url-safe base64 (86 characters, like `mix phx.gen.secret`'s 64+).
CLOAK_KEY: base64 of 32 random bytes (an AES-256 key for Cloak.Ecto's Vault).
"""

from __future__ import annotations

import base64
import secrets

from bezgelor_tasks.redact import register


def secret_key_base() -> str:
    value = secrets.token_urlsafe(64)
    register(value)
    return value


def cloak_key() -> str:
    value = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    register(value)
    return value


GENERATED = {"SECRET_KEY_BASE": secret_key_base, "CLOAK_KEY": cloak_key}
