"""Every `inv TASK` a user is told to run exists and parses, and `inv --list` stays cheap.

A user copies commands from our messages, generated files and the README. Each `inv <task>` (and
`bezgelor-tasks <task>`) written anywhere in bezgelor_tasks/ (templates, Python strings) or README.md
must be a task of the real Invoke namespace; `inv <collection>.*` must be a collection; and every whole
command shown (in backticks, or a line of a code block) must parse as Invoke parses it: `inv db.restore NAME`
did not (the backup is `-b NAME`), and nothing caught it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from invoke import Program
from invoke.parser import ParseError, Parser, ParserContext

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


# A whole command: a backtick span starting with `inv `, or a line that is one (`$ inv ...` in the README's
# examples). Spans with placeholders that are not values (`[-b NAME]`, `quick|full`, `<id>`, `…`, a template's
# `@{ }`, `TASK`, `collection.*`) are notation, not commands, and are left out.
COMMAND = re.compile(r"`(inv\s[^`]+)`|^\s*(?:\$\s+)?(inv\s[^\n#`]+)", re.M)
NOTATION = re.compile(r"[\[\]|<>{}…*]|\.\.\.|\$\(|%s|\bTASK\b")


def shown_commands() -> list[tuple[str, str]]:
    """(file, command) for every whole `inv` command we show."""
    files = [p for p in (PROJECT / "bezgelor_tasks").rglob("*")
             if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts]
    out = []
    for path in [*files, PROJECT / "README.md", PROJECT / ".env.example"]:
        for m in COMMAND.finditer(path.read_text(errors="replace")):
            for part in re.split(r"\s*(?:&&|;|\|\|)\s*", (m[1] or m[2]).strip()):
                command = part.split(" #")[0].strip().rstrip(".,:)")
                if command.startswith("inv ") and not NOTATION.search(command) and _words(command):
                    out.append((str(path.relative_to(PROJECT)), command))
    return out


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:   # a quote closed outside the span (a Python string cut there): not a whole command
        return []


def invoke_refuses(command: str) -> str | None:
    """What Invoke says about the command line, parsed as `inv` parses it (core flags first, then tasks);
    None when it parses. A bare task name without its positional argument is a mention, not a command."""
    initial = ParserContext(args=Program().core_args())
    try:
        core = Parser(initial=initial, ignore_unknown=True).parse_argv(shlex.split(command)[1:])
        Parser(initial=initial, contexts=namespace.to_contexts()).parse_argv(core.unparsed)
    except ParseError as e:
        return None if "did not receive required positional arguments" in str(e) else str(e)
    return None


def test_every_inv_command_we_show_parses_as_invoke_parses_it():
    commands = shown_commands()
    assert len(commands) > 300 and ("README.md", "inv deploy.full --dry-run") in commands
    refused = {f"{where}: {command}": said for where, command in commands if (said := invoke_refuses(command))}
    assert not refused, refused
    assert invoke_refuses("inv db.restore NAME --target app") == "No idea what 'NAME' is!"
