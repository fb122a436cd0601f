"""flyctl command lines written down in files (shell scripts, CI workflows, Markdown), read and judged.

`fly_lines` finds every flyctl invocation in a text (each simple command of each line: `a && fly x | y`,
`$(fly ...)`, `\\` continuations joined, comments and redirections dropped, `${{ ... }}` of a workflow read
as one word) and `judge` holds each against flyctl's grammar (fly/grammar.py) and our rules: no secret
value on argv, `--ha=false` on every deploy (one machine, one world), no command that prompts when it is
not on a terminal. The generated docs and workflow are checked with the same two functions.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from bezgelor_tasks.fly import grammar

FLYCTL_NAMES = ("fly", "flyctl")
_OPERATORS = {";", "&&", "||", "|", "&", "(", ")", "{", "}", "!", ";;", "|&"}
_PREFIXES = {"then", "do", "else", "elif", "if", "while", "until", "time", "exec", "command", "sudo", "nohup", "env"}
_REDIRECTS = re.compile(r"^\d*(<<-?|<<<|>>|<>|>&|<&|&>>?|>\||[<>])$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
_PROMPT = re.compile(r"^\s*(?:\$|>|#)\s+")
_PLACEHOLDER = re.compile(r"<([A-Za-z][\w-]*)>")      # <ImageRef> in docs: a value, not two redirections


@dataclass(frozen=True)
class FlyLine:
    line: int                 # 1-based, where the command starts
    argv: tuple[str, ...]     # argv[0] is fly or flyctl


@dataclass(frozen=True)
class Problem:
    id: str                   # scripts.<rule>
    what: str
    fix: str


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    start, parts = 0, list[str]()
    for number, raw in enumerate(text.splitlines(), 1):
        if not parts:
            start = number
        if raw.rstrip().endswith("\\"):
            parts.append(raw.rstrip()[:-1])
            continue
        parts.append(raw)
        yield start, " ".join(p.strip() for p in parts)
        parts = []
    if parts:
        yield start, " ".join(p.strip() for p in parts)


def _words(line: str) -> list[str]:
    lexer = shlex.shlex(_PLACEHOLDER.sub(r"\1", line), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:          # an unterminated quote (a heredoc, a multi-line string): words as written
        return line.split()


def _commands(words: list[str]) -> Iterator[list[str]]:
    """Simple commands of a line: split at operators, without redirections, assignments and prefixes."""
    current: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in _OPERATORS:
            yield current
            current = []
        elif _REDIRECTS.match(word):
            if current and current[-1].isdigit():
                current.pop()                       # `2>&1`: the 2 is the descriptor, not an argument
            skip_next = True
        elif not current and (_ASSIGNMENT.match(word) or word in _PREFIXES):
            continue
        else:
            current.append(word)
    yield current


def fly_lines(text: str, kind: str = "shell") -> list[FlyLine]:
    """Every flyctl invocation of `text`. kind: shell | workflow | markdown (only fenced code blocks)."""
    found: list[FlyLine] = []
    fenced = kind != "markdown"
    for number, line in _logical_lines(text):
        if kind == "markdown" and line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced or not re.search(r"\bfly(ctl)?\b", line):
            continue
        if kind == "workflow":
            line = _GITHUB_EXPRESSION.sub("GITHUB_EXPRESSION", re.sub(r"^\s*-?\s*run:\s*[|>]?-?", "", line))
        if kind == "markdown":
            line = _PROMPT.sub("", line)
        for part in [line, *_SUBSTITUTION.findall(line)]:
            for argv in _commands(_words(part)):
                if argv and argv[0].rsplit("/", 1)[-1] in FLYCTL_NAMES:
                    found.append(FlyLine(number, tuple(argv)))
    return found


def _unresolved(argv: tuple[str, ...]) -> bool:
    """A command word or the arguments come from the shell at run time: flyctl's grammar cannot judge it."""
    path, _rest, word = grammar.find_command(grammar.grammar(), list(argv[1:]))
    return (word is not None and "$" in word) or any(a in ('"$@"', "$@", "$*") for a in argv)


def _flag(argv: tuple[str, ...], *names: str) -> bool:
    return any(a == n or a.startswith(n + "=") for a in argv for n in names)


def judge(argv: tuple[str, ...]) -> list[Problem]:
    """What is wrong with one flyctl argv: flyctl would reject it, or it breaks one of our rules."""
    out: list[Problem] = []
    path, _rest, _word = grammar.find_command(grammar.grammar(), list(argv[1:]))
    shown = " ".join(("fly", *argv[1:3]))
    if path == "releases" and "rollback" in argv:
        out.append(Problem("scripts.releases-rollback", "`fly releases rollback` does not exist",
                           "roll back with `fly deploy --image <ImageRef> --ha=false` from `fly releases --image "
                           "--json` (or `inv rollback.app`)"))
    elif path == "logs" and any(a == "-n" or a.startswith("-n") and a[2:].isdigit() for a in argv):
        out.append(Problem("scripts.logs-lines", "`fly logs` has no -n (flyctl refuses it)",
                           "`fly logs --no-tail -a APP` prints the buffered lines and returns (or `inv logs`)"))
    elif not _unresolved(argv):
        ok, why = grammar.accepts(argv)
        if not ok:
            out.append(Problem("scripts.not-flyctl", f"`{shown} ...` is not a command flyctl accepts: {why}",
                               "correct it against `fly help` (flyctl v0.4): the line fails when it runs"))
    if path == "secrets set" and any("=" in a and not a.startswith("-") for a in argv[3:]):
        out.append(Problem("scripts.secret-on-argv", "`fly secrets set NAME=value` puts the secret in argv (the "
                           "process list, shell history and CI logs)", "pipe NAME=VALUE lines to `fly secrets import "
                           "-a APP --stage` (or `inv secrets.set NAME`)"))
    if path == "deploy" and not _flag(argv, "--build-only") and not any(a == "--ha=false" for a in argv):
        out.append(Problem("scripts.deploy-ha", "`fly deploy` without --ha=false: on an app without machines flyctl "
                           "starts two, and behind one IPv4 they are two separate game worlds",
                           "add --ha=false (or deploy with `inv deploy.full`)"))
    if path == "ips allocate":
        out.append(Problem("scripts.ips-allocate", "`fly ips allocate` is interactive (it ignores `v4`) and fails "
                           "when not on a terminal", "use `fly ips allocate-v4 -a APP --yes` (a dedicated IPv4: raw "
                           "TCP game ports need one)"))
    if path == "postgres create" and not _flag(argv, "--org", "-o"):
        out.append(Problem("scripts.postgres-create-org", "`fly postgres create` without --org prompts, and fails "
                           "when not on a terminal", "pass --name --region --org --initial-cluster-size --vm-size "
                           "--volume-size (or use `inv deploy.full`)"))
    return out
