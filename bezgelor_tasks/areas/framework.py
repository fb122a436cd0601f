"""What every area gets from the framework: its files parsed once, and the files the tool owns diffed.

- **One finding per broken file.** Each area names the files whose content it needs (`Area.files`). Before
  any area looks at them, each file is parsed once (Elixir's own parser for .ex/.exs, tomlkit for .toml).
  A file that does not parse is ONE finding — the parser's file:line and message — and every area that
  needs it is skipped, never failed on what a half-read file seems to say. `init` refuses the same way
  (naming every broken file) before it computes any change.
- **Files the tool owns whole** (`Area.owns`) are verified by rendering them and diffing: the finding is
  the diff, with an id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bezgelor_tasks.checks.findings import Finding, error, warning
from bezgelor_tasks.errors import UserError

if TYPE_CHECKING:
    from bezgelor_tasks.areas import Area
    from bezgelor_tasks.checkout.discover import Checkout
    from bezgelor_tasks.checks.context import CheckContext
    from bezgelor_tasks.files import FileChange


@dataclass(frozen=True)
class Broken:
    """A file that does not parse, as its parser says."""
    file: str
    line: int | None
    message: str
    parser: str        # "Elixir" | "TOML"


def area_files(area: Area, co: Checkout) -> list[str]:
    """The files an area reads, those that exist (relative to the checkout)."""
    if area.files is None:
        return []
    names = area.files(co) if callable(area.files) else area.files
    return [rel for rel in dict.fromkeys(names) if co.path(rel).is_file()]


def is_elixir(rel: str) -> bool:
    return rel.endswith((".ex", ".exs"))


def broken_files(co: Checkout, rels: Iterable[str]) -> dict[str, Broken]:
    """Each file parsed once: those that do not parse, by file. Elixir files need Elixir (absent: unjudged)."""
    from bezgelor_tasks import elixir

    rels = list(dict.fromkeys(rels))
    out: dict[str, Broken] = {}
    exs = [rel for rel in rels if is_elixir(rel)]
    if exs and elixir.available():
        for p in elixir.parse_files([co.path(rel) for rel in exs], co.root):
            out[p.file] = Broken(p.file, p.line or None, p.message, "Elixir")
    for rel in (r for r in rels if r.endswith(".toml")):
        problem = _toml_problem(co, rel)
        if problem is not None:
            out[rel] = problem
    return out


def _toml_problem(co: Checkout, rel: str) -> Broken | None:
    from bezgelor_tasks.areas.fly_toml_doc import NotToml, read

    parsed = read(co.path(rel).read_text(encoding="utf-8"))
    if not isinstance(parsed, NotToml):
        return None
    return Broken(rel, parsed.line or None, parsed.message.split(" at line ")[0], "TOML")


def broken_finding(broken: Broken, area: str, skipped: Sequence[str]) -> Finding:
    where = f" at line {broken.line}" if broken.line else ""
    also = f"; the checks that read it ({', '.join(skipped)}) were skipped" if skipped else ""
    return error(broken.file, broken.line, f"does not parse as {broken.parser}: {broken.message}{also}",
                 f"edit {broken.file}{where} to fix the syntax error it names, then run `inv verify` again",
                 f"{area}.syntax")


def refuse_broken(co: Checkout, areas: Iterable[Area]) -> None:
    """init: a file an area would read or patch that does not parse stops init before anything is computed."""
    rels = [rel for area in areas if area.changes is not None for rel in area_files(area, co)]
    broken = broken_files(co, rels)
    if not broken:
        return
    lines = "; ".join(f"{b.file}:{b.line or '?'}: {b.message}" for b in broken.values())
    first = next(iter(broken.values()))
    raise UserError(f"{len(broken)} file(s) do not parse, so init cannot read or patch them; nothing was changed "
                    f"({lines}).", fix=f"fix the syntax error at {first.file}"
                    + (f" line {first.line}" if first.line else "") + ", then run `inv init` again.")


def owned_findings(area: Area, ctx: CheckContext) -> list[Finding]:
    """A file the tool writes whole that is missing or differs from what init would write: one finding each,
    whose detail is the diff. Without Elixir, what an area that asks Elixir would write is not known: its files
    are not compared (said once, loudly)."""
    if area.owns is None:
        return []
    if area.asks_elixir and not ctx.elixir_available:
        ctx.skipped.append(f"the files {area.name} writes whole were NOT compared with what `inv init` writes "
                           "(Elixir is not installed: what it would write depends on what Elixir reads)")
        return []
    out = []
    for change in _changes(area.owns(ctx.co)):
        if not change.changed:
            continue
        if change.old is None:
            out.append(error(change.rel, None, f"is missing ({change.why})", "run `inv init` to write it",
                             f"{area.name}.missing"))
        else:
            how = "edited by hand" if change.needs_force else "written for other settings or by an older version"
            out.append(warning(change.rel, None, f"differs from what `inv init` writes ({how})",
                               "run `inv init` to rewrite it (a hand-edited copy is shown as a diff first and kept "
                               "as .orig)", f"{area.name}.differs", detail=change.diff()))
    return out


def _changes(result: FileChange | list[FileChange]) -> list[FileChange]:
    return result if isinstance(result, list) else [result]
