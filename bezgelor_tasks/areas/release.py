"""The release Fly runs, derived from the checkout as it is, then from the settings.

A release mix.exs already defines is kept under its own name, with its options: its applications (init
only adds the umbrella apps it lacks and removes the dev-only ones), its steps, its `rel_templates_path` and
its overlays. Mix copies `<rel_templates_path>/overlays` (rel_templates_path defaults to "rel") unless the
release sets `overlays:`, which replaces that default: init never adds an `overlays:` (it would hide the
user's), it puts what the release lacks into the folder Mix already copies. Only when mix.exs defines no
release (or several, none named BEZGELOR_RELEASE_NAME and no `default_release:`) does the setting name the
release init adds.

`mix_release_name` is mix.exs's answer to "what is the release called"; a checkout's `co.settings.release_name`
is it (Checkout.settings, through checkout/effective.py), so the Dockerfile's `mix release <name>` and
`/app/bin/<name>`, the release's scripts and the docs follow. Every other task reads the name back from the
Dockerfile init wrote from it (checkout/effective.py: no Elixir needed where one deploys).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bezgelor_tasks import elixir
from bezgelor_tasks.elixir_source import Node, Project, project
from bezgelor_tasks.files import read_text

if TYPE_CHECKING:
    from bezgelor_tasks.checkout.discover import Checkout

MIX_EXS = "mix.exs"
DEFAULT_TEMPLATES = "rel"
SCRIPTS = ("migrate", "server")


@dataclass(frozen=True)
class Release:
    name: str
    defined: bool                          # mix.exs defines it (else init adds it)
    index: int | None                      # its place in the releases list
    options: Node | None                   # its keyword list, when it is a literal
    applications: dict[str, str] | None    # app -> mode as written (None: not given or not a literal)
    templates_path: str                    # rel_templates_path
    overlays: tuple[str, ...]              # the folders Mix copies into the release, in order
    explicit_overlays: bool                # `overlays:` given (it replaces <templates_path>/overlays)
    include_executables_for: tuple[str, ...] | None
    ignored_keys: tuple[str, ...]          # keys Mix does not know that look like release options (`overlay:`)
    line: int | None
    # mix.exs was read (False: Elixir is absent or mix.exs does not parse, so its options are unknown and the
    # layout above is Mix's default, a guess: what depends on it is skipped, never reported)
    known: bool = True

    @property
    def first_overlay(self) -> str:
        """Where init puts a script the release lacks: the first folder Mix copies."""
        return self.overlays[0]

    @property
    def build_folders(self) -> tuple[str, ...]:
        """What the image build copies for `mix release`: the templates path (env.sh.eex, vm.args.eex, the
        default overlays) and any overlay folder outside it."""
        inside = (self.templates_path, f"{self.templates_path}/")
        return (self.templates_path, *(o for o in self.overlays if o != inside[0] and not o.startswith(inside[1])))

    def ships(self, app: str) -> bool:
        """The release lists `app` (so its code is in the image's release)."""
        return app in (self.applications or {})


def mix_facts(co: Checkout) -> Project | None:
    """The checkout's mix.exs as Elixir reads it (None: Elixir is absent or it does not parse)."""
    return _mix_project(co.root)


def _mix_project(root: Path) -> Project | None:
    path = root / MIX_EXS
    text = read_text(path) if path.is_file() else None
    if text is None or not elixir.available():
        return None
    return project(path, text)


def releases_node(facts: Project | None) -> Node | None:
    """project/0's releases list, when it is a list literal (inline or returned by a zero-arity function)."""
    if facts is None or facts.releases is None or not facts.releases.node.is_list:
        return None
    return facts.releases.node


def mix_release_name(root: Path, wanted: str) -> str | None:
    """The release the checkout deploys, as mix.exs says: `wanted` (BEZGELOR_RELEASE_NAME) when mix.exs defines
    it or defines none (init adds it); else mix.exs's `default_release:` or its only release. None when mix.exs
    is not read (Elixir is absent, or it does not parse)."""
    facts = _mix_project(root)
    if facts is None:
        return None
    listed = releases_node(facts)
    names = listed.key_names() if listed is not None else []
    if wanted in names or not names:
        return wanted
    default = facts.literals().get("default_release")
    if isinstance(default, str) and default.lstrip(":") in names:
        return default.lstrip(":")
    return names[0] if len(names) == 1 else wanted


def _strings(node: Node | None) -> tuple[str, ...] | None:
    if node is None or not node.is_literal or not isinstance(node.value, list):
        return None
    return tuple(v for v in node.value if isinstance(v, str))


def _applications(node: Node | None) -> dict[str, str] | None:
    """`[app: :mode]`, `[:app]` or a mix of both, as app -> mode (":permanent" when not given)."""
    if node is None or not node.is_literal:
        return None
    value: Any = node.value
    if isinstance(value, dict):
        return {k: str(v) for k, v in value.items()}
    if not isinstance(value, list):
        return None
    out: dict[str, str] = {}
    for v in value:
        if isinstance(v, str):
            out[v.lstrip(":")] = ":permanent"
        elif isinstance(v, list) and len(v) == 2:
            out[str(v[0]).lstrip(":")] = str(v[1])
    return out


def of(co: Checkout) -> Release:
    """The release the checkout deploys, as mix.exs defines it (or as init will add it)."""
    name = co.settings.release_name
    facts = mix_facts(co)
    listed = releases_node(facts)
    index = next((i for i, item in enumerate(listed.items or ()) if item.key == name), None) if listed else None
    if listed is None or index is None:
        return Release(name, False, None, None, None, DEFAULT_TEMPLATES, (f"{DEFAULT_TEMPLATES}/overlays",), False,
                       None, (), None, known=facts is not None)
    item = (listed.items or ())[index]
    options = item.value if item.value.is_list else None

    def option(key: str) -> Node | None:
        found = options.get(key) if options is not None else None
        return found.value if found is not None else None

    templates = option("rel_templates_path")
    templates_path = templates.value if templates is not None and isinstance(templates.value, str) \
        else DEFAULT_TEMPLATES
    explicit = _strings(option("overlays"))
    overlays = explicit if explicit is not None else (f"{templates_path.rstrip('/')}/overlays",)
    execs = _strings(option("include_executables_for"))
    return Release(name, True, index, options, _applications(option("applications")), templates_path.rstrip("/"),
                   overlays, explicit is not None,
                   tuple(e.lstrip(":") for e in execs) if execs is not None else None,
                   ("overlay",) if option("overlay") is not None else (), item.line)


def script(co: Checkout, release: Release, name: str) -> str | None:
    """The checkout file that becomes the release's bin/<name>: Mix copies the overlay folders in order,
    so the last one that has it wins."""
    found = [f"{folder}/bin/{name}" for folder in release.overlays if co.path(f"{folder}/bin/{name}").is_file()]
    return found[-1] if found else None
