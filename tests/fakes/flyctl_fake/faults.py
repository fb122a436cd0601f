"""Injected faults, stored in state["faults"] by tests (see tests/support/fakefly.py).

A fault: {"cmd": "deploy", "mode": "fail_once"|"fail_always"|"hang"|"garbage"|"slow"|"drop",
          "error": str|None, "latency": float|None, "match": str|list[str]|None,
          "times": int|None, "after_bytes": int|None, "fired": int}
`cmd` is the canonical command path ("postgres create", "ips allocate-v4") or one of the pseudo
commands "release_command" (the deploy's release command) and "proxy" (for drop).
`match`: a substring of the space-joined argv (after argv[0]), or a list of argv words all present.
`times`: how often it fires (fail_once means times=1); None: forever.
"""

from __future__ import annotations

from typing import Any

from .store import State

# What flyctl prints when the API or the machines fail: sensible defaults per command.
DEFAULT_ERRORS = {
    "postgres create": "failed to create postgres cluster: failed to launch machine: "
                       "request returned non-2xx status, 500: internal server error",
    "deploy": "failed to fetch an image or build from source: error building: "
              "failed to connect to remote builder: deadline exceeded",
    "secrets import": "failed to update app secrets: Post \"https://api.machines.dev/v1/apps/secrets\": EOF",
    "ips allocate-v4": "failed to allocate IP address: Post \"https://api.fly.io/graphql\": "
                       "read: connection reset by peer",
    "release_command": "release command failed - aborting deployment. error release_command machine "
                       "exited with non-zero status of 1",
    "apps create": "Post \"https://api.fly.io/graphql\": read: connection reset by peer",
}
GENERIC_ERROR = "Post \"https://api.fly.io/graphql\": read: connection reset by peer"


def matches(fault: dict[str, Any], path: str, argv: list[str]) -> bool:
    if fault.get("cmd") != path:
        return False
    times = fault.get("times", 1 if fault.get("mode") == "fail_once" else None)
    if times is not None and int(fault.get("fired", 0)) >= int(times):
        return False
    match = fault.get("match")
    if match is None:
        return True
    if isinstance(match, str):
        return match in " ".join(argv[1:])
    return all(word in argv[1:] for word in match)


def take(state: State, path: str, argv: list[str], modes: set[str]) -> list[dict[str, Any]]:
    """The active faults for this call with a mode in `modes`, each counted as fired."""
    found = []
    for fault in state.get("faults", []):
        if fault.get("mode") in modes and matches(fault, path, argv):
            fault["fired"] = int(fault.get("fired", 0)) + 1
            found.append(dict(fault))
    return found


def error_text(fault: dict[str, Any], path: str) -> str:
    return str(fault.get("error") or DEFAULT_ERRORS.get(path, GENERIC_ERROR))
