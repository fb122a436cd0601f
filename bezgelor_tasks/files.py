"""Files the tool writes into a checkout: planned as data, shown as diffs, written atomically.

A generator returns a `FileChange` (path, old text, new text, whether the new text *patches* the
user's file or *replaces* it). `apply_changes` is the only writer: it refuses to replace a file
whose content the user wrote unless `force` (init's --yes), in which case a `.orig` copy is kept.
"""

from __future__ import annotations

import difflib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bezgelor_tasks.errors import UserError


@dataclass(frozen=True)
class FileChange:
    path: Path              # absolute
    rel: str                # relative to the checkout, for messages
    old: str | None         # None: the file does not exist yet
    new: str
    why: str                # one line: what this change does
    executable: bool = False
    # "patch": new = old + our edits (user content kept). "replace": new is ours entirely, and old
    # was not written by us (or by an earlier version of us) - needs --force.
    mode: str = "patch"
    notes: tuple[str, ...] = ()
    # What the user should do by hand (init reports it even when the file does not change).
    advice: tuple[str, ...] = ()
    # Show the diff even when applying: the patch rewrites something of the user's (and notes say why).
    show_diff: bool = False

    @property
    def changed(self) -> bool:
        if self.old != self.new:
            return True
        return self.executable and not is_executable(self.path)

    @property
    def needs_force(self) -> bool:
        return self.mode == "replace" and self.old is not None and self.old != self.new

    def diff(self) -> str:
        old_lines = (self.old or "").splitlines(keepends=True)
        new_lines = self.new.splitlines(keepends=True)
        text = "".join(difflib.unified_diff(old_lines, new_lines, f"a/{self.rel}" if self.old is not None
                                            else "/dev/null", f"b/{self.rel}"))
        if not text and self.executable and not is_executable(self.path):
            text = f"chmod +x {self.rel}\n"
        return text


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text, so it cannot be patched safely.",
                        fix="convert it to UTF-8 or move it aside, then run again.") from None


def is_executable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & stat.S_IXUSR)
    except FileNotFoundError:
        return False


def atomic_write(path: Path, text: str, *, executable: bool = False, mode: int | None = None) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = 0o644
    if executable:
        mode |= 0o111
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def check_writable(changes: list[FileChange]) -> None:
    """Fail before writing anything if any target cannot be written (all or nothing)."""
    for ch in changes:
        target = ch.path if ch.path.exists() else ch.path.parent
        while not target.exists():
            target = target.parent
        if not os.access(target, os.W_OK) or (ch.path.exists() and not os.access(ch.path, os.W_OK)):
            raise UserError(f"{ch.rel} cannot be written (permission denied); nothing was changed.",
                            fix=f"make it writable (chmod u+w {ch.rel}) or run as its owner, then run again.")


def apply_changes(changes: list[FileChange], *, force: bool = False) -> list[FileChange]:
    """Write every changed file; returns those written. Refuses (writing nothing) on unforced replaces."""
    pending = [c for c in changes if c.changed]
    blocked = [c for c in pending if c.needs_force and not force]
    if blocked:
        names = ", ".join(c.rel for c in blocked)
        raise UserError(
            f"{names} already exist with content this tool did not write, and init would replace it "
            "(the diff is shown above); nothing was changed.",
            fix="merge the changes by hand, or run again with --yes to replace it (a .orig copy is kept; "
            "--force is the old name of --yes).")
    check_writable(pending)
    for ch in pending:
        if ch.needs_force and ch.old is not None:
            atomic_write(ch.path.with_name(ch.path.name + ".orig"), ch.old)
        atomic_write(ch.path, ch.new, executable=ch.executable)
    return pending


# Files we generate whole carry a marker with the sha256 of what we wrote. On the next run, a file
# whose body still matches its marker was not edited by anyone, so regenerating it is safe; one that
# does not match (or has no marker) is the user's, and replacing it needs --force.
MARKER = "bezgelor-tasks:generated"


def _body_digest(body: str) -> str:
    import hashlib

    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def with_marker(body: str, comment: str = "#") -> str:
    """Prefix generated text with `<comment> bezgelor-tasks:generated sha=<digest> ...` (first line)."""
    return f"{comment} {MARKER} sha={_body_digest(body)} (edit freely: init will then ask before replacing)\n{body}"


def marker_intact(text: str | None) -> bool:
    """True when `text` is a generated file nobody edited since."""
    if not text:
        return False
    first, _, body = text.partition("\n")
    if MARKER not in first:
        return False
    import re

    m = re.search(r"sha=([0-9a-f]+)", first)
    return m is not None and m.group(1) == _body_digest(body)


def generated_change(path: Path, rel: str, body: str, why: str, *, comment: str = "#",
                     executable: bool = False) -> FileChange:
    """A FileChange for a file we own whole: free to regenerate while unedited, --force otherwise."""
    new = with_marker(body, comment)
    old = read_text(path)
    if old is not None and not marker_intact(old) and old != new:
        return FileChange(path, rel, old, new, why, executable=executable, mode="replace",
                          notes=("this file was written or edited by hand",))
    return FileChange(path, rel, old, new, why, executable=executable, mode="patch")
