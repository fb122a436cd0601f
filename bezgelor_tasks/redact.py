"""Secret values are registered once and masked everywhere text leaves the process.

The executor, the journal, the UI and every exception message pass their text through `redact`.
"""

from __future__ import annotations

import re
import threading

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()

# Shapes that are secret whatever registered them: passwords in URLs and NAME=VALUE lines of
# variables whose names say secret.
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)([^@\s]+)(@)", re.I)
_SECRET_ASSIGN = re.compile(
    r"\b([A-Z0-9_]*(?:SECRET|PASSWORD|TOKEN|KEY|DATABASE_URL)[A-Z0-9_]*)=(?!\$\{?[A-Z_])(\S+)")  # not `=$OTHER_VAR`


def register(*values: str | None) -> None:
    """Remember values that must never be shown (short ones too: we'd rather over-mask)."""
    with _lock:
        for v in values:
            if v and len(v) >= 4:
                _secrets.add(v)


def clear() -> None:
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for v in known:
        if v in text:
            text = text.replace(v, MASK)
    text = _URL_PASSWORD.sub(rf"\1{MASK}\3", text)
    return _SECRET_ASSIGN.sub(rf"\1={MASK}", text)
