"""Commands in the checkout's docs and CI that the seed plan got wrong (see facts: flyctl's real grammar).

Only command lines are read: fenced code blocks in Markdown, every line of workflows and shell
scripts. Prose that names a wrong command to warn against it is left alone. Findings are about what
will run: a workflow or script line gets a warning of its own; the user's Markdown (people read it,
nothing runs it) gets at most one summarised note, so it never buries the real errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, info, warning

_FLY = r"\bfly(?:ctl)?\s+"
# (id, pattern, severity, what is wrong, how to fix)
RULES: tuple[tuple[str, re.Pattern[str], str, str, str], ...] = (
    ("docs.ips-allocate", re.compile(_FLY + r"ips\s+allocate(?!-)"), "warning",
     "`fly ips allocate` is interactive (it ignores `v4`) and fails in a pipe",
     "use `fly ips allocate-v4 -a APP --yes` (a dedicated IPv4: raw TCP game ports need one)"),
    ("docs.releases-rollback", re.compile(_FLY + r"releases\s+rollback\b"), "warning",
     "`fly releases rollback` does not exist",
     "roll back with `fly deploy --image <ImageRef>` from `fly releases --image --json` (or `inv rollback.app`)"),
    ("docs.postgres-restore", re.compile(_FLY + r"(?:postgres|pg)\s+restore\b"), "warning",
     "`fly postgres restore` does not exist",
     "use `fly postgres backup restore <dest-app>` (or `inv db.restore`)"),
    ("docs.secrets-set", re.compile(_FLY + r"secrets\s+set\s+(?:.*\s)?[A-Z][A-Z0-9_]*=\S"), "warning",
     "`fly secrets set NAME=value` puts the secret in argv and shell history",
     "pipe NAME=VALUE lines to `fly secrets import -a APP --stage` (or `inv secrets.set NAME`)"),
    ("docs.deploy-region", re.compile(_FLY + r"deploy\b.*\s--region\b"), "warning", "`fly deploy` has no --region flag",
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


def _hits(path: Path) -> Iterator[tuple[int, str, str, str, str]]:
    """(line, severity, what, fix, id) for every wrong command line of one file."""
    if "fly" not in path.read_text(encoding="utf-8", errors="replace"):
        return
    lines = list(_command_lines(path))
    # join `\` continuations so flags on the next line count
    joined: list[tuple[int, str]] = []
    for no, line in lines:
        if joined and joined[-1][1].rstrip().endswith("\\"):
            joined[-1] = (joined[-1][0], joined[-1][1].rstrip()[:-1] + " " + line.strip())
        else:
            joined.append((no, line))
    for no, line in joined:
        if "fly" not in line or line.lstrip().startswith("#"):
            continue
        for rule_id, pattern, severity, what, fix in RULES:
            if pattern.search(line):
                yield no, severity, what, fix, rule_id
        if _PG_CREATE.search(line) and "--org" not in line and " -o " not in line:
            yield (no, "warning", "`fly postgres create` without --org prompts, and fails when not on a terminal",
                   "pass --name --region --org --initial-cluster-size --vm-size --volume-size (or use "
                   "`inv deploy.full`)", "docs.postgres-create-org")


def check(ctx: CheckContext) -> list[Finding]:
    out: list[Finding] = []
    in_prose: dict[str, list[int]] = {}
    for path in _files(ctx):
        rel = ctx.rel(path)
        for no, severity, what, fix, rule_id in _hits(path):
            if path.suffix.lower() in (".md", ".markdown"):
                in_prose.setdefault(rel, []).append(no)
                continue
            make = error if severity == "error" else warning
            out.append(make(rel, no, what, fix, rule_id))
    if in_prose:
        n = sum(len(v) for v in in_prose.values())
        where = "; ".join(f"{rel}:{','.join(map(str, nos[:4]))}{'…' if len(nos) > 4 else ''}"
                          for rel, nos in sorted(in_prose.items()))
        out.append(info(sorted(in_prose)[0], None,
                        f"{n} command line(s) in your Markdown docs use flyctl commands the seed plan got wrong "
                        f"(`fly secrets set NAME=value` leaks secrets, `fly ips allocate` is interactive, ...): "
                        f"{where}. Nothing runs them, so they do not block a deploy",
                        "when you next edit those docs, point readers at `inv secrets.set`, `inv ips.allocate`, "
                        "`inv rollback.app` and `inv db.restore` (the generated docs/fly-*.md already do)",
                        "docs.prose-commands"))
    return out
