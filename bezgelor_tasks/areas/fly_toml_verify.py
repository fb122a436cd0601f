"""Checking a fly.toml against the spec init writes from: the same description, read the other way.

A `set` value that differs is reported with the spec's severity and reason; a `keep` value is judged only
as a value Fly reads as intended (a bare-number duration, `memory = "lots"`) and, when its setting was
given, against that setting; a table the spec wants and the file lacks is reported as missing. On top:
what the spec cannot say, such as [http_service] understood as the portal's service and a service on a
port nothing listens on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bezgelor_tasks.areas import fly_toml_doc as doc
from bezgelor_tasks.areas.fly_toml_apply import find_entry, same_value
from bezgelor_tasks.areas.fly_toml_spec import Array, Key, Table
from bezgelor_tasks.checkout.effective import FLY_TOML
from bezgelor_tasks.checks.findings import Finding
from bezgelor_tasks.settings import ENV_OF, Settings

REL = FLY_TOML
FIX = "run `inv init`"


def _toml(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def _id(name: str) -> str:
    return "flytoml." + name.replace("_", "-").replace(".", "-").lower()


@dataclass
class Reader:
    settings: Settings
    lines: doc.TomlLines

    def table(self, data: Any, spec: Table, path: doc.Path, where: str) -> list[Finding]:
        where = spec.label or where
        out: list[Finding] = []
        for key in spec.keys:
            out += self.key(data, key, path, where)
        for name, sub in spec.tables:
            if sub.default_only:
                continue
            child = data.get(name) if hasattr(data, "get") else None
            out += self.table(child if child is not None else {}, sub, (*path, name), where)
        for name, array in spec.arrays:
            out += self.array(data, name, array, path, where)
        return out

    def array(self, data: Any, name: str, array: Array, path: doc.Path, where: str) -> list[Finding]:
        tables = data.get(name) if hasattr(data, "get") else None
        tables = tables if isinstance(tables, list) else []
        out: list[Finding] = []
        taken: set[int] = set()
        for entry in array.entries:
            index = find_entry(tables, entry, taken)
            if index is None:
                if entry.missing:
                    out.append(Finding(entry.severity, REL, self.lines.line(path) if path else None,
                                       f"{where}{entry.missing}".strip(), f"{FIX} to add it",
                                       id=_id(f"{name}.missing")))
                continue
            taken.add(index)
            label = f"{entry.label} " if entry.label and not where else where
            out += self.table(tables[index], entry.table, (*path, name, index), label)
        for index in sorted(set(range(len(tables))) - taken):
            if array.stale:
                port = doc.plain(tables[index].get("internal_port", tables[index].get("port")))
                out.append(Finding("error" if not where else "warning", REL, self.lines.line((*path, name, index)),
                                   f"{where}{name} table with port {port} {array.stale}",
                                   f"keep fly.toml's ports equal to the BEZGELOR_*_PORT settings ({FIX})",
                                   id=_id(f"{name}.stale")))
        return out

    def key(self, data: Any, key: Key, path: doc.Path, where: str) -> list[Finding]:
        present = next((n for n in (key.name, *(a for a, _ in key.aliases)) if n in data), None)
        line = self.lines.line(path, present or key.name)
        current = doc.plain(data[present]) if present is not None else None
        wanted = key.value if present in (None, key.name) else dict(key.aliases)[present](key.value)
        if key.policy == "add" or (present is not None and same_value(key, current, wanted)):
            return []
        shown = f"{where}{present or key.name}"
        if key.policy == "keep" and present is not None:
            wrong = key.check(current) if key.check else None
            if wrong:
                return [Finding(wrong[0], REL, line, f"{shown} = {current!r} {wrong[1]}",
                                f"set {present} = {_toml(wanted)} ({FIX})", id=_id(key.name))]
            if key.setting and self.settings.is_given(key.setting):
                env = ENV_OF[key.setting]
                return [Finding("warning", REL, line, f"{shown} = {current!r} but {env} is {wanted!r}",
                                f"{FIX} to write {env} into fly.toml (or unset {env} to keep fly.toml's)",
                                id=_id(key.name))]
            return []
        if present is None and key.absent == "quiet":
            return []
        if present is None:
            severity = key.absent or (key.severity if key.policy == "set" else "warning")
            why = key.why or "Fly uses its own default"
            return [Finding(severity, REL, line, f"{shown} is not set: {why}", f"set {key.name} = {_toml(wanted)} "
                            f"({FIX})", id=_id(key.name))]
        return [Finding(key.severity, REL, line, f"{shown} = {current!r}{': ' + key.why if key.why else ''}",
                        f"set {key.name} = {_toml(wanted)} ({FIX})", id=_id(key.name))]


def http_service_findings(lines: doc.TomlLines, settings: Settings) -> list[Finding]:
    """An [http_service] beside the portal's [[services]]: two services on the portal's port."""
    return [Finding("error", REL, lines.line(("http_service",)), f"[http_service] and a [[services]] both serve the "
                    f"portal's port {settings.portal_port}: Fly refuses two services on one port",
                    "run `inv init`: it removes [http_service] and keeps the portal's [[services]]",
                    id="flytoml.http-service-twice")]
