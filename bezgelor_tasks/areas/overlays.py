"""The release's own files: bin/migrate and bin/server, the module bin/migrate calls, and Erlang's heart.

Derived from the checkout as it is (areas/release.py): a release whose overlay folders already give it
bin/migrate and bin/server keeps them — and so keeps what its migrate does (a `BezgelorPortal.Release.migrate`
that also seeds the realm stays the release command); verify checks that the module and function it
evaluates exist. A script the release lacks is ours, written into the first folder Mix copies (never through
an `overlays:` that would hide the user's). Our release module (`<Db>.Release`: migrate, status, rollback_to)
is written beside theirs wherever its file is free: `inv db.status` and `inv db.rollback` call it by name
(`bin/<release> eval`), never bin/migrate, which in a checkout of its own may migrate and seed whatever it is
asked. Our files are owned whole: verify renders them and diffs. Without Elixir, mix.exs's release options are
unknown, so where the scripts go is too: nothing here is written or checked then (verify says so).

heart: a BEAM that stops answering is killed by Erlang's heart (`-heart`, HEART_BEAT_TIMEOUT =
BEZGELOR_HEART_TIMEOUT), the machine's main process exits, and Fly's restart policy starts it again. It is
switched on in `<rel_templates_path>/env.sh.eex` (the user's file is kept: our lines are one marked block)
for `start`/`daemon` only, so `eval` (bin/migrate), `rpc` and `remote` run without it. Heart kills the VM only
when it has a command to run afterwards (without one it says "Would reboot" and leaves the VM hung), so the
command is `true`: the restart is Fly's, not heart's.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from bezgelor_tasks import elixir
from bezgelor_tasks.areas import release as release_mod
from bezgelor_tasks.areas.release import SCRIPTS, Release
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, info, warning
from bezgelor_tasks.elixir_source import modules
from bezgelor_tasks.files import FileChange, generated_change, has_marker, is_executable, read_text
from bezgelor_tasks.release_image import db_release_module, db_release_module_file, db_release_module_text
from bezgelor_tasks.render import render

OURS = "Installed by bezgelor-tasks"
COMMANDS = ("eval", "start", "start_iex", "daemon", "daemon_iex", "rpc", "remote")
ENV_SH = "env.sh.eex"
HEART_BEGIN = "# BEGIN bezgelor-tasks: Erlang heart (inv init rewrites this block; edit outside it)"
HEART_END = "# END bezgelor-tasks: Erlang heart"
_HEART_BLOCK = re.compile(rf"^{re.escape(HEART_BEGIN)}\n.*?^{re.escape(HEART_END)}\n", re.M | re.S)


def module_path(co: Checkout) -> str:
    return db_release_module_file(co.configured.db_otp_app)


def module_name(co: Checkout) -> str:
    return db_release_module(co.configured.db_otp_app)


@dataclass(frozen=True)
class Layout:
    """Where the release's scripts are (or go), and whose they are."""
    release: Release
    found: dict[str, str | None]   # script -> the checkout file that becomes bin/<script>
    ours: dict[str, bool]          # script -> written by bezgelor-tasks (or missing: init writes ours)

    def path(self, script: str) -> str:
        return self.found[script] or f"{self.release.first_overlay}/bin/{script}"


def layout(co: Checkout) -> Layout:
    rel = release_mod.of(co)
    found = {s: release_mod.script(co, rel, s) for s in SCRIPTS}
    ours = {s: found[s] is None or OURS in (read_text(co.path(found[s] or "")) or "") for s in SCRIPTS}
    return Layout(rel, found, ours)


# -- what init writes ------------------------------------------------------------------------------------------

def _script(co: Checkout, script: str, rel: str) -> FileChange:
    new = render(f"overlays/bin/{script}", release=co.settings.release_name, release_module=module_name(co))
    return FileChange(co.path(rel), rel, read_text(co.path(rel)), new,
                      f"bin/{script} in the release (runs ./{co.settings.release_name})", executable=True)


