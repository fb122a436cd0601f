"""`verify`: offline checks of a checkout's deployment config. Each module checks one area and returns
`Finding`s; `run_checks` runs them all in a fixed order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks import (
    config,
    dockerfile,
    dockerignore,
    docs,
    elixir_syntax,
    flytoml,
    health,
    memory,
    mixexs,
    overlays,
    ports,
    prodexs,
    runtime,
)
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import SEVERITIES, Finding

CheckFn = Callable[[CheckContext], list[Finding]]

CHECKS: tuple[tuple[str, CheckFn], ...] = (
    ("elixir_syntax", elixir_syntax.check),
    ("mixexs", mixexs.check),
    ("config", config.check),
    ("prodexs", prodexs.check),
    ("runtime", runtime.check),
    ("health", health.check),
    ("overlays", overlays.check),
    ("dockerfile", dockerfile.check),
    ("dockerignore", dockerignore.check),
    ("flytoml", flytoml.check),
    ("ports", ports.check),
    ("memory", memory.check),
    ("docs", docs.check),
)


@dataclass
class Report:
    findings: list[Finding]
    skipped: list[str] = field(default_factory=list)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def errors(self) -> int:
        return self.count("error")

    def as_json(self) -> dict[str, object]:
        return {"findings": [f.as_json() for f in self.findings], "skipped": self.skipped,
                "counts": {s: self.count(s) for s in SEVERITIES}, "ok": self.errors == 0}


def _actionable(fix: str, file: str) -> str:
    """Every fix names where to act: an `inv` task, or the file to edit (added when the text leaves it implicit)."""
    if "inv " in fix or file in fix or file.rsplit("/", 1)[-1] in fix:
        return fix
    return f"{fix} (in {file})"


def verify(co: Checkout) -> Report:
    ctx = CheckContext(co)
    findings: list[Finding] = []
    for name, fn in CHECKS:
        for f in fn(ctx):
            findings.append(Finding(f.severity, f.file, f.line, f.message, _actionable(f.fix, f.file), name))
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: order[f.severity])  # stable: areas keep their order within a severity
    return Report(findings, ctx.skipped)


def run_checks(co: Checkout) -> list[Finding]:
    return verify(co).findings


__all__ = ["Finding", "Report", "run_checks", "verify", "CHECKS"]
