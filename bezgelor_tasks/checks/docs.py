"""Commands in the checkout's docs and CI that the seed plan got wrong (see facts: flyctl's real grammar).

Only command lines are read: fenced code blocks in Markdown, every line of workflows and shell
scripts. Prose that names a wrong command to warn against it is left alone. Warnings, not errors:
wrong docs mislead people but do not break a deploy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, warning

_FLY = r"\bfly(?:ctl)?\s+"
# (pattern, severity, what is wrong, how to fix)
RULES: tuple[tuple[re.Pattern[str], str, str, str], ...] = (
    (re.compile(_FLY + r"ips\s+allocate(?!-)"), "warning",
     "`fly ips allocate` is interactive (it ignores `v4`) and fails in a pipe",
     "use `fly ips allocate-v4 -a APP --yes` (a dedicated IPv4: raw TCP game ports need one)"),
    (re.compile(_FLY + r"releases\s+rollback\b"), "warning", "`fly releases rollback` does not exist",
     "roll back with `fly deploy --image <ImageRef>` from `fly releases --image --json` (or `inv rollback.app`)"),
    (re.compile(_FLY + r"(?:postgres|pg)\s+restore\b"), "warning", "`fly postgres restore` does not exist",
     "use `fly postgres backup restore <dest-app>` (or `inv db.restore`)"),
    (re.compile(_FLY + r"secrets\s+set\s+(?:.*\s)?[A-Z][A-Z0-9_]*=\S"), "warning",
     "`fly secrets set NAME=value` puts the secret in argv and shell history",
     "pipe NAME=VALUE lines to `fly secrets import -a APP --stage` (or `inv secrets.set NAME`)"),
    (re.compile(_FLY + r"deploy\b.*\s--region\b"), "warning", "`fly deploy` has no --region flag",
     "remove --region from this line (the region comes from fly.toml's primary_region)"),
)
_PG_CREATE = re.compile(_FLY + r"(?:postgres|pg)\s+create\b")


def _command_lines(path: Path) -> Iterator[tuple[int, str]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() not in (".md", ".markdown"):
        yield from enumerate(text.splitlines(), 1)
        return
    fenced = False
    for no, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            yield no, line


def _files(ctx: CheckContext) -> list[Path]:
    root = ctx.co.root
    found = [*root.glob("docs/**/*.md"), *root.glob("*.md"), *root.glob(".github/workflows/*.y*ml"),
             *root.glob("bin/*.sh"), *root.glob("scripts/*.sh")]
    return sorted(p for p in found if p.is_file())


def check(ctx: CheckContext) -> list[Finding]:
    out: list[Finding] = []
    for path in _files(ctx):
        rel = ctx.rel(path)
        lines = list(_command_lines(path))
        # join `\` continuations so flags on the next line count
        joined: list[tuple[int, str]] = []
        for no, line in lines:
            if joined and joined[-1][1].rstrip().endswith("\\"):
                joined[-1] = (joined[-1][0], joined[-1][1].rstrip()[:-1] + " " + line.strip())
            else:
                joined.append((no, line))
        for no, line in joined:
            if line.lstrip().startswith("#"):
                continue
            for pattern, severity, what, fix in RULES:
                if pattern.search(line):
                    make = error if severity == "error" else warning
                    out.append(make(rel, no, what, fix))
            if _PG_CREATE.search(line) and "--org" not in line and " -o " not in line:
                out.append(warning(rel, no, "`fly postgres create` without --org prompts, and fails when not on "
                                   "a terminal", "pass --name --region --org --initial-cluster-size --vm-size "
                                   "--volume-size (or use `inv deploy.full`)"))
    return out
