"""Writing the fly.toml spec into a document: the user's fly.toml, or an empty one for a fresh file.

Values already right are left as they are (a re-run keeps the user's formatting and trailing comments);
`keep` values the checkout has win over settings that were not given, and each such difference is
said (`Kept`). An [http_service] (what `fly launch` writes) is the portal's service and is kept in that
form, made always-on and given its health check like any [[services]] (all four services share the one
machine); only when a [[services]] already serves the portal's port is the [http_service] removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tomlkit
from tomlkit.items import AoT

from bezgelor_tasks.areas import fly_toml_doc as doc
from bezgelor_tasks.areas.fly_toml_spec import ROLE_MARK, Array, Entry, Kept, Key, Table
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.render import render
from bezgelor_tasks.settings import ENV_OF, Settings

HEADER_MARK = "bezgelor-tasks keeps this file in step"


def header() -> str:
    """The comment block a fly.toml of ours starts with (templates/fly/header.toml)."""
    return render("fly/header.toml", mark=HEADER_MARK)


def same_value(key: Key, current: Any, wanted: Any) -> bool:
    if key.same is not None and key.same(current, wanted):
        return True
    return type(current) is type(wanted) and current == wanted


def find_entry(tables: AoT | list[Any], entry: Entry, taken: set[int]) -> int | None:
    """The index of the table `entry` describes: by our role comment, then by its identifying key (else, no
    ident, the first one not yet taken), then by a value its key may still have (a port moved by a setting)."""
    if entry.role is not None:
        for i, table in enumerate(tables):
            if i not in taken and doc.role_of(table, ROLE_MARK) == entry.role:
                return i
    for values in ((entry.ident[1],) if entry.ident else (None,), entry.former):
        for i, table in enumerate(tables):
            if i in taken or (entry.role is not None and doc.role_of(table, ROLE_MARK) is not None):
                continue
            if entry.ident is None or doc.plain(table.get(entry.ident[0])) in values:
                return i
    return None


@dataclass
class Applier:
    settings: Settings
    kept: list[Kept] = field(default_factory=list)

    def table(self, target: Any, spec: Table, path: str = "") -> None:
        for key in spec.keys:
            self.key(target, key, path)
        for name, sub in spec.tables:
            if sub.default_only and name in target:
                continue
            self.table(doc.child_table(target, name, sub.notes), sub, f"{path}{name}.")
        for name, array in spec.arrays:
            self.array(target, name, array, path)

    def array(self, target: Any, name: str, array: Array, path: str) -> None:
        tables = doc.child_array(target, name)
        taken: set[int] = set()
        for entry in array.entries:
            index = find_entry(tables, entry, taken)
            created = index is None
            if index is None:
                tables.append(doc.new_table(target, entry.table.notes))
                index = len(tables) - 1
                if entry.ident is not None:
                    doc.add(tables[index], *entry.ident)
            taken.add(index)
            if not created and entry.role is not None and doc.role_of(tables[index], ROLE_MARK) is None:
                # a table of the user's, found by its port: marked, so a later port change still finds it
                doc.mark_role(tables[index], entry.ident[0] if entry.ident else "protocol", ROLE_MARK, entry.role)
            self.table(tables[index], entry.table, f"{path}{name}.")
        if array.only_ours:
            for i in sorted(set(range(len(tables))) - taken, reverse=True):
                del tables[i]

    def key(self, target: Any, key: Key, path: str) -> None:
        present = next((n for n in (key.name, *(a for a, _ in key.aliases)) if n in target), None)
        if key.policy == "add":
            if present is None:
                doc.add(target, key.name, key.value, key.comment)
            return
        current = doc.plain(target[present]) if present is not None else None
        wanted = key.value if present in (None, key.name) else dict(key.aliases)[present](key.value)
        if present is not None and same_value(key, current, wanted):
            return
        if key.policy == "keep" and present is not None and (key.check is None or key.check(current) is None):
            given = key.setting is not None and self.settings.is_given(key.setting)
            if key.setting is not None:
                self.kept.append(Kept(f"{path}{present}", current, ENV_OF[key.setting], wanted, changed=given))
            if not given:
                return
        if present is None:
            doc.add(target, key.name, key.value, key.comment)
        else:
            doc.replace(target, present, wanted)


# -- [http_service]: the portal's service as `fly launch` writes it ------------------------------------------

def portal_form(data: Any, settings: Settings) -> str:
    """How the checkout serves the portal: "services" (a [[services]]), "http_service" (an [http_service], kept
    in that form) or "both" (a [[services]] for the portal's port and an [http_service]: one too many)."""
    http = data.get("http_service") if hasattr(data, "get") else None
    if not isinstance(http, dict):
        return "services"
    services = data.get("services")
    portal = [s for s in (services if isinstance(services, list) else [])
              if doc.role_of(s, ROLE_MARK) == "portal" or doc.plain(s.get("internal_port")) == settings.portal_port]
    return "both" if portal else "http_service"


@dataclass(frozen=True)
class HttpService:
    """An [http_service] taken out because a [[services]] already serves the portal's port."""
    line: int
    values: dict[str, Any]

    def explain(self, settings: Settings) -> str:
        return (f"removed [http_service] (line {self.line}): the portal's [[services]] on port "
                f"{settings.portal_port} already serves it, and two services on one port conflict")


def take_http_service(document: Any, text: str) -> HttpService:
    http = document["http_service"]
    values = doc.plain(http) if isinstance(http, dict) else {}
    del document["http_service"]
    return HttpService(doc.TomlLines(text).line(("http_service",)) or 0, values)


@dataclass(frozen=True)
class Written:
    text: str
    kept: tuple[Kept, ...]
    http: HttpService | None


def write(text: str | None, spec: Callable[[bool], Table], settings: Settings) -> Written:
    """The fly.toml text with the spec applied (pure: text in, text out); a fresh file when `text` is empty.
    `spec(portal_http_service)` gives the spec for the form the checkout serves its portal in."""
    document = doc.parse(text or "")
    if isinstance(document, doc.NotToml):
        raise UserError(f"fly.toml is not valid TOML (line {document.line}, column {document.col}): "
                        f"{document.message}.", fix="fix that line (or move fly.toml aside to get a fresh one) "
                        "and run `inv init` again.")
    form = portal_form(document, settings)
    http = take_http_service(document, text or "") if form == "both" else None
    applier = Applier(settings)
    applier.table(document, spec(form == "http_service"))
    out = tomlkit.dumps(document)
    if out != text:
        out = doc.tidy(out)
    if HEADER_MARK not in out:
        out = header() + out.lstrip("\n")
    return Written(out, tuple(applier.kept), http)
