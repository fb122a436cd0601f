"""Careful text surgery on Elixir source: find brackets, `do ... end` bodies and keyword keys.

Patching a user's file means finding *where* to insert without misreading strings, comments,
sigils or char literals as code. `mask()` blanks all of those out (same length, newlines kept) so
plain scanning of the masked text sees only code; positions map 1:1 back to the original. Real
Elixir (`elixir.parse_files`) judges the result; this module only finds places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bezgelor_tasks.errors import UserError

_SIGIL_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">", "/": "/", "|": "|", '"': '"', "'": "'"}
_OPEN = {"(": ")", "[": "]", "{": "}"}
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_?!]*")


def _blank(chars: list[str], start: int, end: int) -> None:
    for i in range(start, end):
        if chars[i] != "\n":
            chars[i] = " "


def mask(text: str, *, comments_only: bool = False) -> str:
    """`text` with comments, strings, charlists, sigils and char literals blanked out (quotes kept).

    With `comments_only`, literals are scanned (so a `#` inside a string is not a comment) but kept.
    """
    chars = list(text)
    literal = list(text) if comments_only else chars
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            _blank(chars, i, j)
            i = j
        elif text.startswith('"""', i) or text.startswith("'''", i):
            q = text[i:i + 3]
            j = text.find(q, i + 3)
            while j > 0 and text[j - 1] == "\\":
                j = text.find(q, j + 1)
            j = n if j < 0 else j + 3
            _blank(literal, i + 3, j - 3)
            i = j
        elif c in "\"'":
            j = _string_end(text, i + 1, c)
            _blank(literal, i + 1, j - 1)
            i = j
        elif c == "~" and i + 2 < n and text[i + 1].isalpha() and text[i + 2] in _SIGIL_PAIRS:
            if text.startswith('"""', i + 2) or text.startswith("'''", i + 2):
                q = text[i + 2:i + 5]
                j = text.find(q, i + 5)
                j = n if j < 0 else j + 3
            else:
                j = _string_end(text, i + 3, _SIGIL_PAIRS[text[i + 2]])
            while j < n and text[j].isalpha():  # modifiers, e.g. ~r/x/i
                j += 1
            _blank(literal, i + 1, j)
            i = j
        elif c == "?" and i + 1 < n and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_?!")):
            j = i + 2 if text[i + 1] != "\\" else i + 3
            _blank(literal, i + 1, min(j, n))
            i = j
        else:
            i += 1
    return "".join(chars)


def _string_end(text: str, i: int, close: str) -> int:
    """Index just past the closing delimiter, honouring backslash escapes."""
    n = len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == close:
            return i + 1
        i += 1
    return n


