"""`init`: every generator's FileChange in a fixed order, then check / dry-run / apply.

Generators never write; this module decides what happens to their changes. Before anything is
written, the Elixir files the user owns are parsed (a broken mix.exs is named with its line, not
patched), and every .ex/.exs init is about to write is parsed with real Elixir: if one does not parse,
that is our bug, and nothing is written. Writing is all-or-nothing (`files.apply_changes`): every new
text is staged beside its file, then all are renamed into place in one short phase at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bezgelor_tasks import elixir
from bezgelor_tasks.areas import dockerfile, registry
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.errors import Interrupted, UserError
from bezgelor_tasks.files import FileChange, apply_changes
from bezgelor_tasks.run import Executor
from bezgelor_tasks.ui import UI


def init_changes(co: Checkout) -> list[FileChange]:
    """Every FileChange init would make, in the areas' order (unchanged files included)."""
    changes: list[FileChange] = []
    for area in registry():
        if area.changes is not None:
            result = area.changes(co)
            changes.extend(result if isinstance(result, list) else [result])
    return changes


def action(ch: FileChange) -> str:
    """What init does to this file: create, patch, replace (needs --yes or a yes on the terminal) or nothing."""
    if not ch.changed:
        return "unchanged"
    if ch.old is None:
        return "create"
    return "replace" if ch.needs_force else "patch"


_PAST = {"create": "created", "patch": "patched", "replace": "replaced", "unchanged": "unchanged"}

Ask = Callable[[str], bool]


def ask_on_terminal(question: str) -> bool:
    """A y/N question on the terminal (only called when stdin is one)."""
    from bezgelor_tasks.ui import confirm

    return confirm(question, no_terminal=UserError("There is no terminal to ask on.", fix="pass --yes."))


@dataclass
class InitResult:
    mode: str                                 # check | dry-run | apply
    changes: list[FileChange]
    written: list[FileChange] = field(default_factory=list)
    declined: list[FileChange] = field(default_factory=list)   # replacements the user said no to
    syntax_checked: bool = False
    skipped: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[FileChange]:
        return [c for c in self.changes if c.changed]

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "changed": len(self.pending),
            "syntax_checked": self.syntax_checked,
            "skipped": self.skipped,
            "files": [{"file": c.rel, "action": action(c), "why": c.why, "notes": list(c.notes),
                       "advice": list(c.advice), "written": c in self.written, "declined": c in self.declined}
                      for c in self.changes],
        }


def check_user_files_parse(co: Checkout) -> None:
    """Refuse to patch files that do not parse: each named with its line (never guessed at)."""
    from bezgelor_tasks.areas import framework

    framework.refuse_broken(co, registry())


def check_toolchain_meets_checkout(co: Checkout) -> None:
    """The build image's Elixir must meet every mix.exs `elixir:` requirement, or the image cannot build:
    refuse before writing a Dockerfile that verify would then reject."""
    unmet = dockerfile.unmet_requirements(co, co.settings.elixir_version)
    if unmet:
        what = ", ".join(f"{rel} requires {req}" for rel, req in unmet.items())
        raise UserError(f"BEZGELOR_ELIXIR_VERSION={co.settings.elixir_version} is too old for this checkout ({what}), "
                        "so the image it would build stops at `mix deps.get`; nothing was changed.",
                        fix="set BEZGELOR_ELIXIR_VERSION and BEZGELOR_OTP_VERSION in .env to a hexpm/elixir image "
                        "that meets it (for example 1.19.5 and 28.5), then run `inv init` again.")


def check_new_content_parses(changes: Iterable[FileChange]) -> None:
    """Parse what init is about to write (the judge reads the text itself) before anything is written."""
    todo = [c for c in changes if c.changed and c.rel.endswith((".ex", ".exs"))]
    problems = [p for c in todo if (p := elixir.parse_text(c.rel, c.new)) is not None]
    if problems:
        where = "; ".join(f"{p.file}:{p.line}: {p.message}" for p in problems)
        raise UserError(f"init generated Elixir that does not parse ({where}). This is a bug in bezgelor-tasks; "
                        "nothing was written and your files are as they were.",
                        fix="report it with the output of `inv init --dry-run`; meanwhile apply the plan by hand.")


