"""flyctl's grammar (the one copy, in bezgelor_tasks: fly/grammar.py and data/flyctl_grammar.json): validate
argv, then read flag values. Loaded by path: the fake runs without site-packages."""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
from typing import Any

_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                        "bezgelor_tasks")
_spec = importlib.util.spec_from_file_location("flyctl_grammar", os.path.join(_PACKAGE, "fly", "grammar.py"))
assert _spec is not None and _spec.loader is not None
check_fly_argv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_fly_argv)

_grammar: dict[str, Any] | None = None


def grammar() -> dict[str, Any]:
    """grammar.json, through a marshal cache in $TMPDIR (json parsing costs ~15 ms per call)."""
    global _grammar
    if _grammar is None:
        source = check_fly_argv.GRAMMAR_FILE
        st = os.stat(source)
        cache = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"fake-flyctl-grammar-{st.st_mtime_ns}-{st.st_size}")
        try:
            with open(cache, "rb") as fh:
                _grammar = marshal.load(fh)
        except (OSError, EOFError, ValueError, TypeError):
            with open(source, encoding="utf-8") as fh:
                _grammar = json.load(fh)
            try:
                tmp = f"{cache}.{os.getpid()}"
                with open(tmp, "wb") as fh:
                    marshal.dump(_grammar, fh)
                os.replace(tmp, cache)
            except OSError:
                pass
    return _grammar


class Parsed:
    def __init__(self, path: str) -> None:
        self.path = path  # canonical command path, aliases resolved ("pg create" -> "postgres create")
        self.flags: dict[str, list[str]] = {}  # canonical long name -> values ("true" for bools)
        self.pos: list[str] = []


def command_path(argv: list[str]) -> str:
    """The canonical command path of argv, even when argv is invalid (for the call log)."""
    try:
        path, _rest, _word = check_fly_argv.find_command(grammar(), argv[1:])
        return path
    except Exception:  # a broken argv still gets logged
        return ""


def parse(argv: list[str]) -> Parsed:
    """Validate argv like flyctl's parser and return its command path, flag values and args.

    Raises ValueError(reason) when flyctl would reject argv."""
    g = grammar()
    ok, message = check_fly_argv.check(g, argv)
    if not ok:
        raise ValueError(message)
    path, rest, _word = check_fly_argv.find_command(g, argv[1:])
    table, shorts = check_fly_argv.flag_tables(g, path)
    parsed = Parsed(path=path)

    def put(name: str, value: str) -> None:
        flag = table[name]
        parsed.flags.setdefault(flag.get("alias_of", name), []).append(value)

    i = 0
    while i < len(rest):
        s, i = rest[i], i + 1
        if s == "--":
            parsed.pos.extend(rest[i:])
            break
        if s.startswith("--"):
            name, eq, val = s[2:].partition("=")
            flag = table[name]
            if eq:
                put(name, val)
            elif check_fly_argv.needs_value(flag):
                put(name, rest[i])
                i += 1
            else:
                put(name, "true")
        elif s.startswith("-") and len(s) > 1:
            for n, c in enumerate(s[1:]):
                name, tail = shorts[c], s[n + 2:]
                flag = table[name]
                if tail.startswith("="):
                    put(name, tail[1:])
                    break
                if tail and check_fly_argv.needs_value(flag):
                    put(name, tail)
                    break
                if check_fly_argv.needs_value(flag):
                    put(name, rest[i])
                    i += 1
                else:
                    put(name, "true")
        else:
            parsed.pos.append(s)
    return parsed


def usage(path: str) -> str:
    """A cobra-like usage block for the command at `path`."""
    g = grammar()
    c = g["commands"].get(path, g["commands"][""])
    where = f"fly {path}".strip()
    use = " ".join([where] + c["use"].split()[1:]) if path else "fly"
    lines = ["Usage:", f"  {use} [flags]" if not c["subcommands"] else f"  {where} [command]", ""]
    if c["subcommands"]:
        lines += ["Available Commands:"] + [f"  {s}" for s in c["subcommands"]] + [""]
    flags = {**c.get("flags", {}), **g["global_flags"]}
    lines.append("Flags:")
    for name, f in sorted(flags.items()):
        if f.get("hidden"):
            continue
        short = f"-{f['short']}, " if f.get("short") else "    "
        lines.append(f"  {short}--{name}" + (f" {f['type']}" if f["takes_value"] else ""))
    return "\n".join(lines) + "\n"
