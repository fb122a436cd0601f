"""rel/overlays/bin/{migrate,server}: the scripts the release carries (Fly's release_command, CMD).

The sources are this project's rel/overlays/bin/*; each names the release in one line
`release="bezgelor"` (and migrate the release module in `release_module="..."`), rewritten here from
settings. A shebang must stay the first line, so instead of the generated-file marker these
scripts are recognised as ours by their "Installed by bezgelor-tasks" line.
"""

from __future__ import annotations

import re
from pathlib import Path

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text

SCRIPTS = ("migrate", "server")
OURS = "Installed by bezgelor-tasks"


def source_dir() -> Path:
    """Where the scripts come from: package data when installed, else this repository's rel/."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates" / "overlays" / "bin", here.parent / "rel" / "overlays" / "bin"):
        if (candidate / "migrate").is_file():
            return candidate
    raise UserError("bezgelor-tasks is installed without its rel/overlays/bin scripts.",
                    fix="reinstall it from a full checkout (pip install -e /path/to/bezgelor-tasks).")


def render(script: str, release: str, release_module: str) -> str:
    text = (source_dir() / script).read_text(encoding="utf-8")
    text, n = re.subn(r'^release="[^"]*"$', f'release="{release}"', text, count=1, flags=re.M)
    if n != 1:
        raise UserError(f"rel/overlays/bin/{script} of bezgelor-tasks has no release=\"...\" line.",
                        fix="restore it from git.")
    return re.sub(r'^release_module="[^"]*"$', f'release_module="{release_module}"', text, count=1, flags=re.M)


def overlay_changes(co: Checkout) -> list[FileChange]:
    changes = []
    for script in SCRIPTS:
        rel = f"rel/overlays/bin/{script}"
        path = co.path(rel)
        new = render(script, co.settings.release_name, f"{co.db_module}.Release")
        old = read_text(path)
        ours = old is None or old == new or OURS in old
        why = f"bin/{script} in the release (runs ./{co.settings.release_name})"
        changes.append(FileChange(path, rel, old, new, why,
                                  executable=True, mode="patch" if ours else "replace",
                                  notes=() if ours else ("this file was written by hand",)))
    return changes