def module_change(co: Checkout) -> FileChange:
    """Our release module: what our bin/migrate calls, and what `inv db.status`/`db.rollback` call."""
    rel = module_path(co)
    body = render("elixir/release.ex", db_module=co.db_module, db_app=co.configured.db_otp_app)
    return generated_change(co.path(rel), rel, body, f"{module_name(co)}: migrate, status and rollback "
                            "inside the release")


def module_is_free(co: Checkout) -> bool:
    """Our release module may be written: its file is absent or ours (a module of the user's there is kept), and
    no other file of the checkout defines a module of that name (two would stop the project compiling)."""
    text = db_release_module_text(co.root, co.configured.db_otp_app)
    if text is not None and not has_marker(text):
        return False
    return not [rel for rel in defining(co, module_name(co)) if rel != module_path(co)]


def defining(co: Checkout, module: str) -> list[str]:
    """The files under apps/*/lib that define `module`, as Elixir reads them (a file is asked about only when
    the module's last name appears in its text: most files never mention it)."""
    last = module.rsplit(".", 1)[-1]
    found = []
    for app in co.apps:
        lib = co.path(f"apps/{app}/lib")
        for path in sorted(lib.rglob("*.ex")) if lib.is_dir() else []:
            if last in (read_text(path) or "") and any(m.name == module for m in modules(path) or []):
                found.append(str(path.relative_to(co.root)))
    return found


def owned(co: Checkout) -> list[FileChange]:
    """Our scripts where the release has none of its own, and our release module when bin/migrate is ours."""
    lay = layout(co)
    if not lay.release.known:
        return []
    out = [_script(co, s, lay.path(s)) for s in SCRIPTS if lay.ours[s]]
    return [module_change(co), *out] if lay.ours["migrate"] else out


def heart_block(co: Checkout) -> str:
    return (f"{HEART_BEGIN}\n"
            "# A BEAM that stops answering for HEART_BEAT_TIMEOUT seconds is killed by Erlang's heart; the machine's\n"
            "# main process then exits and Fly's restart policy starts it again. Heart kills only when it has a\n"
            "# command to run after: `true` (the restart is Fly's). Only for the running system: eval (bin/migrate),\n"
            "# rpc and remote run without it.\n"
            "case $RELEASE_COMMAND in\n"
            "  start*|daemon*)\n"
            '    ELIXIR_ERL_OPTIONS="${ELIXIR_ERL_OPTIONS:-} -heart"\n'
            f'    HEART_BEAT_TIMEOUT="${{HEART_BEAT_TIMEOUT:-{co.settings.heart_timeout_s}}}"\n'
            '    HEART_COMMAND="${HEART_COMMAND:-true}"\n'
            "    export ELIXIR_ERL_OPTIONS HEART_BEAT_TIMEOUT HEART_COMMAND\n"
            "    ;;\n"
            "esac\n"
            f"{HEART_END}\n")


def env_sh_path(co: Checkout) -> str:
    return f"{release_mod.of(co).templates_path}/{ENV_SH}"


