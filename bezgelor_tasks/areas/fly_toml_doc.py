"""fly.toml as a document: parsed once with tomlkit (comments and layout kept), its tables found, its lines located.

Only tomlkit's public API is used (parse, item, table, aot, comment, item assignment, `trivia`, `unwrap`).
`TomlLines` tells verify on which line a table or key of the file sits, for findings that point at it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.items import AoT, Comment, Item, Table

# Keys of a table are indented one step deeper than its header, as `fly launch` writes them. tomlkit
# prefixes the header's own indentation to what is appended to a table, so one step is enough.
STEP = "  "


@dataclass(frozen=True)
class NotToml:
    """Why a fly.toml does not parse: tomlkit's line, column and message."""
    line: int
    col: int
    message: str


def parse(text: str) -> tomlkit.TOMLDocument | NotToml:
    try:
        return tomlkit.parse(text)
    except ParseError as e:
        return NotToml(e.line, e.col, str(e))
    except TOMLKitError as e:      # not a syntax error, but not a document either (a key given twice)
        return NotToml(0, 0, str(e))


@functools.lru_cache(maxsize=8)
def read(text: str) -> tomlkit.TOMLDocument | NotToml:
    """A document that is only read, never changed: parsed once per text, whoever reads it (verify's syntax
    check of every .toml an area reads, then its checks). Writers parse their own copy (`parse`)."""
    return parse(text)


