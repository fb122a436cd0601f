"""What Elixir says about a file's source, with positions: the judge's answers as typed data.

Every question sends the text Python holds (so each offset is an index into that very string) and gets back
nodes with where they start and end, their literal values (atoms as ":name", keyword lists as dicts) or
`Expr` when they are not literals, and for list literals their items. Python never reads Elixir itself: the
areas decide from these answers, and `areas/splice.py` changes text only at these offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bezgelor_tasks import elixir


@dataclass(frozen=True)
class Expr:
    """A value that is not a literal, as Elixir prints it."""
    source: str


@dataclass(frozen=True)
class Node:
    start: int | None
    end: int | None            # known for brackets, parentheses and do/end blocks
    line: int | None
    value: Any                 # the literal, or an Expr
    open: int | None = None    # a list literal's brackets and items
    close: int | None = None
    items: tuple[Item, ...] | None = None

    @property
    def is_literal(self) -> bool:
        return not isinstance(self.value, Expr)

    @property
    def is_list(self) -> bool:
        return self.items is not None

    def get(self, key: str) -> Item | None:
        return next((i for i in self.items or () if i.key == key), None)

    def key_names(self) -> list[str]:
        return [i.key for i in self.items or () if i.key is not None]


@dataclass(frozen=True)
class Item:
    """One element of a list literal: `key:` entries have a key (from `start`, the key's first character)."""
    key: str | None
    start: int
    line: int | None
    value: Node


@dataclass(frozen=True)
class Comment:
    line: int
    start: int
    end: int
    text: str


def _value(raw: Any) -> Any:
    if isinstance(raw, dict) and set(raw) == {"__expr__"}:
        return Expr(raw["__expr__"])
    return raw


def node(raw: dict[str, Any] | None) -> Node | None:
    if raw is None:
        return None
    listed = raw.get("list")
    items = None if listed is None else tuple(
        Item(i["key"], i["start"], i["line"], node(i["value"])) for i in listed["items"])  # type: ignore[arg-type]
    return Node(raw["start"], raw["end"], raw["line"], _value(raw["value"]),
                listed and listed["open"], listed and listed["close"], items)


def comments(raw: list[dict[str, Any]]) -> tuple[Comment, ...]:
    return tuple(Comment(c["line"], c["start"], c["end"], c["text"]) for c in raw)


def _ask(op: str, path: Path, text: str | None) -> dict[str, Any] | None:
    """The judge's answer (None: Elixir is not installed, or the file does not parse)."""
    if not elixir.available():
        return None
    args = (str(path),) if text is None else (str(path), text)
    answer = elixir.judge().ask(op, *args, files=(path,))
    return answer if answer.get("ok") else None


# -- mix.exs ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pointed:
    """Where a project key points: its list (inline, or returned by the zero-arity function `function`)."""
    via: str                   # inline | function | expr
    node: Node
    function: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Project:
    text: str
    project: Node | None       # project/0's value (a list literal when `project.is_list`)
    def_line: int | None
    releases: Pointed | None
    aliases: Pointed | None
    functions: dict[str, dict[str, Any]]   # zero-arity def/defp of the module: name -> {line, start, kind}
    module_end: int | None                 # the offset of the module's `end`
    comments: tuple[Comment, ...]

    def literals(self) -> dict[str, Any]:
        """project/0's literal values (app, version, elixir, apps_path ...)."""
        if self.project is None or not self.project.is_list:
            return {}
        return {i.key: i.value.value for i in self.project.items or () if i.key and i.value.is_literal}


def _pointed(raw: dict[str, Any] | None) -> Pointed | None:
    if raw is None:
        return None
    n = node(raw["node"])
    assert n is not None
    return Pointed(raw["via"], n, raw.get("function"), raw.get("line"))


def project(path: Path, text: str | None = None) -> Project | None:
    """mix.exs as Elixir reads it (None: it does not parse)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    a = _ask("project", path, text)
    return None if a is None else _project(text, a)


def _project(text: str, a: dict[str, Any]) -> Project:
    raw = a.get("project")
    return Project(text, node(raw), raw and raw.get("def_line"), _pointed(a.get("releases")),
                   _pointed(a.get("aliases")), a.get("functions") or {}, a.get("module_end"), comments(a["comments"]))


def mix_projects(paths: list[Path]) -> list[dict[str, str] | None]:
    """The literal string/atom keys of each mix.exs's `def project` (app, version, elixir, ...), the files asked
    in one batch (None: Elixir is absent, or it does not parse)."""
    if not elixir.available():
        return [None] * len(paths)
    texts = [path.read_text(encoding="utf-8") for path in paths]
    answers = elixir.judge().ask_many([("project", (str(path), text), (path,))
                                       for path, text in zip(paths, texts, strict=True)])
    out: list[dict[str, str] | None] = []
    for text, a in zip(texts, answers, strict=True):
        facts = _project(text, a) if a.get("ok") else None
        out.append(None if facts is None else {k: v for k, v in facts.literals().items() if isinstance(v, str)})
    return out


def mix_project(path: Path) -> dict[str, str] | None:
    """The literal string/atom keys of a mix.exs `def project` (app, version, elixir, ...)."""
    return mix_projects([path])[0]


# -- routers, modules, config files -------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    verb: str
    path: str                  # with every enclosing scope's prefix
    controller: str            # with the scope's alias
    action: str | None
    pipelines: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Router:
    text: str
    module: str | None
    routes: tuple[Route, ...]
    first_route: int | None    # where the first scope/route/pipe_through of the module starts
    module_end: int | None
    comments: tuple[Comment, ...]


def router(path: Path, text: str | None = None) -> Router | None:
    text = path.read_text(encoding="utf-8") if text is None else text
    a = _ask("routes", path, text)
    if a is None:
        return None
    routes = tuple(Route(r["verb"], r["path"], r["controller"], r["action"], tuple(r["pipelines"]), r["line"])
                   for r in a["routes"])
    return Router(text, a["module"], routes, a.get("first_route"), a.get("module_end"), comments(a["comments"]))


@dataclass(frozen=True)
class Module:
    name: str
    line: int
    functions: tuple[str, ...]            # public, as name/arity
    attributes: dict[str, tuple[Any, int]]  # literal module attributes: name -> (value, line)


def modules(path: Path, text: str | None = None) -> list[Module] | None:
    """The modules a file defines (None: it does not parse)."""
    a = _ask("modules", path, text)
    if a is None:
        return None
    return [Module(m["name"], m["line"], tuple(m["functions"]),
                   {k: (v["value"], v["line"]) for k, v in m["attributes"].items()}) for m in a["modules"]]


@dataclass(frozen=True)
class ConfigCall:
    line: int
    app: str
    key: str | None            # "BezgelorPortalWeb.Endpoint", ":json_library" or None
    in_prod: bool
    start: int
    entries: tuple[Item, ...]

    def get(self, key: str) -> Item | None:
        return next((e for e in self.entries if e.key == key), None)


@dataclass(frozen=True)
class ConfigSource:
    text: str
    calls: tuple[ConfigCall, ...]
    prod_lines: tuple[int, ...]          # lines of `if config_env() == :prod do`
    comments: tuple[Comment, ...]
    imports_config: bool                 # `import Config` at the top level


def config_source(path: Path, text: str | None = None) -> ConfigSource | None:
    text = path.read_text(encoding="utf-8") if text is None else text
    a = _ask("config_source", path, text)
    if a is None:
        return None
    calls = tuple(ConfigCall(c["line"], c["app"], c["key"], c["in_prod"], c["start"],
                             tuple(Item(e["key"], e["start"], e["line"], node(e["value"]))  # type: ignore[arg-type]
                                   for e in c["entries"])) for c in a["calls"])
    return ConfigSource(text, calls, tuple(a["prod_lines"]), comments(a["comments"]), bool(a["imports_config"]))
