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
    import threading

    from bezgelor_tasks import elixir
    from bezgelor_tasks.areas import registry

    elixir.judge().warm()
    ctx = CheckContext(co)
    areas = [a for a in registry() if a.check is not None or a.owns is not None]
    shown_at = {a.name: i for i, a in enumerate(areas)}
    results: dict[str, list[Finding]] = {}
    failed: list[BaseException] = []

    def run_elixir_areas() -> None:
        try:
            results.update(_run_areas(co, ctx, [a for a in areas if a.asks_elixir]))
        except BaseException as e:  # re-raised in the caller's thread
            failed.append(e)

    worker = threading.Thread(target=run_elixir_areas, name="verify-elixir-areas", daemon=True)
    worker.start()
    results.update(_run_areas(co, ctx, [a for a in areas if not a.asks_elixir]))
    worker.join()
    if failed:
        raise failed[0]
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


def _run_areas(co: Checkout, ctx: CheckContext, areas: list[Area]) -> dict[str, list[Finding]]:
    """Each area's findings: one per file it reads that does not parse (from the first area that reads it, and
    then the areas that read it are skipped), then the files it owns that differ, then its check's."""
    from bezgelor_tasks.areas import framework

    reads = {a.name: framework.area_files(a, co) for a in areas}
    broken = framework.broken_files(co, [rel for rels in reads.values() for rel in rels])
    out: dict[str, list[Finding]] = {a.name: [] for a in areas}
    for rel, b in broken.items():
        readers = [a.name for a in areas if rel in reads[a.name]]
        out[readers[0]].append(framework.broken_finding(b, readers[0], readers))
    for area in areas:
        if not any(rel in broken for rel in reads[area.name]):
            out[area.name] += framework.owned_findings(area, co) + (area.check(ctx) if area.check else [])
    return out


def run_checks(co: Checkout) -> list[Finding]:
    return verify(co).findings


__all__ = ["Finding", "Report", "run_checks", "verify", "IGNORE_FILE"]