def plain(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


def _container(table: Any) -> Container:
    return table if isinstance(table, Container) else table.value


def _header_indent(table: Any) -> str | None:
    """The spaces before a table's header (None for the document itself)."""
    return table.trivia.indent.replace("\n", "") if isinstance(table, Table) else None


def new_table(parent: Any, notes: tuple[str, ...] = ()) -> Table:
    """A table we add, laid out like the rest of the file: its header one step deeper than its parent's (the
    document's own tables at the margin), its notes as comment lines. `tidy` adds the blank line before it."""
    table = tomlkit.table()
    header = _header_indent(parent)
    table.trivia.indent = "" if header is None else header + STEP
    for text in notes:
        note = tomlkit.comment(text)
        note.trivia.indent = STEP
        table.add(note)
    return table


def add(table: Any, key: str, value: Any, comment: str = "") -> None:
    """Add a key where a person would: after the table's last plain value, indented like its siblings (tomlkit's
    item assignment places a plain key before the table's sub-tables)."""
    item = value if isinstance(value, (Table, AoT)) else tomlkit.item(value)
    if comment:
        item.comment(comment)
    wanted_indent = item.trivia.indent if isinstance(item, Table) else None
    table[key] = item
    if isinstance(item, AoT):
        return
    if wanted_indent is None:
        siblings = [v for k, v in _container(table).body if k not in (None, key) and not isinstance(v, (Table, AoT))]
        header = _header_indent(table)
        wanted_indent = siblings[-1].trivia.indent if siblings else "" if header is None else header + STEP
    inserted = _container(table).item(key)
    if isinstance(inserted, Item):
        inserted.trivia.indent = wanted_indent   # tomlkit prefixes the parent's indentation on insert


def put(table: Any, key: str, value: Any) -> None:
    """Set a key that exists to a new value (in place), or add it."""
    if key in table:
        table[key] = value
    else:
        add(table, key, value)


def child_table(parent: Any, key: str, notes: tuple[str, ...] = ()) -> Any:
    """parent[key] as a table, added when absent; a value where a table belongs cannot be patched."""
    from bezgelor_tasks.errors import UserError

    if key not in parent:
        add(parent, key, new_table(parent, notes))
    item = parent[key]
    if not isinstance(item, dict):
        raise UserError(f"fly.toml has `{key}` as a value, not a table, so it cannot be patched.",
                        fix=f"make it a [{key}] table (or delete it) and run `inv init` again.")
    return item


def child_array(parent: Any, key: str) -> AoT:
    """parent[key] as an array of tables, added when absent."""
    from bezgelor_tasks.errors import UserError

    if key not in parent or (isinstance(parent[key], list) and not parent[key]):
        parent[key] = tomlkit.aot()
    item = parent[key]
    if not isinstance(item, AoT):
        raise UserError(f"fly.toml has `{key}` in a form this tool cannot patch (not [[{key}]] tables).",
                        fix=f"write it as [[{key}]] tables (or delete it) and run `inv init` again.")
    return item


def role_of(table: Any, mark: str) -> str | None:
    """Our role mark in a table: a comment line (`# bezgelor-tasks service: world`), or the trailing comment of
    one of its values (a table of the user's that init took over)."""
    if not isinstance(table, Table):
        return None
    for key, item in table.value.body:
        text = item.as_string() if key is None and isinstance(item, Comment) else \
            item.trivia.comment if key is not None and isinstance(item, Item) else ""
        if mark in text:
            return text.split(mark, 1)[1].strip().split()[0]
    return None


def mark_role(table: Any, key: str, mark: str, role: str) -> None:
    """Mark a table of the user's as ours for `role` on its `key` line, unless that line has a comment already."""
    item = _container(table).item(key)
    if isinstance(item, Item) and not item.trivia.comment:
        item.comment(f"{mark} {role}")


def replace(table: Any, key: str, value: Any) -> None:
    """Give an existing key a new value, keeping the trailing comment of its line."""
    old = _container(table).item(key)
    comment = old.trivia.comment if isinstance(old, Item) else ""
    table[key] = value
    new = _container(table).item(key)
    if comment and isinstance(new, Item) and not new.trivia.comment:
        new.comment(comment.lstrip("#").strip())


def tidy(text: str) -> str:
    """One blank line before each table header (unless a comment introduces it), never two in a row. Whitespace
    only: if the data would differ (a multi-line string), the text is returned as it was."""
    out: list[str] = []
    for line in text.split("\n"):
        if not line.strip() and out and not out[-1].strip():
            continue
        if line.lstrip().startswith("[") and out and out[-1].strip() and not out[-1].lstrip().startswith("#"):
            out.append("")
        out.append(line)
    tidied = "\n".join(out)
    same = not isinstance(parse(tidied), NotToml) and plain(tomlkit.parse(tidied)) == plain(tomlkit.parse(text))
    return tidied if same else text


# -- where things are, for findings ------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")

Path = tuple[str | int, ...]   # ("services", 2, "tcp_checks", 0): table names and array indexes


class TomlLines:
    """The line of each table header and each key of a TOML text (simple keys; others fall back to their table)."""

    def __init__(self, text: str) -> None:
        self.tables: dict[Path, int] = {}
        self.keys: dict[tuple[Path, str], int] = {}
        counts: dict[Path, int] = {}
        current: Path = ()
        for number, line in enumerate(text.splitlines(), 1):
            header = _HEADER.match(line)
            if header and not line.lstrip().startswith("#"):
                current = self._resolve(header.group(2), header.group(1) == "[[", counts)
                self.tables.setdefault(current, number)
                continue
            key = _KEY.match(line)
            if key and not line.lstrip().startswith("#"):
                self.keys.setdefault((current, key.group(1).strip("\"'")), number)

    def _resolve(self, dotted: str, array: bool, counts: dict[Path, int]) -> Path:
        """The path of a header: each array of tables on the way takes its newest index."""
        path: Path = ()
        names = [n.strip().strip("\"'") for n in dotted.split(".")]
        for i, name in enumerate(names):
            path = (*path, name)
            last = i == len(names) - 1
            if last and array:
                counts[path] = counts.get(path, -1) + 1
                for other in [p for p in counts if p[:len(path)] == path and len(p) > len(path)]:
                    del counts[other]      # a new [[services]] starts its own [[services.ports]]
            if path in counts:
                path = (*path, counts[path])
        return path

    def line(self, path: Path, key: str | None = None) -> int | None:
        """The key's line, else its table's header, else the nearest enclosing table's."""
        if key is not None and (path, key) in self.keys:
            return self.keys[(path, key)]
        while path:
            if path in self.tables:
                return self.tables[path]
            path = path[:-1]
        return None
