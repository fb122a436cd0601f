"""Files bezgelor-tasks owns whole (Dockerfile, .dockerignore, docs, workflow, tasks.py, noxfile.py) are verified
by rendering them and diffing (the framework's `Area.owns`: the finding is the diff). That holds while the file
on disk is ours: written by bezgelor-tasks and unedited (its generated-file marker matches). A file the user
wrote or edited is theirs: its area gives it semantic checks (Dockerfile, .dockerignore) or leaves it alone,
and a missing one is reported by its area where it matters (a missing Dockerfile, not a missing doc)."""

from __future__ import annotations

from collections.abc import Callable

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.files import FileChange, marker_intact

Changes = Callable[[Checkout], "FileChange | list[FileChange]"]


def is_ours(change: FileChange) -> bool:
    """The file on disk was written by bezgelor-tasks and nobody edited it since."""
    return change.old is not None and marker_intact(change.old)


def ours_only(changes: Changes) -> Callable[[Checkout], list[FileChange]]:
    """`Area.owns` for an area whose files are diffed only while they are ours."""
    def owned(co: Checkout) -> list[FileChange]:
        result = changes(co)
        return [c for c in (result if isinstance(result, list) else [result]) if is_ours(c)]
    return owned
