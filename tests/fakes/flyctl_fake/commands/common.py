"""Shared bits of the emulated Fly platform: ids, times, apps, machines, image refs."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from ..store import State, next_seq

REGISTRY = "registry.fly.io"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def hex_id(n: int = 14) -> str:
    return os.urandom(n).hex()[:n]


def digest_of(value: bytes) -> str:
    """How the fake digests a secret value (only digests are ever stored)."""
    return hashlib.sha256(value).hexdigest()[:16]


def new_app(state: State, name: str, org: str, kind: str = "app") -> dict[str, Any]:
    state["orgs"].setdefault(org, {"slug": org, "name": org})
    app = {
        "id": name,
        "name": name,
        "org": org,
        "kind": kind,
        "status": "pending",
        "created_at": now_iso(),
        "hostname": f"{name}.fly.dev",
        "secrets": {},
        "ips": [],
        "releases": [],
        "machines": [],
        "current_release": None,
        "vm": {"size": "shared-cpu-1x", "memory_mb": 256, "cpu_kind": "shared", "cpus": 1},
        "database": {"applied": []},
        "proxy_target": None,
        "pg": None,
        "seq": next_seq(state),
    }
    state["apps"][name] = app
    return app


def new_machine(app: dict[str, Any], region: str, group: str = "app") -> dict[str, Any]:
    machine = {
        "id": hex_id(14),
        "name": f"{app['name']}-{hex_id(6)}",
        "state": "started",
        "region": region,
        "image": None,
        "release_version": None,
        "checks": [],
        "created_at": now_iso(),
        "updated_at": now_iso(),
        "process_group": group,
    }
    app["machines"].append(machine)
    return machine


def org_json(state: State, slug: str) -> dict[str, Any]:
    org = state["orgs"].get(slug, {"slug": slug, "name": slug})
    return {"ID": f"org_{slug}", "Slug": slug, "Name": org["name"], "Type": "PERSONAL" if slug == "personal"
            else "SHARED"}


def split_ref(ref: str) -> dict[str, str]:
    """registry.fly.io/app:tag@sha256:... -> {registry, repository, tag, digest}."""
    rest, _, digest = ref.partition("@")
    registry, _, repo_tag = rest.partition("/")
    repository, _, tag = repo_tag.partition(":")
    return {"registry": registry, "repository": repository, "tag": tag, "digest": digest}


def find_image(state: State, ref: str) -> dict[str, Any] | None:
    images = state["images"]
    if ref in images:
        return images[ref]  # type: ignore[no-any-return]
    wanted = split_ref(ref)
    for image in images.values():
        have = split_ref(image["ref"])
        if wanted["digest"] and wanted["digest"] == image["digest"]:
            return image  # type: ignore[no-any-return]
        if have["repository"] == wanted["repository"] and wanted["tag"] and have["tag"] == wanted["tag"]:
            return image  # type: ignore[no-any-return]
    return None


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["\t".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    return "\n".join(lines) + "\n"
