""".dockerignore: nothing the Dockerfile copies may be left out of the build context.

Docker's matching rules (moby/patternmatcher) live in checkout.dockerignore, shared with init.
"""

from __future__ import annotations

from bezgelor_tasks.checkout import dockerignore as di
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, info, warning

REL = ".dockerignore"


def check(ctx: CheckContext) -> list[Finding]:
    text = ctx.text(REL)
    facts = ctx.dockerfile
    if text is None:
        if facts is None:
            return []
        return [warning(REL, None, ".dockerignore is missing, so _build/, deps/, .git and .env go into the "
                        "build context (slow builds, and local secrets inside the builder)",
                        "run `inv init` to write one")]
    if facts is None:
        return []
    patterns = di.dockerignore_patterns(text)
    out: list[Finding] = []
    for sc in di.shadowed_copies(ctx.co.root, facts.local_copy_sources(), patterns):
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
