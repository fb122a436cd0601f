"""Generated files are template files under bezgelor_tasks/templates/, filled by one renderer.

Templates are Jinja2 with delimiters that never occur in Elixir, Dockerfiles, shell or YAML: `@{ name }`
for a value, `@{% if x %}…@{% endif %}` for a block, `@{# … #}` for a comment. An unknown placeholder
is an error (StrictUndefined), never silently left in the output.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (verify renders the files it owns to diff them), where the user's
    cache folder can be written; none elsewhere."""
    import os
    from pathlib import Path

    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bezgelor-tasks" / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder)) if os.access(folder, os.W_OK) else None


@cache
def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("bezgelor_tasks").joinpath("templates", name).read_text(encoding="utf-8"))
    return jinja2.Environment(
        loader=loader, bytecode_cache=_bytecode_cache(), undefined=jinja2.StrictUndefined, autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True,
        variable_start_string="@{", variable_end_string="}",
        block_start_string="@{%", block_end_string="%}",
        comment_start_string="@{#", comment_end_string="#}")


def render(template: str, **values: Any) -> str:
    """Fill templates/<template> with `values`; a placeholder without a value raises jinja2.UndefinedError."""
    return _environment().get_template(template).render(**values)
