"""Files the tool writes into a checkout: planned as data, shown as diffs, written atomically.

A generator returns a `FileChange` (path, old text, new text, whether the new text *patches* the
user's file or *replaces* it). `apply_changes` writes them all or none: it refuses to replace a file
whose content the user wrote unless `force` (init's --yes), in which case a `.orig` copy is kept.

Every change the tool makes to files passes the executor (`write`, `append`, `remove`... below, and
`apply_changes`), so under --dry-run it is shown ("would write fly.toml") and nothing is changed.
"""

from __future__ import annotations

import difflib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bezgelor_tasks.errors import UserError

if TYPE_CHECKING:
    from bezgelor_tasks.run import Executor


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
    """Write to a temporary file beside `path`, fsync, then rename: readers see old or new, never half.

    The raw writer: code that changes the user's world calls `write` (below), which passes the executor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _stage(path, text, executable=executable, mode=mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _stage(path: Path, text: str, *, executable: bool = False, mode: int | None = None) -> Path:
    """`text` in a fsynced temporary file beside `path` (same folder: the rename into place is atomic)."""
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
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


# --- every change to files passes the executor: a dry run shows it and changes nothing -------------------

def _through(executor: Executor, shown: str, do: Callable[[], object]) -> bool:
    """True when done; False when the dry run refused it (shown instead)."""
    return executor.change(shown, lambda: (do(), True)[1]) is not None


def write(executor: Executor, path: Path, text: str, *, executable: bool = False, mode: int | None = None) -> bool:
    """Atomically replace `path` with `text` (see `atomic_write`)."""
    return _through(executor, f"write {path}",
                    lambda: atomic_write(path, text, executable=executable, mode=mode))


def append(executor: Executor, path: Path, line: str, *, mode: int = 0o600) -> bool:
    """Append one line to `path` (created with `mode`): a journal's record."""
    def go() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")
    return _through(executor, f"append a line to {path}", go)


def create_new(executor: Executor, path: Path, text: str, *, mode: int = 0o644) -> bool:
    """Create `path` with `text`, only if it does not exist (FileExistsError otherwise): a lock file."""
    def go() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    return _through(executor, f"create {path}", go)


def make_dir(executor: Executor, path: Path, *, mode: int | None = None) -> bool:
    def go() -> None:
        path.mkdir(parents=True, exist_ok=True)
        if mode is not None:
            os.chmod(path, mode)
    return _through(executor, f"create the folder {path}", go)


def remove(executor: Executor, path: Path) -> bool:
    """Delete a file or a whole folder (a missing one is fine)."""
    def go() -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return _through(executor, f"delete {path}", go)


def rename(executor: Executor, src: Path, dst: Path) -> bool:
    return _through(executor, f"rename {src} to {dst}", lambda: os.rename(src, dst))


def copy_tree(executor: Executor, src: Path, dst: Path) -> bool:
    return _through(executor, f"copy {src} to {dst}", lambda: shutil.copytree(src, dst, dirs_exist_ok=True))


# --- why a path cannot be written, said plainly ----------------------------------------------------------

