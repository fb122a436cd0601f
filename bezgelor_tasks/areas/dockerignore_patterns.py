"""Docker's own matching rules for .dockerignore, to check it against what the Dockerfile copies.

`dockerignore_patterns` + `is_ignored` follow moby's patternmatcher (what `docker build` and Fly's
builders use): patterns are relative to the context root (a leading `/` is dropped), `*` and `?` stay
within one path segment, `**` spans any number of segments, `!` re-includes, the last match wins, and
a pattern that matches a folder ignores everything under it. Unlike .gitignore, `*.beam` matches only
at the root: write `**/*.beam` to match anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    text: str          # as cleaned (no `!`, no leading `/`)
    exclusion: bool    # a `!` pattern re-includes
    line: int
    regex: re.Pattern[str]
    # The same pattern followed by `(/.*)?`: matches a path when it matches the path or a parent folder
    # (the pattern's segments never cross a `/`, so "a prefix at a `/`" is exactly "a parent folder").
    within: re.Pattern[str]

    def matches(self, path: str) -> bool:
        """Does this pattern match `path` or one of its parent folders?"""
        return self.within.match(path) is not None


def _compile(pattern: str, suffix: str = "$") -> re.Pattern[str]:
    """moby/patternmatcher's translation of one pattern into a regular expression."""
    out = "^"
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                out += ".*" if i + 1 >= n else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < n:
            i += 1
            out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape(ch)
            else:
                body = pattern[i + 1:end]
                out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + suffix)


def dockerignore_patterns(text: str) -> list[Pattern]:
    patterns: list[Pattern] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        cleaned = os.path.normpath(line).replace(os.sep, "/") if line else line
        if len(cleaned) > 1 and cleaned.startswith("/"):
            cleaned = cleaned.lstrip("/")
        if not cleaned or cleaned == ".":
            continue
        patterns.append(Pattern(cleaned, exclusion, n, _compile(cleaned), _compile(cleaned, "(/.*)?$")))
    return patterns


def is_ignored(patterns: Iterable[Pattern], path: str) -> bool:
    """True when Docker leaves `path` (relative to the context root, `/`-separated) out of the context."""
    path = os.path.normpath(path).replace(os.sep, "/").lstrip("/")
    ignored = False
    for p in patterns:
        if p.matches(path):
            ignored = not p.exclusion
    return ignored


def ignoring_pattern(patterns: Iterable[Pattern], path: str) -> Pattern | None:
    """The pattern that decides `path` is ignored (the last one matching), or None if it is kept."""
    path = os.path.normpath(path).replace(os.sep, "/").lstrip("/")
    decided: Pattern | None = None
    for p in patterns:
        if p.matches(path):
            decided = None if p.exclusion else p
    return decided


@dataclass(frozen=True)
class ShadowedCopy:
    """A file under a COPY source that the .dockerignore silently leaves out of the image."""
    copy_line: int          # line of the COPY in the Dockerfile
    source: str             # the COPY source, as written
    path: str               # the ignored file or folder, relative to the context root
    pattern: str            # the .dockerignore pattern responsible
    pattern_line: int


def shadowed_copies(root: Path, copy_sources: Iterable[tuple[int, str]], patterns: list[Pattern],
                    limit_per_source: int = 5) -> list[ShadowedCopy]:
    """Context files a COPY means to include but .dockerignore excludes (at most `limit_per_source` each).

    `copy_sources` is (Dockerfile line, source path) as from `DockerfileFacts.local_copy_sources()`.
    A source that is itself ignored is reported once; otherwise the folder is walked and ignored
    sub-folders are reported without descending into them.
    """
    found: list[ShadowedCopy] = []
    for line, source in copy_sources:
        rel = os.path.normpath(source).replace(os.sep, "/").lstrip("/")
        if rel in (".", "./") or any(c in rel for c in "*?["):
            continue
        top = ignoring_pattern(patterns, rel)
        if top is not None:
            found.append(ShadowedCopy(line, source, rel, top.text, top.line))
            continue
        base = root / rel
        if not base.is_dir():
            continue
        count = 0
        for dirpath, dirnames, filenames in os.walk(base):
            here = Path(dirpath).relative_to(root).as_posix()
            for name in sorted(dirnames) + sorted(filenames):
                child = f"{here}/{name}"
                p = ignoring_pattern(patterns, child)
                if p is not None and count < limit_per_source:
                    found.append(ShadowedCopy(line, source, child, p.text, p.line))
                    count += 1
            dirnames[:] = [d for d in dirnames if ignoring_pattern(patterns, f"{here}/{d}") is None]
            if count >= limit_per_source:
                break
    return found
