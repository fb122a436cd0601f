"""The .dockerignore area: the build context of the release image, written by init and checked against the Dockerfile.

Rule: nothing the Dockerfile copies may be ignored. The seed excluded the portal's priv/static/textures/ and
models, but the Dockerfile copies the whole priv/ folder, so those files would silently be missing from the
image (and the portal serves them). Big folders the image does not need are left out whole (deps, _build,
tests, the dev-only apps), never parts of a copied one. Ours comes from templates/docker/dockerignore; Docker's
matching rules are in dockerignore_patterns.py.
"""

from __future__ import annotations

from bezgelor_tasks.areas import dockerignore_patterns as di
from bezgelor_tasks.areas.owned import is_ours
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, info, warning
from bezgelor_tasks.files import FileChange, generated_change
from bezgelor_tasks.render import render

DOCKERIGNORE = REL = ".dockerignore"


def render_dockerignore(co: Checkout) -> str:
    return render("docker/dockerignore", dev_only_apps=co.settings.dev_only_apps)


def dockerignore_change(co: Checkout) -> FileChange:
    return generated_change(co.path(DOCKERIGNORE), DOCKERIGNORE, render_dockerignore(co),
                            "build context without build output, secrets or tests; never part of a copied folder")


def check(ctx: CheckContext) -> list[Finding]:
    text = ctx.text(REL)
    facts = ctx.dockerfile
    if text is None:
        if facts is None:
            return []
        return [warning(REL, None, ".dockerignore is missing, so _build/, deps/, .git and .env go into the "
                        "build context (slow builds, and local secrets inside the builder)",
                        "run `inv init` to write one")]
    if facts is None or (is_ours(dockerignore_change(ctx.co)) and is_ours(_dockerfile_change(ctx))):
        return []           # both ours, written to agree (the framework diffs each against what init writes)
    out: list[Finding] = []
    for sc in di.shadowed_copies(ctx.co.root, facts.local_copy_sources(), di.dockerignore_patterns(text)):
        whole = sc.path.rstrip("/") == sc.source.strip("/").removeprefix("./").rstrip("/")
        if whole:
            out.append(error(REL, sc.pattern_line, f"`{sc.pattern}` excludes {sc.source}, which the Dockerfile "
                             f"copies (Dockerfile:{sc.copy_line}); the build fails or the image lacks it",
                             f"remove or narrow `{sc.pattern}` (or add `!{sc.source}`)"))
        else:
            out.append(info(REL, sc.pattern_line, f"`{sc.pattern}` leaves {sc.path} out of the image although "
                            f"the Dockerfile copies {sc.source} (Dockerfile:{sc.copy_line})",
                            f"if the release needs {sc.path}, add `!{sc.path}` to .dockerignore "
                            f"(or narrow `{sc.pattern}`)"))
    return out


def _dockerfile_change(ctx: CheckContext) -> FileChange:
    from bezgelor_tasks.areas.dockerfile import dockerfile_change

    return dockerfile_change(ctx.co)
