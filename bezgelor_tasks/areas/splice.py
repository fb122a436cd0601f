"""Text changes to Elixir files, made only at the offsets the Elixir judge gave (elixir_source.py).

This is the one place Python touches Elixir source text, and it reads none of it: it inserts and removes at
positions Elixir named (a list's brackets, an element's first character, a module's `end`, a comment's span),
and around them it looks only at whitespace, at the comment spans Elixir listed, and at the one comma that
separates two elements Elixir said are adjacent. Every change is an `Edit` computed against one answer of
the judge; `apply` makes them all at once (the judge then parses the result: init refuses to write Elixir
that does not parse).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bezgelor_tasks.elixir_source import Comment, Item, Node


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


def apply(text: str, edits: Iterable[Edit]) -> str:
    """`text` with every edit made (edits must not overlap; they are made from the last one back)."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end), reverse=True)
    for later, earlier in zip(ordered, ordered[1:], strict=False):
        if earlier.end > later.start:
            raise ValueError(f"overlapping edits at {earlier.start}-{earlier.end} and {later.start}-{later.end}")
    for e in ordered:
        text = text[:e.start] + e.text + text[e.end:]
    return text


def line_start(text: str, at: int) -> int:
    return text.rfind("\n", 0, at) + 1


def line_end(text: str, at: int) -> int:
    """Just past the newline that ends the line holding offset `at` (the text's end on its last line)."""
    stop = text.find("\n", at)
    return len(text) if stop < 0 else stop + 1


def source(text: str, node: Node) -> str:
    """The source of a node whose end Elixir gave (a bracketed, parenthesised or `do ... end` one)."""
    assert node.start is not None and node.end is not None
    return text[node.start:node.end]


def item_source(text: str, listed: Node, index: int, comments: Sequence[Comment]) -> str:
    """The source of element `index` of list `listed` (without the comma after it)."""
    assert listed.items is not None
    return text[listed.items[index].start:item_end(text, listed, index, comments)[0]]


def indent_at(text: str, at: int) -> str:
    """The whitespace the line holding offset `at` starts with."""
    line = text[line_start(text, at):at]
    return line[: len(line) - len(line.lstrip())]


def alone_on_line(text: str, at: int) -> bool:
    """Nothing but whitespace before offset `at` on its line."""
    return text[line_start(text, at):at].strip() == ""


def end_before(text: str, at: int, comments: Sequence[Comment]) -> int:
    """Just past the last character before offset `at` that is neither whitespace nor in a comment."""
    spans = [(c.start, c.end) for c in comments]
    i = at
    while i > 0:
        if text[i - 1].isspace():
            i -= 1
            continue
        span = next((s for s in spans if s[0] < i <= s[1]), None)
        if span is None:
            return i
        i = span[0]
    return i


def item_end(text: str, listed: Node, index: int, comments: Sequence[Comment]) -> tuple[int, int | None]:
    """Where element `index` of list `listed` ends, and where the comma after it is (None: no comma)."""
    assert listed.items is not None and listed.close is not None
    following = listed.items[index + 1].start if index + 1 < len(listed.items) else listed.close
    end = end_before(text, following, comments)
    if text[end - 1] == ",":
        return end_before(text, end - 1, comments), end - 1
    return end, None


