"""Every `inv TASK` a user is told to run exists, and `inv --list` stays cheap.

A user copies commands from our messages, generated files and the README. Each `inv <task>` (and
`bezgelor-tasks <task>`) written anywhere in bezgelor_tasks/ (templates, Python strings) or README.md
must be a task of the real Invoke namespace; `inv <collection>.*` must be a collection.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bezgelor_tasks.tasks import namespace

PROJECT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".ex", ".exs", ".eex", ".heex", ".sh", ".md", ".yml", ".yaml", ".toml", ".txt", ".tmpl", ""}

# `inv [--flag [value]]... task`; `task.*` names a collection. `bezgelor-tasks` is also the tool's name in
# prose ("bezgelor-tasks stopped ..."), so after it only dotted names (`bezgelor-tasks deploy.full`) count.
MENTION = re.compile(r"(?<![\w-])inv\s+((?:-[-\w]+(?:[ =][^\s`'\"]+)?\s+)*)"
                     r"(?P<task>[a-z][\w-]*(?:\.[a-z][\w-]*)?)(?P<star>\.\*)?"
                     r"|(?<![\w-])bezgelor-tasks\s+(?P<dotted>[a-z][\w-]*\.[a-z][\w-]*)")


def task_names() -> set[str]:
    names = set(namespace.task_names)
    for aliases in namespace.task_names.values():
        names |= set(aliases)
    return names


def mentions() -> dict[str, set[str]]:
    """Task name (or `collection.*`) → the files that mention it."""
    files = [p for p in (PROJECT / "bezgelor_tasks").rglob("*")
             if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts]
    found: dict[str, set[str]] = {}
    for path in [*files, PROJECT / "README.md"]:
        text = path.read_text(errors="replace")
        for m in MENTION.finditer(text):
            name = m["dotted"] or m["task"] + (".*" if m["star"] else "")
            found.setdefault(name, set()).add(str(path.relative_to(PROJECT)))
    return found


def test_every_inv_task_we_name_exists():
    tasks = task_names()
    collections = set(namespace.collections)
    found = mentions()
    assert {"init", "verify", "deploy.full", "db.backup"} <= set(found)  # the collector sees real mentions
    missing = {}
    for name, where in found.items():
        ok = name[:-2] in collections if name.endswith(".*") else name in tasks
        if not ok:
            missing[name] = sorted(where)
    assert not missing, f"named but not tasks of `inv --list`: {missing}"


def test_listing_the_tasks_imports_none_of_the_library():
    # `inv --list` / `bezgelor-tasks --list` must not pay for flyctl clients, generators, checks, tomlkit, sh:
    # task modules import those inside the task bodies.
    code = ("import sys, bezgelor_tasks.cli; "
            "print('\\n'.join(sorted(m for m in sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True,
                                check=True).stdout.split())
    ours = {m for m in loaded if m.startswith("bezgelor_tasks")}
    allowed = {"bezgelor_tasks", "bezgelor_tasks.cli", "bezgelor_tasks.errors", "bezgelor_tasks.tasks",
               "bezgelor_tasks.early_start"}   # no imports of its own unless verify runs
    heavy = sorted(m for m in ours if m not in allowed and not m.startswith("bezgelor_tasks.tasks."))
    assert heavy == [], f"imported at --list time: {heavy}"
    assert not loaded & {"sh", "tomlkit", "dotenv", "colorama"}
