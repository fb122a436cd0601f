"""tasks.py and noxfile.py in the checkout, so `inv deploy.full`, `inv db.backup` and `nox -s verify` work there.

Both are small files we own (rendered from templates/checkout/{tasks,noxfile}.py.tmpl, with the generated-file marker)
that hand over to bezgelor_tasks: the Invoke namespace and the shared verify session. A tasks.py or
noxfile.py the user wrote is never replaced, not even with --force: init leaves it as it is and says
the one line to add (unless the file already uses bezgelor_tasks).
"""

from __future__ import annotations

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.files import FileChange, generated_change, marker_intact, read_text
from bezgelor_tasks.render import render

TASKS_PY = "tasks.py"
NOXFILE_PY = "noxfile.py"

# What a user adds to a tasks.py / noxfile.py of their own (the same hand-over our files make).
ADD_TO_TASKS_PY = "from bezgelor_tasks.tasks import including; ns = including(__name__)"
ADD_TO_NOXFILE_PY = "from bezgelor_tasks.nox_sessions import add_verify_session; add_verify_session(__file__)"


def _entry_point(co: Checkout, rel: str, template: str, why: str, add_line: str, what_for: str) -> FileChange:
    path = co.path(rel)
    old = read_text(path)
    ours = generated_change(path, rel, render(f"checkout/{template}"), why)
    if old is not None and not marker_intact(old) and old != ours.new:
        if "bezgelor_tasks" in old:  # the user's own file already hands over to us
            return FileChange(path, rel, old, old, f"yours, already uses bezgelor_tasks ({what_for})")
        return FileChange(path, rel, old, old, f"yours: left as it is (it needs one line for {what_for})",
                          advice=(f"{rel} is your own, so init did not touch it; for {what_for} to work in this "
                                  f"checkout, add at its end: {add_line}",))
    return ours


def entry_point_changes(co: Checkout) -> list[FileChange]:
    return [
        _entry_point(co, TASKS_PY, "tasks.py.tmpl", "`inv deploy.full`, `inv db.backup`, `inv verify` in this checkout",
                     ADD_TO_TASKS_PY, "`inv deploy.full` and the other tasks"),
        _entry_point(co, NOXFILE_PY, "noxfile.py.tmpl", "`nox -s verify` in this checkout (what CI runs)",
                     ADD_TO_NOXFILE_PY, "`nox -s verify`"),
    ]
