"""Files bezgelor-tasks owns whole (Dockerfile, .dockerignore, docs, workflow, tasks.py, noxfile.py) are verified
by rendering them and diffing: the finding is the diff. Only a file the user wrote or edited (its generated-file
marker no longer matches) gets semantic checks, by its area."""

from __future__ import annotations

import difflib

from bezgelor_tasks.checks.findings import Finding, warning
from bezgelor_tasks.files import FileChange, marker_intact


def is_ours(change: FileChange) -> bool:
    """The file on disk was written by bezgelor-tasks and nobody edited it since."""
    return change.old is not None and marker_intact(change.old)


def stale(change: FileChange, area: str) -> list[Finding]:
    """One finding when our own, unedited file is not what init would write now (settings or checkout changed)."""
    if not is_ours(change) or change.old == change.new:
        return []
    old, new = (change.old or "").splitlines(), change.new.splitlines()
    changed = [(tag, i1, i2, j1, j2) for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes()
               if tag != "equal" and not (i1 == 0 and j1 == 0 and i2 - i1 == j2 - j1 == 1)]   # the marker line
    if not changed:
        return []
    tag, i1, i2, j1, j2 = changed[0]
    first = f"+{new[j1].strip()}" if j2 > j1 else f"-{old[i1].strip()}"
    count = sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in changed)
    return [warning(change.rel, i1 + 1, f"is bezgelor-tasks' own file, unedited, but not what `inv init` writes for "
                    f"this checkout and these settings now ({count} line(s) differ; first: `{first[:80]}`)",
                    "run `inv init` to write it again (`inv init --check` shows the diff)", f"{area}.stale")]
