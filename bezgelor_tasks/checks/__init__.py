"""`verify`: offline checks of a checkout's deployment config. Each area (`bezgelor_tasks.areas`) checks its
files and returns `Finding`s; `verify` runs them all, in the registry's order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import SEVERITIES, Finding, default_id

if TYPE_CHECKING:
    from bezgelor_tasks.areas import Area
    from bezgelor_tasks.areas.framework import Broken

CheckFn = Callable[[CheckContext], list[Finding]]


# A file in the checkout where a user silences findings they have judged, one per line:
#   <finding id> [<file>[:<line>]]   # why
IGNORE_FILE = ".bezgelor-verify-ignore"


@dataclass(frozen=True)
class Ignore:
    id: str
    file: str | None
    line: int | None
    why: str

    def covers(self, f: Finding) -> bool:
        return (self.id == f.id and (self.file is None or self.file == f.file)
                and (self.line is None or self.line == f.line))


def read_ignores(co: Checkout) -> list[Ignore]:
    path = co.path(IGNORE_FILE)
    if not path.is_file():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        text, _, why = raw.partition("#")
        parts = text.split()
        if not parts:
            continue
        file, _, line = parts[1].partition(":") if len(parts) > 1 else (None, "", "")
        out.append(Ignore(parts[0], file, int(line) if line.isdigit() else None, why.strip()))
    return out


@dataclass
class Report:
    findings: list[Finding]
    skipped: list[str] = field(default_factory=list)
    ignored: list[tuple[Finding, Ignore]] = field(default_factory=list)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def errors(self) -> int:
        return self.count("error")

    def as_json(self) -> dict[str, object]:
        return {"findings": [f.as_json() for f in self.findings], "skipped": self.skipped,
                "ignored": [{**f.as_json(), "why": i.why} for f, i in self.ignored],
                "counts": {s: self.count(s) for s in SEVERITIES}, "ok": self.errors == 0}


def _actionable(fix: str, file: str) -> str:
    """Every fix names where to act: an `inv` task, or the file to edit (added when the text leaves it implicit)."""
    if "inv " in fix or file in fix or file.rsplit("/", 1)[-1] in fix:
        return fix
    return f"{fix} (in {file})"


def verify(co: Checkout) -> Report:
    """Every area's findings. The areas that ask Elixir run in a thread of their own while those that ask only
    Python run here (the judge's answers and Python's own work overlap); findings keep the registry's order."""
    from bezgelor_tasks import elixir
    from bezgelor_tasks.areas import registry

    elixir.judge().warm()
    ctx = CheckContext(co)
    areas = [a for a in registry() if a.check is not None or a.owns is not None]
    results = _run(co, ctx, areas)
    shown_at = {a.name: i for i, a in enumerate(areas)}
    ignores = read_ignores(co)
    found: list[tuple[int, Finding]] = []
    ignored: list[tuple[Finding, Ignore]] = []
    for name, area_findings in results.items():
        for f in area_findings:
            finding = Finding(f.severity, f.file, f.line, f.message, _actionable(f.fix, f.file), name,
                              f.id or default_id(name, f.message), f.detail)
            rule = next((i for i in ignores if i.covers(finding)), None)
            if rule is None:
                found.append((shown_at[name], finding))
            else:
                ignored.append((finding, rule))
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    # stable: by severity, then areas in registry order, then each area's own order
    findings = [f for _, f in sorted(found, key=lambda x: (rank[x[1].severity], x[0]))]
    return Report(findings, ctx.skipped, ignored)


def _run(co: Checkout, ctx: CheckContext, areas: list[Area]) -> dict[str, list[Finding]]:
    """Each area's findings: one per file that does not parse (from the first area in registry order that
    reads it, whichever group it runs in; every area that reads it is skipped), then the files it owns that
    differ, then its check's.

    The areas that ask Elixir run in a thread of their own (what they read may itself be an answer of the
    judge's); each area runs once the files it reads are parsed. Every file is parsed once: the Elixir files
    of both groups in one batch, first thing in that thread; the others (TOML) by whichever group reads them
    first."""
    import threading

    from bezgelor_tasks.areas import framework

    here = [a for a in areas if not a.asks_elixir]
    reads = {a.name: framework.area_files(a, co) for a in here}     # static: asks nothing of Elixir
    parsed = _Parsed(co)
    results: dict[str, list[Finding]] = {}
    failed: list[BaseException] = []

    def elixir_group() -> None:
        try:
            try:
                group = [a for a in areas if a.asks_elixir]
                reads.update({a.name: framework.area_files(a, co) for a in group})
                parsed.elixir([rel for rels in reads.values() for rel in rels])
            finally:
                parsed.elixir_done.set()
            results.update(_run_group(ctx, group, reads, parsed))
        except BaseException as e:  # re-raised in the caller's thread
            failed.append(e)

    worker = threading.Thread(target=elixir_group, name="verify-elixir-areas", daemon=True)
    worker.start()
    results.update(_run_group(ctx, here, reads, parsed))
    worker.join()
    if failed:
        raise failed[0]
    for rel, b in parsed.broken.items():
        readers = [a.name for a in areas if rel in reads[a.name]]
        results[readers[0]].insert(0, framework.broken_finding(b, readers[0], readers))
    return results


class _Parsed:
    """Each file parsed once, whichever group reads it: the Elixir files in one batch (`elixir`), the others
    on first need (`wait_for`)."""

    def __init__(self, co: Checkout) -> None:
        import threading

        self.co = co
        self.broken: dict[str, Broken] = {}
        self.elixir_done = threading.Event()
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def elixir(self, rels: list[str]) -> None:
        from bezgelor_tasks.areas import framework

        files = [rel for rel in dict.fromkeys(rels) if framework.is_elixir(rel)]
        self.broken.update(framework.broken_files(self.co, files))

    def wait_for(self, rels: list[str]) -> bool:
        """Whether every file in `rels` parses (each parsed here once, or by the Elixir batch)."""
        from bezgelor_tasks.areas import framework

        if any(framework.is_elixir(rel) for rel in rels):
            self.elixir_done.wait()
        with self._lock:
            todo = [rel for rel in rels if not framework.is_elixir(rel) and rel not in self._seen]
            self._seen.update(todo)
            self.broken.update(framework.broken_files(self.co, todo))
        return not any(rel in self.broken for rel in rels)


def _run_group(ctx: CheckContext, areas: list[Area], reads: dict[str, list[str]],
               parsed: _Parsed) -> dict[str, list[Finding]]:
    """The findings of the areas none of whose files is broken: the owned files that differ, then the check's."""
    from bezgelor_tasks.areas import framework

    out: dict[str, list[Finding]] = {}
    for area in areas:
        ok = parsed.wait_for(reads[area.name])
        out[area.name] = framework.owned_findings(area, ctx) + (area.check(ctx) if area.check else []) if ok else []
    return out


def run_checks(co: Checkout) -> list[Finding]:
    return verify(co).findings


__all__ = ["Finding", "Report", "run_checks", "verify", "IGNORE_FILE"]
