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
    reads it, whichever group it runs in; the areas that read it are skipped), then the files it owns that
    differ, then its check's. Every file is parsed once: TOML here before anything runs, Elixir first thing
    in the thread of the areas that ask Elixir; an area here that reads an Elixir file waits for that."""
    import threading

    from bezgelor_tasks.areas import framework

    reads = {a.name: framework.area_files(a, co) for a in areas}
    every = list(dict.fromkeys(rel for rels in reads.values() for rel in rels))
    elixir_files = [rel for rel in every if framework.is_elixir(rel)]
    broken = framework.broken_files(co, [rel for rel in every if rel not in elixir_files])
    parsed = threading.Event()
    results: dict[str, list[Finding]] = {}
    failed: list[BaseException] = []

    def elixir_group() -> None:
        try:
            try:
                broken.update(framework.broken_files(co, elixir_files))
            finally:
                parsed.set()
            results.update(_run_group(co, ctx, [a for a in areas if a.asks_elixir], reads, broken))
        except BaseException as e:  # re-raised in the caller's thread
            failed.append(e)

    worker = threading.Thread(target=elixir_group, name="verify-elixir-areas", daemon=True)
    worker.start()
    here = [a for a in areas if not a.asks_elixir]
    if any(rel in elixir_files for a in here for rel in reads[a.name]):
        parsed.wait()
    results.update(_run_group(co, ctx, here, reads, broken))
    worker.join()
    if failed:
        raise failed[0]
    for rel, b in broken.items():
        readers = [a.name for a in areas if rel in reads[a.name]]
        results[readers[0]].insert(0, framework.broken_finding(b, readers[0], readers))
    return results


def _run_group(co: Checkout, ctx: CheckContext, areas: list[Area], reads: dict[str, list[str]],
               broken: dict[str, Broken]) -> dict[str, list[Finding]]:
    """The findings of areas none of whose files is broken: the owned files that differ, then the check's."""
    from bezgelor_tasks.areas import framework

    out: dict[str, list[Finding]] = {}
    for area in areas:
        skip = any(rel in broken for rel in reads[area.name])
        out[area.name] = [] if skip else framework.owned_findings(area, ctx) + (area.check(ctx) if area.check else [])
    return out


def run_checks(co: Checkout) -> list[Finding]:
    return verify(co).findings


__all__ = ["Finding", "Report", "run_checks", "verify", "IGNORE_FILE"]