def matching(masked: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (in masked text)."""
    stack = [_OPEN[masked[open_at]]]
    i = open_at + 1
    while i < len(masked):
        c = masked[i]
        if c in _OPEN:
            stack.append(_OPEN[c])
        elif c in ")]}":
            if c != stack[-1]:
                raise ValueError(f"unbalanced {c!r} at {i}")
            stack.pop()
            if not stack:
                return i
        i += 1
    raise ValueError("unclosed bracket")


def call_end(masked: str, i: int) -> int:
    """End of a paren-less call's argument list (e.g. `config :app, Mod, k: v`) in masked text:
    the closing bracket of an enclosing expression, or the first depth-0 newline not after a comma."""
    depth = 0
    while i < len(masked):
        c = masked[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif c == "\n" and depth == 0:
            before = masked[:i].rstrip()
            if before and before[-1] != ",":
                return len(before)
        i += 1
    return len(masked.rstrip())


def line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def indent_at(text: str, index: int) -> str:
    start = line_start(text, index)
    return text[start:index][: len(text[start:index]) - len(text[start:index].lstrip())]


@dataclass(frozen=True)
class Entry:
    """One element of a list literal: `key` for keyword entries (`name:` or `"quoted":`), else None."""
    key: str | None
    start: int          # first char of the element
    end: int            # one past its last significant char
    value_start: int    # first char of the value (== start for non-keyword elements)


def split_elements(text: str, masked: str, open_at: int, close_at: int) -> list[Entry]:
    """The top-level elements of the list/tuple literal spanning [open_at, close_at]."""
    entries: list[Entry] = []
    depth, start = 0, open_at + 1
    i = open_at + 1
    block = 0  # do ... end depth inside an element (e.g. fn -> ... end)
    while i <= close_at:
        c = masked[i]
        if i == close_at or (c == "," and depth == 0 and block == 0):
            seg = masked[start:i]
            if seg.strip():
                s = start + (len(seg) - len(seg.lstrip()))
                e = start + len(seg.rstrip())
                entries.append(_entry(text, masked, s, e))
            start = i + 1
        elif c in _OPEN:
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c.isalpha() and (i == 0 or not (masked[i - 1].isalnum() or masked[i - 1] in "_.:")):
            m = _WORD_RE.match(masked, i)
            if m:
                w = m.group(0)
                if w in ("do", "fn") and not masked.startswith(":", m.end()):
                    block += 1
                elif w == "end":
                    block -= 1
                i = m.end()
                continue
        i += 1
    return entries


_KEY_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_?!]*|"[^"]*"):\s')


def _entry(text: str, masked: str, s: int, e: int) -> Entry:
    m = _KEY_RE.match(text, s)
    if m and masked[m.end(1)] == ":" and not text.startswith("::", m.end(1)):
        key = m.group(1).strip('"')
        vs = m.end()
        while vs < e and text[vs].isspace():
            vs += 1
        return Entry(key, s, e, vs)
    return Entry(None, s, e, s)


def insert_elements(text: str, masked: str, open_at: int, close_at: int, items: list[str]) -> str:
    """`text` with `items` (element source) appended to the list literal at [open_at, close_at]."""
    if not items:
        return text
    inner = masked[open_at + 1:close_at]
    multiline = "\n" in inner or ("\n" in "".join(items))
    if not inner.strip():
        if not multiline:
            return text[:close_at] + ", ".join(items) + text[close_at:]
        ind = indent_at(text, open_at) + "  "
        body = ",\n".join(ind + it for it in items)
        return text[:open_at + 1] + "\n" + body + "\n" + indent_at(text, open_at) + text[close_at:]
    last = open_at + 1 + len(inner.rstrip())  # one past the last significant char
    trailing_comma = masked[last - 1] == ","
    if "\n" not in inner:
        sep = " " if trailing_comma else ", "
        return text[:last] + sep + ", ".join(items) + text[last:]
    elements = split_elements(text, masked, open_at, close_at)
    ind = indent_at(text, elements[0].start) if elements else indent_at(text, open_at) + "  "
    eol = text.find("\n", last - 1)
    closing_on_own_line = text[line_start(text, close_at):close_at].strip() == ""
    new_lines = "".join(ind + it + ",\n" for it in items)
    if not trailing_comma:
        new_lines = new_lines[:-2] + "\n"
    if closing_on_own_line and eol < close_at:
        head = text[:last] + ("" if trailing_comma else ",")
        return head + text[last:eol + 1] + new_lines + text[eol + 1:]
    head = text[:last] + ("" if trailing_comma else ",")
    return head + "\n" + new_lines.rstrip("\n") + text[last:]


@dataclass(frozen=True)
class FunctionBody:
    """A zero-arity `def name do <list> end` / `defp name, do: <list>`: where its list literal is."""
    name: str
    def_at: int
    open_at: int
    close_at: int


def find_function_list(text: str, masked: str, name: str) -> FunctionBody | None:
    """The list literal a zero-arity (def|defp) `name` returns, or None when there is no such function."""
    for m in re.finditer(rf"^[ \t]*defp?[ \t]+{re.escape(name)}(?:\(\))?(?:[ \t]+do\b|[ \t]*,[ \t]*do:)", masked,
                         re.M):
        j = m.end()
        while j < len(masked) and masked[j].isspace():
            j += 1
        if j < len(masked) and masked[j] == "[":
            return FunctionBody(name, m.start(), j, matching(masked, j))
        return FunctionBody(name, m.start(), -1, -1)
    return None


def module_end(masked: str) -> int:
    """Index of the `end` closing the file's last top-level `defmodule` (the last `end` in the file)."""
    ends = [m.start() for m in re.finditer(r"\bend\b", masked)]
    if not ends:
        raise ValueError("no end")
    return ends[-1]


def append_before_module_end(text: str, masked: str, code: str) -> str:
    """Insert `code` (already indented, ending in newline) just before the module's final `end`."""
    at = line_start(text, module_end(masked))
    head = text[:at].rstrip("\n") + "\n\n"
    return head + code + text[at:]


def not_patchable(rel: str, line: int, what: str, fix: str) -> UserError:
    return UserError(f"{rel}:{line}: {what}, so init cannot patch it safely and changed nothing.", fix=fix)


def elixir_string(value: str) -> str:
    """A double-quoted Elixir string literal for `value`."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("#{", "\\#{")
    return f'"{escaped}"'