def read_only_fs(path: Path) -> bool:
    """Whether the file system holding `path` (or its nearest existing parent) is mounted read-only."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        return bool(os.statvfs(target).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def not_a_folder(path: Path) -> Path | None:
    """The first component of `path` that exists but is a file (so nothing can be created under it)."""
    for parent in [*reversed(path.parents), path]:
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def unwritable(path: Path, rel: str, *, what: str = "", nothing: str = "nothing was changed") -> UserError | None:
    """The error for a path this user cannot write, naming the real cause: a read-only file system, a file
    where a folder must be, or permissions. None when it can be written."""
    what = what or rel
    blocker = not_a_folder(path.parent)
    if blocker is not None:
        return UserError(f"{what} cannot be written: {blocker} is a file, not a folder; {nothing}.",
                         fix=f"move that file aside (`mv {blocker} {blocker}.file`) or remove it, then run again.")
    if read_only_fs(path):
        return UserError(f"{what} cannot be written: the file system holding {path.parent} is read-only; "
                         f"{nothing}.", fix="run it on a writable copy of the checkout (`git clone`), or remount "
                         "that file system read-write, then run again.")
    target = path if path.exists() else path.parent
    while not target.exists():
        target = target.parent
    if not os.access(target, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return UserError(f"{what} cannot be written (permission denied for this user); {nothing}.",
                         fix=f"make it writable (chmod u+w {rel}) or run as its owner, then run again.")
    return None


def check_writable(changes: list[FileChange]) -> None:
    """Fail before writing anything if any target cannot be written (all or nothing)."""
    for ch in changes:
        problem = unwritable(ch.path, ch.rel)
        if problem is not None:
            raise problem


# --- init's write: staged, then renamed into place in one short phase ------------------------------------

@dataclass
class _Staged:
    change: FileChange
    tmp: Path
    orig_tmp: Path | None = None


def apply_changes(changes: list[FileChange], *, executor: Executor, force: bool = False) -> list[FileChange]:
    """Write every changed file, all or nothing; returns those written. Refuses (writing nothing) on unforced
    replaces. Every new text is first written to a temporary file beside its target; then, in one phase of
    renames during which Ctrl-C waits, they take their places. An interruption or error before that phase
    changes nothing; an error inside it puts back what was already renamed."""
    pending = [c for c in changes if c.changed]
    blocked = [c for c in pending if c.needs_force and not force]
    if blocked:
        names = ", ".join(c.rel for c in blocked)
        raise UserError(
            f"{names} already exist with content this tool did not write, and init would replace it "
            "(the diff is shown above); nothing was changed.",
            fix="merge the changes by hand, or run again with --yes to replace it (a .orig copy is kept; "
            "--force is the old name of --yes).")
    if not pending:
        return []
    check_writable(pending)
    shown = f"write {len(pending)} file(s): {', '.join(c.rel for c in pending)}"
    return executor.change(shown, lambda: _transaction(pending)) or []


def _transaction(pending: list[FileChange]) -> list[FileChange]:
    from bezgelor_tasks.errors import Interrupted
    from bezgelor_tasks.processes import signals_deferred

    staged: list[_Staged] = []
    made_dirs: list[Path] = []
    try:
        for ch in pending:  # phase 1: nothing the user sees changes
            for parent in reversed(ch.path.parents):
                if not parent.exists():
                    parent.mkdir()
                    made_dirs.append(parent)
            orig = _stage(ch.path.with_name(ch.path.name + ".orig"), ch.old) \
                if ch.needs_force and ch.old is not None else None
            staged.append(_Staged(ch, _stage(ch.path, ch.new, executable=ch.executable), orig))
    except KeyboardInterrupt:
        _discard(staged, made_dirs)
        raise Interrupted("before the write phase: nothing was changed.") from None
    except OSError as e:
        _discard(staged, made_dirs)
        raise _write_failed(e, pending[len(staged)] if len(staged) < len(pending) else pending[-1]) from None
    except BaseException:
        _discard(staged, made_dirs)
        raise
    written: list[_Staged] = []
    with signals_deferred() as caught:  # phase 2: renames only, milliseconds
        try:
            for st in staged:
                if st.orig_tmp is not None:
                    os.replace(st.orig_tmp, st.change.path.with_name(st.change.path.name + ".orig"))
                os.replace(st.tmp, st.change.path)
                written.append(st)
        except OSError as e:
            _put_back(written)
            _discard([s for s in staged if s not in written], made_dirs)
            raise UserError(f"writing {staged[len(written)].change.rel} failed ({e.strerror or e}); the files "
                            "already written were put back, nothing was changed.",
                            fix="fix the cause (disk full? permissions?) and run again.") from None
    if caught:
        raise Interrupted(f"after the write phase: all {len(written)} file(s) were written "
                          f"({', '.join(s.change.rel for s in written)}).")
    return [s.change for s in written]


def _discard(staged: list[_Staged], made_dirs: list[Path]) -> None:
    for st in staged:
        st.tmp.unlink(missing_ok=True)
        if st.orig_tmp is not None:
            st.orig_tmp.unlink(missing_ok=True)
    for d in reversed(made_dirs):
        try:
            d.rmdir()
        except OSError:
            pass


def _put_back(written: list[_Staged]) -> None:
    """Undo renames already done: the previous content back (or no file, when there was none)."""
    for st in reversed(written):
        ch = st.change
        if ch.old is None:
            ch.path.unlink(missing_ok=True)
        else:
            atomic_write(ch.path, ch.old)


def _write_failed(e: OSError, ch: FileChange) -> UserError:
    if e.errno == errno.EROFS or read_only_fs(ch.path):
        return unwritable(ch.path, ch.rel) or UserError(f"{ch.rel} cannot be written: read-only file system.")
    if e.errno == errno.ENOSPC:
        return UserError(f"writing {ch.rel} failed: the disk is full; nothing was changed.",
                         fix="free some space and run again.")
    return UserError(f"writing {ch.rel} failed ({e.strerror or e}); nothing was changed.",
                     fix="fix the cause (permissions? disk?) and run again.")


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