def run_init(co: Checkout, ui: UI, executor: Executor, *, check: bool = False, yes: bool = False,
             skip_syntax_check: bool = False, ask: Ask | None = None) -> InitResult:
    """Compute init's changes and check, show or apply them; returns what happened. Under the executor's
    dry run, or with `check`, nothing is written.

    A file we would replace whole that we did not write (a Dockerfile of the user's or of `fly launch`)
    is shown as a diff, then: `yes` replaces it keeping `.orig`; on a terminal (`ask`, default: stdin
    when it is one) the user answers per file; otherwise init refuses, naming --yes, and writes nothing.
    Everything before the write phase (`files.apply_changes`) only reads: Ctrl-C there changes nothing."""
    mode = "check" if check else "dry-run" if executor.dry_run else "apply"
    have_elixir = elixir.available()
    skipped: list[str] = []
    if have_elixir:
        check_user_files_parse(co)
        check_toolchain_meets_checkout(co)
    elif mode == "apply" and not skip_syntax_check:
        raise UserError("Elixir is not installed, so init cannot check that the mix.exs, config and .ex files "
                        "it writes parse; it refuses to write files it cannot check. Nothing was changed.",
                        fix="install Elixir (Debian: apt-get install elixir) and run again; or, at your own "
                        "risk, pass --skip-syntax-check (then run `inv verify` once Elixir is available).")
    else:
        skipped.append("Elixir is not installed: the .ex/.exs files were NOT checked with Code.string_to_quoted")
        skipped.append("the release's overlays (bin/migrate, bin/server, the release module, Erlang heart) were NOT "
                       "written: where they go is mix.exs's to say, and Elixir reads it (run `inv init` again "
                       "once Elixir is installed)")
    changes = init_changes(co)
    result = InitResult(mode, changes, skipped=skipped)
    if have_elixir:
        check_new_content_parses(changes)
        result.syntax_checked = True
    if mode != "apply":
        return result
    replaced = [c for c in result.pending if c.needs_force]
    if not yes and ask is None and sys.stdin is not None and sys.stdin.isatty():
        ask = ask_on_terminal
    for c in replaced:
        ui.heading(f"{c.rel}: not written by bezgelor-tasks (by hand or by `fly launch`); init "
                   + ("replaces it, keeping yours as " + c.rel + ".orig:" if yes else "would replace it:"))
        ui.diff(c.diff())
        if not yes and ask is not None and not ask(f"Replace {c.rel}? (yours is kept as {c.rel}.orig)"):
            result.declined.append(c)
    if replaced and not yes and ask is None:
        names = ", ".join(c.rel for c in replaced)
        raise UserError(
            f"{names} already exist{'s' if len(replaced) == 1 else ''} with content this tool did not "
            "write, and init would replace " + ("it" if len(replaced) == 1 else "them") + " (the diff is "
            "shown above); there is no terminal to ask on, so nothing was changed.",
            fix="run again with --yes to replace " + ("it" if len(replaced) == 1 else "them") + " (a .orig "
            "copy of each is kept), or merge the changes by hand.")
    for c in result.pending:
        if c.show_diff and not c.needs_force:
            ui.heading(f"{c.rel}: {'; '.join(c.notes) or c.why}:")
            ui.diff(c.diff())
    to_write = [c for c in changes if c not in result.declined]
    result.written = apply_changes(to_write, executor=executor, force=True)
    return result


@contextmanager
def interrupted_before_writing() -> Iterator[None]:
    """Ctrl-C anywhere before init's write phase (`files.apply_changes` says what it wrote if it lands later)
    is reported as what it is: nothing was changed."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted("init stopped before its write phase: nothing was changed.") from None


def report(result: InitResult, ui: UI) -> None:
    """Human output: diffs for --check/--dry-run, then one line per file, then the verdict."""
    for note in result.skipped:
        ui.warn(f"SKIPPED: {note}")
    if result.mode != "apply":
        for c in result.pending:
            ui.diff(c.diff())
    for c in result.changes:
        act = action(c)
        if c in result.declined:
            ui.warn(f"{'kept yours':<14} {c.rel} — you declined the replacement; `inv verify` checks it as it is")
            continue
        if result.mode == "apply":
            shown = _PAST[act] if c in result.written or act == "unchanged" else act
        else:
            shown = f"would {act}" if act != "unchanged" else "unchanged"
        extra = f" ({'; '.join(c.notes)})" if c.notes and act != "unchanged" else ""
        line = f"{shown:<14} {c.rel} — {c.why}{extra}"
        if act == "unchanged":
            ui.line(f"   {line}")
        elif act == "replace":
            ui.warn(line)
        else:
            ui.ok(line)
        for text in c.advice:
            ui.warn(text)
    n = len(result.pending) - len(result.declined)
    if n == 0 and result.declined:
        ui.ok("nothing else to change.")
    elif n == 0:
        ui.ok("nothing to change: the checkout already matches the plan.")
    elif result.mode == "check":
        ui.error(f"{n} file(s) would change (see the diffs above); run `inv init` to apply.")
    elif result.mode == "dry-run":
        ui.info(f"{n} file(s) would change; nothing was written (dry run).")
    else:
        ui.ok(f"{n} file(s) written. Next: `inv verify`, then `inv deploy.full`.")
        if result.syntax_checked:
            ui.ok("every .ex/.exs written parses with Elixir.")
