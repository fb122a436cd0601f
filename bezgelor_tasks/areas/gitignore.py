"""The checkout's .gitignore must ignore `.bezgelor/`: journal, lock, database password, local dumps."""

from __future__ import annotations

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, warning
from bezgelor_tasks.files import FileChange, read_text

GITIGNORE = ".gitignore"
STATE_ENTRY = ".bezgelor/"
_ALREADY = {".bezgelor", ".bezgelor/", "/.bezgelor", "/.bezgelor/", ".bezgelor/*", "/.bezgelor/*", ".bezgelor/**"}


def ignores_state_dir(text: str) -> bool:
    """True when a line ignores .bezgelor/ and no later `!` line re-includes it."""
    ignored = False
    for raw in text.splitlines():
        line = raw.strip()
        if line in _ALREADY:
            ignored = True
        elif line.startswith("!") and line[1:].strip() in _ALREADY:
            ignored = False
    return ignored


def gitignore_change(co: Checkout) -> FileChange:
    path = co.path(GITIGNORE)
    old = read_text(path)
    text = old or ""
    if ignores_state_dir(text):
        return FileChange(path, GITIGNORE, old, text, "already ignores .bezgelor/", mode="patch")
    sep = "" if not text or text.endswith("\n") else "\n"
    gap = "\n" if text.strip() else ""
    new = (f"{text}{sep}{gap}# bezgelor-tasks state: deploy journal, lock, database password, local backups\n"
           f"{STATE_ENTRY}\n")
    return FileChange(path, GITIGNORE, old, new, "keep .bezgelor/ (journal, lock, backups) out of git", mode="patch")


def check(ctx: CheckContext) -> list[Finding]:
    if ignores_state_dir(ctx.text(GITIGNORE) or ""):
        return []
    return [warning(GITIGNORE, None, f"does not ignore {STATE_ENTRY}: the database password, the deploy journal and "
                    "local dumps of player accounts could be committed", f"add `{STATE_ENTRY}` to .gitignore (run "
                    "`inv init`)", "gitignore.state-dir")]