def heart_change(co: Checkout) -> FileChange:
    rel = env_sh_path(co)
    old = read_text(co.path(rel))
    block = heart_block(co)
    if old is None:
        new = "#!/bin/sh\n\n" + block
    elif _HEART_BLOCK.search(old):
        new = _HEART_BLOCK.sub(lambda _: block, old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + block
    return FileChange(co.path(rel), rel, old, new, "Erlang heart for the running release (a hung VM is killed, "
                      "Fly restarts the machine)", mode="patch")


def changes(co: Checkout) -> list[FileChange]:
    """init: our scripts and module (the module also beside a bin/migrate of the user's: the db tasks call it),
    and heart. Nothing without Elixir (where the release's overlays are is unknown)."""
    lay = layout(co)
    if not lay.release.known:
        return []
    beside = [module_change(co)] if not lay.ours["migrate"] and module_is_free(co) else []
    return [*beside, *owned(co), heart_change(co)]


def files(co: Checkout) -> list[str]:
    """The Elixir files this area reads: the module the user's bin/migrate calls (ours is owned)."""
    lay = layout(co)
    if lay.ours["migrate"] or not elixir.available():
        return []
    target = eval_target(read_text(co.path(lay.path("migrate"))) or "")
    return [found[0]] if target and (found := find_module(co, target)) else []


# -- reading the scripts -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    line: int
    release: str
    command: str
    argument: str | None


_ASSIGN = re.compile(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"$`]*\"|'[^']*'|[^\s;$`]*)\s*$", re.M)


def release_calls(script: str) -> list[Call]:
    """Every `./<release> <command> [arg]` a shell script runs (simple `name="value"` variables expanded)."""
    values = {m.group(1): m.group(2).strip("\"'") for m in _ASSIGN.finditer(script)}
    for name, value in values.items():
        script = re.sub(rf"\$\{{{name}\}}|\${name}\b", value, script)
    out = []
    for number, line in enumerate(script.splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for i, word in enumerate(words[:-1]):
            m = re.fullmatch(r"(?:.*/)?([a-z_][a-z0-9_]*)", word)
            if m and "/" in word and words[i + 1] in COMMANDS:
                out.append(Call(number, m.group(1), words[i + 1], words[i + 2] if i + 2 < len(words) else None))
    return out


@dataclass(frozen=True)
class Target:
    """What a script's `eval` runs: Module.function, and where Mix conventions put the module's file."""
    module: str
    function: str
    path: str           # Macro.underscore(module): apps/<app>/lib/<path>.ex


def eval_target(script: str) -> Target | None:
    """The module and function the script's `eval` runs, as Elixir reads the expression."""
    for call in release_calls(script) if elixir.available() else ():
        if call.command == "eval" and call.argument:
            a = elixir.judge().ask("remote_call", call.argument)
            if a.get("ok"):
                return Target(str(a["module"]), str(a["function"]), str(a["path"]))
    return None


def find_module(co: Checkout, target: Target) -> tuple[str, list[str]] | None:
    """(file, public function names) of the target's module, at apps/*/lib/<underscored name>.ex."""
    for app in co.apps:
        rel = f"apps/{app}/lib/{target.path}.ex"
        if co.path(rel).is_file():
            for m in modules(co.path(rel)) or []:
                if m.name == target.module:
                    return rel, [f.split("/")[0] for f in m.functions]
    return None


# -- verify ----------------------------------------------------------------------------------------------------

def check(ctx: CheckContext) -> list[Finding]:
    co = ctx.co
    lay = layout(co)
    if not lay.release.known:
        if elixir.available():   # mix.exs does not parse: its one finding says where; nothing more to skip aloud
            return []
        ctx.skipped.append("the release's overlays (bin/migrate, bin/server, heart) were NOT checked: mix.exs was not "
                           "read (Elixir is not installed), so where its overlays are is unknown")
        return []
    out: list[Finding] = []
    for script in SCRIPTS:
        out += _script_findings(ctx, lay, script)
    if not lay.ours["migrate"] and lay.found["migrate"]:
        out += _their_migrate(ctx, lay) + _status_module(ctx)
    return out + _heart_findings(ctx, lay.release)


def _script_findings(ctx: CheckContext, lay: Layout, script: str) -> list[Finding]:
    rel, name = lay.found[script], lay.release.name
    if rel is None:
        return []     # ours: reported missing by the owned-file diff
    text = ctx.text(rel) or ""
    out = []
    if not is_executable(ctx.co.path(rel)):
        out.append(error(rel, 1, "is not executable, so the release copies it without its run bit",
                         f"chmod +x {rel} (and commit the mode: git update-index --chmod=+x {rel})"))
    if not text.startswith("#!"):
        out.append(error(rel, 1, "has no #! line", "start it with #!/bin/sh"))
    calls = release_calls(text)
    for call in calls:
        if call.release != name:
            out.append(error(rel, call.line, f"runs the release script `{call.release}`, but the release is `{name}`",
                             f"call ./{name} instead" + (" (run `inv init`)" if lay.ours[script] else "")))
    if not calls:
        out.append(warning(rel, None, f"never calls the release script ./{name}", f"make it `exec ./{name} "
                           + ("eval ...`" if script == "migrate" else "start`") + f" (in {rel})"))
    if script == "server" and "PHX_SERVER" not in text:
        out.append(warning(rel, None, "does not set PHX_SERVER=true, so the portal endpoint does not serve",
                           f"use `PHX_SERVER=true exec ./{name} start`"))
    return out


def _their_migrate(ctx: CheckContext, lay: Layout) -> list[Finding]:
    rel = lay.found["migrate"]
    assert rel is not None
    text = ctx.text(rel) or ""
    if not ctx.elixir_available:
        ctx.skipped.append(f"{rel}: the module it evaluates was NOT looked up (Elixir is not installed)")
        return []
    target = eval_target(text)
    db_release = module_name(ctx.co)
    if target is None:
        return [warning(rel, None, "evaluates no `Module.function` of the release, so it runs no migrations",
                        f"make it `exec ./{lay.release.name} eval {db_release}.migrate` (in {rel})")]
    found = find_module(ctx.co, target)
    call = f"{target.module}.{target.function}"
    if found is None or target.function not in found[1]:
        what = (f"{target.module} is not in apps/*/lib/{target.path}.ex" if found is None
                else f"{found[0]} has no public {target.function}")
        return [error(rel, None, f"evaluates {call}, but {what}, so the release command fails",
                      f"define {call}/0, or point {rel} at the module that migrates")]
    return []


def _status_module(ctx: CheckContext) -> list[Finding]:
    """Beside the user's bin/migrate, our module is what the db tasks call (never their migrate)."""
    co = ctx.co
    rel, module = module_path(co), module_name(co)
    tasks = "`inv db.status`, `inv db.rollback` and the migration check of `inv rollback.app`"
    if not module_is_free(co):
        mine = rel if db_release_module_text(co.root, co.configured.db_otp_app) is not None else \
            next(iter(defining(co, module)), rel)
        return [info(mine, None, f"is your own {module}, so bezgelor-tasks writes none of its own: {tasks} refuse "
                     "(they never run your bin/migrate, which migrates)", f"to use them, move your module to "
                     f"another name and run `inv init`, which writes {module} (status/0, rollback_to/1) here",
                     "overlays.status-module")]
    change = module_change(co)
    if change.old is None:
        return [warning(rel, None, f"is missing ({module}: {tasks} call its status/0 and rollback_to/1; your "
                        "bin/migrate is kept as it is)", "run `inv init` to write it", "overlays.status-module")]
    if change.changed:
        return [warning(rel, None, "differs from what `inv init` writes", "run `inv init` to rewrite it (a hand-edited "
                        "copy is shown as a diff first and kept as .orig)", "overlays.differs", detail=change.diff())]
    return []


def _code_lines(text: str) -> list[str]:
    """The lines of a shell or vm.args template without their `#` comments."""
    return [line.split("#")[0] for line in text.splitlines()]


def _heart_findings(ctx: CheckContext, release: Release) -> list[Finding]:
    """heart must be on for the running release (`-heart` in env.sh.eex or vm.args.eex) and have a command:
    without HEART_COMMAND it only says "Would reboot" and leaves a hung VM running."""
    env_sh = f"{release.templates_path}/{ENV_SH}"
    texts = {rel: ctx.text(rel) or "" for rel in (env_sh, f"{release.templates_path}/vm.args.eex")}
    on = [rel for rel, text in texts.items() if any("-heart" in line for line in _code_lines(text))]
    fix = f"run `inv init` (it adds `-heart` for start/daemon with HEART_BEAT_TIMEOUT and HEART_COMMAND to {env_sh})"
    if not on:
        return [warning(env_sh, None, "the release does not run Erlang's heart: a VM that hangs (alive, not "
                        "answering) is never killed, so Fly never restarts the machine", fix, "overlays.heart")]
    if not any("HEART_COMMAND" in line for line in _code_lines(texts[env_sh])):
        return [warning(on[0], None, "runs Erlang's heart without HEART_COMMAND: heart then only says \"Would "
                        "reboot\" and leaves a hung VM running", fix, "overlays.heart-command")]
    return []
