"""rel/overlays/bin/{migrate,server}: present, executable, and calling this release's own script."""

from __future__ import annotations

import re

from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_of, warning
from bezgelor_tasks.files import is_executable

SCRIPTS = ("migrate", "server")
_CALL = re.compile(r"(?:\./|bin/|/)([a-z_][a-z0-9_]*)\"?\s+\"?(eval|start|start_iex|daemon|rpc|remote)\b")
_ASSIGN = re.compile(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"$`]*\"|'[^']*'|[^\s;$`]*)\s*$", re.M)


def expand_simple_vars(script: str) -> str:
    """Substitute `name="literal"` shell variables into their `$name` / `${name}` uses (enough to see
    which release a script calls; anything dynamic is left as is)."""
    values = {m.group(1): m.group(2).strip("\"'") for m in _ASSIGN.finditer(script)}
    for name, value in values.items():
        script = re.sub(rf"\$\{{{name}\}}|\${name}\b", value, script)
    return script


def check(ctx: CheckContext) -> list[Finding]:
    name = ctx.settings.release_name
    out: list[Finding] = []
    for script in SCRIPTS:
        rel = f"rel/overlays/bin/{script}"
        path = ctx.co.path(rel)
        text = ctx.text(rel)
        if text is None:
            out.append(error(rel, None, f"the overlay script {script} is missing, so the release has no "
                             f"bin/{script}", "run `inv init` to write it"))
            continue
        if not is_executable(path):
            out.append(error(rel, 1, "is not executable, so the release copies it without its run bit",
                             f"chmod +x {rel} (and commit the mode: git update-index --chmod=+x {rel})"))
        if not text.startswith("#!"):
            out.append(error(rel, 1, "has no #! line", "start it with #!/bin/sh"))
        expanded = expand_simple_vars(text)
        calls = list(_CALL.finditer(expanded))
        for m in calls:
            if m.group(1) != name:
                out.append(error(rel, line_of(expanded, re.escape(m.group(0))),
                                 f"runs the release script `{m.group(1)}`, but the release is `{name}`",
                                 f"call ./{name} instead (run `inv init`)"))
        if not calls:
            out.append(warning(rel, None, f"never calls the release script ./{name}",
                               "run `inv init --force` to rewrite it (it should `exec ./" + name
                               + (" eval ...`)" if script == "migrate" else " start`)")))
        if script == "migrate" and "status" not in text:
            out.append(warning(rel, None, "does not answer `migrate status`, which `inv db.status` and the "
                               "deploy's rollback planning use", "run `inv init` to write the current script"))
        if script == "server" and "PHX_SERVER" not in text:
            out.append(warning(rel, None, "does not set PHX_SERVER=true, so the portal endpoint does not serve",
                               f"use `PHX_SERVER=true exec ./{name} start`"))
    return out
