"""The checkout's shell scripts and CI workflows, everywhere in it: every flyctl line they run is judged.

Read recursively (`scripts/fly/*.sh` as much as `scripts/*.sh`, `bin/`, `.github/workflows/`): `*.sh`,
`*.bash`, files that start with a shell `#!`, and workflow YAML. Each flyctl invocation is held against
flyctl's grammar and our rules (fly/command_lines.py); each problem is a warning of its own at its line
(the line fails or does harm when it runs, but it does not stop a deploy by `inv deploy.full`). The user's
Markdown is read by the docs area (people read it; nothing runs it). Files init writes are not read here:
they are rendered from the builders and checked as a whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, warning
from bezgelor_tasks.fly.command_lines import fly_lines, judge

# Folders that hold no script of the checkout's own: build output, fetched code, tool state.
SKIP_DIRS = frozenset({".git", "_build", "deps", "node_modules", ".bezgelor", ".elixir_ls", "cover", ".venv",
                       "__pycache__", ".hex", ".mix"})
SHELL_SUFFIXES = (".sh", ".bash")
WORKFLOW_SUFFIXES = (".yml", ".yaml")
MAX_BYTES = 1_000_000


def _is_shell(path: str, name: str) -> bool:
    if name.endswith(SHELL_SUFFIXES):
        return True
    if "." in name.lstrip("."):
        return False       # another suffix: not a script without one
    try:
        with open(path, "rb") as fh:
            first = fh.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and any(s in first for s in (b"sh\n", b"bash", b"/sh ", b"zsh", b"dash"))


def script_files(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, kind) of every shell script and workflow of the checkout, in path order."""
    workflows = os.path.join(root, ".github", "workflows")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if dirpath == workflows and name.endswith(WORKFLOW_SUFFIXES):
                yield Path(path), "workflow"
            elif _is_shell(path, name):
                yield Path(path), "shell"


def check(ctx: CheckContext) -> list[Finding]:
    from bezgelor_tasks.files import marker_intact

    out: list[Finding] = []
    for path, kind in script_files(ctx.co.root):
        try:
            if path.stat().st_size > MAX_BYTES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "fly" not in text or marker_intact(text):
            continue
        rel = ctx.rel(path)
        for found in fly_lines(text, kind):
            out += [warning(rel, found.line, p.what, p.fix, p.id) for p in judge(found.argv)]
    return out