def insert_items(text: str, listed: Node, items: Sequence[str], comments: Sequence[Comment]) -> Edit:
    """Append `items` (element source) to the list literal `listed`, in its layout (one line, or one per line)."""
    assert listed.open is not None and listed.close is not None and listed.items is not None
    open_at, close_at = listed.open, listed.close
    multiline = "\n" in text[open_at:close_at] or any("\n" in it for it in items)
    if not listed.items:
        if not multiline:
            return Edit(close_at, close_at, ", ".join(items))
        ind = indent_at(text, open_at)
        return Edit(open_at + 1, close_at, "\n" + ",\n".join(f"{ind}  {it}" for it in items) + "\n" + ind)
    last, comma = item_end(text, listed, len(listed.items) - 1, comments)
    after = comma + 1 if comma is not None else last      # past the last element and its comma, if any
    if not multiline:
        return Edit(after, after, (" " if comma is not None else ", ") + ", ".join(items))
    first = listed.items[0].start
    ind = indent_at(text, first) if alone_on_line(text, first) else indent_at(text, open_at) + "  "
    lines = ",\n".join(f"{ind}{it}" for it in items) + ("," if comma is not None else "")
    sep = "" if comma is not None else ","
    eol = text.find("\n", after)
    if alone_on_line(text, close_at) and 0 <= eol < close_at:
        return Edit(after, eol + 1, sep + text[after:eol + 1] + lines + "\n")
    return Edit(after, after, sep + "\n" + lines)


def remove_item(text: str, listed: Node, index: int, comments: Sequence[Comment]) -> Edit:
    """Remove element `index` of list `listed` and the comma that separated it."""
    assert listed.items is not None
    item = listed.items[index]
    if index + 1 < len(listed.items):
        return Edit(item.start, listed.items[index + 1].start, "")
    end, comma = item_end(text, listed, index, comments)
    end = comma + 1 if comma is not None else end
    if index == 0:
        return Edit(item.start, end, "")
    return Edit(item_end(text, listed, index - 1, comments)[0], end, "")


def remove_entry(text: str, entries: Sequence[Item], index: int, comments: Sequence[Comment]) -> Edit | None:
    """Remove `key: value` entry `index` of a call's keyword arguments (written without brackets, as in
    `config :app, Mod, a: 1, b: 2`); None when it cannot be done safely (the only entry, or an unbracketed
    value last)."""
    item = entries[index]
    if index + 1 < len(entries):
        return Edit(item.start, entries[index + 1].start, "")
    if index == 0 or item.value.end is None:
        return None
    prev = end_before(text, item.start, comments)
    if text[prev - 1] == ",":
        prev = end_before(text, prev - 1, comments)
    return Edit(prev, item.value.end, "")


def replace_node(node: Node, code: str) -> Edit:
    """Replace a bracketed, parenthesised or `do ... end` node (whose end Elixir gave) by `code`."""
    assert node.start is not None and node.end is not None
    return Edit(node.start, node.end, code)


def replace_value(text: str, listed: Node, index: int, code: str, comments: Sequence[Comment]) -> Edit:
    """Replace the value of element `index` (a `key: value` entry) of list `listed`."""
    assert listed.items is not None
    value = listed.items[index].value
    assert value.start is not None
    end = value.end if value.end is not None else item_end(text, listed, index, comments)[0]
    return Edit(value.start, end, code)


def at_end(text: str, block: str) -> Edit:
    """`block` after the last line of the file, one blank line between."""
    body_end = len(text.rstrip("\n"))
    return Edit(body_end, len(text), "\n\n" + block)


def before_module_end(text: str, module_end: int, code: str) -> Edit:
    """`code` (indented, ending in a newline) as the last thing of the module whose `end` is at `module_end`."""
    at = line_start(text, module_end)
    body_end = len(text[:at].rstrip("\n"))
    return Edit(body_end, at, "\n\n" + code)


def lines_before(text: str, at: int, block: str, comments: Sequence[Comment] = ()) -> Edit:
    """`block` (whole lines) at the start of the line holding offset `at`, above the comment lines directly
    above it (they belong to what follows them)."""
    start = line_start(text, at)
    own_line = {c.line for c in comments if alone_on_line(text, c.start)}
    line = text.count("\n", 0, start) + 1
    while line - 1 in own_line and start > 0:
        start = line_start(text, start - 1)
        line -= 1
    return Edit(start, start, block)


def line_of(text: str, at: int) -> int:
    return text.count("\n", 0, at) + 1
