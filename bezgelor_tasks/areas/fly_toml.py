"""The fly.toml area: the game machine's Fly config, written by init and checked by verify from one spec.

The spec (fly_toml_spec.py) comes from the settings, the Postgres flavor and the checkout (its mix.exs
version, the values its fly.toml already has). init applies it to the user's fly.toml (fly_toml_apply.py;
a fresh file is the spec applied to an empty document); verify reads the file against the same spec
(fly_toml_verify.py). A fly.toml that is not TOML is one finding (areas/framework.py: the areas that name
it in `files` are skipped). The memory area judges [[vm]] against the game data's estimate.
"""

from __future__ import annotations

from collections.abc import Callable

from bezgelor_tasks import elixir, elixir_source, sizing, units
from bezgelor_tasks.areas import fly_toml_apply, fly_toml_doc
from bezgelor_tasks.areas.fly_toml_apply import portal_form
from bezgelor_tasks.areas.fly_toml_spec import Kept, Table, fly_toml_spec
from bezgelor_tasks.areas.fly_toml_verify import REL, Reader, http_service_findings
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checkout.effective import FROM_FLY_TOML
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, warning
from bezgelor_tasks.files import FileChange, read_text
from bezgelor_tasks.settings import ENV_OF


def app_version(co: Checkout) -> str:
    """The umbrella's `version:` from mix.exs (asked of Elixir): the image label when `fly deploy` runs by hand."""
    mix = co.path("mix.exs")
    project = elixir_source.mix_project(mix) if mix.is_file() and elixir.available() else None
    version = (project or {}).get("version")
    return version if isinstance(version, str) else "0.0.0"


def spec(co: Checkout) -> Callable[[bool], Table]:
    """The spec for this checkout, given whether it serves its portal from an [http_service]."""
    version = app_version(co)
    return lambda portal_http_service: fly_toml_spec(co.settings, version, portal_http_service)


def fly_toml_change(co: Checkout) -> FileChange:
    path = co.path(REL)
    old = read_text(path)
    written = fly_toml_apply.write(old, spec(co), co.settings)
    notes: list[str] = []
    if written.http is not None:
        notes.append(written.http.explain(co.settings))
    notes += [k.say() for k in written.kept]
    notes += [Kept(key, getattr(co.settings, field), ENV_OF[field], getattr(co.configured, field)).say()
              for field, key, _ in FROM_FLY_TOML if getattr(co.settings, field) != getattr(co.configured, field)]
    launched = (fly_toml_doc.plain(fly_toml_doc.parse(old)) or {}).get("app") if old else None
    if isinstance(launched, str) and launched != co.settings.app:
        notes.append(f"app {launched!r} → {co.settings.app!r} (BEZGELOR_FLY_APP): if {launched!r} is the app you "
                     f"launched, set BEZGELOR_FLY_APP={launched} in .env and run `inv init` again")
    why = ("Fly app config: four services always on, /health check with X-Forwarded-Proto, migrate on release, "
           "restarted on failure" if old is None else
           "set services, checks, deploy and restart from settings (your comments, keys and values kept)")
    # Removing [http_service] or replacing the app rewrites something of the user's: show that diff.
    shown = written.http is not None or any("app " in n for n in notes) or any(k.changed for k in written.kept)
    return FileChange(path, REL, old, written.text, why, mode="patch", notes=tuple(notes), show_diff=shown)


def check(ctx: CheckContext) -> list[Finding]:
    text = ctx.text(REL)
    if text is None:
        return [error(REL, None, "fly.toml is missing", "run `inv init` to write it", "flytoml.missing")]
    parsed = ctx.fly_toml_document
    if isinstance(parsed, fly_toml_doc.NotToml):
        return []            # one finding, from the area framework, which skips the areas that read it
    lines = fly_toml_doc.TomlLines(text)
    form = portal_form(parsed, ctx.settings)
    both = http_service_findings(lines, ctx.settings) if form == "both" else []
    return both + Reader(ctx.settings, lines).table(parsed, spec(ctx.co)(form == "http_service"), (), "")


def memory_check(ctx: CheckContext) -> list[Finding]:
    """[[vm]] memory against the estimate from the game data (sizing.py, shared with `inv plan.size`)."""
    data = ctx.fly_toml
    if data is None:
        return []
    vms = [v for v in (data.get("vm") or []) if isinstance(v, dict)]
    raw = next((vm.get("memory", vm.get("memory_mb")) for vm in vms if "memory" in vm or "memory_mb" in vm), None)
    memory = units.parse_memory_mb(raw)
    if raw is not None and memory is None:
        return []            # a value Fly cannot read: the fly.toml area names it, with the forms Fly accepts
    lines = fly_toml_doc.TomlLines(ctx.text(REL) or "")
    line = lines.line(("vm", 0), "memory" if vms and "memory" in vms[0] else "memory_mb")
    s, est = ctx.settings, sizing.estimate_memory(ctx.co)
    basis = (f"estimate of {est.total_mb} MB ({est.data_bytes / sizing.MB:.0f} MB of game JSON under "
             f"{est.data_dir} × {est.ets_factor:g} in ETS + the VM, Phoenix, game servers and DB pool)")
    more_cpus = est.recommended_cpus != s.vm_cpus  # the CPU count caps memory (2 GB per shared CPU)
    env = f"BEZGELOR_VM_MEMORY_MB={est.recommended_mb}" + (f" BEZGELOR_VM_CPUS={est.recommended_cpus}"
                                                           if more_cpus else "")
    running = "; ".join(f"`{c.shown()}`" for c in sizing.scale_commands(s, est))
    fix = (f"set [[vm]] memory = {fly_toml_verify_value(est.recommended_mb)}"
           + (f" and cpus = {est.recommended_cpus}" if more_cpus else "")
           + f" in fly.toml (or {env} in .env, then `inv init`); for machines already running: {running}; "
           "see `inv plan.size`")
    if memory is None:
        return [error(REL, line, f"sets no VM memory, so Fly uses its 256 MB default; {basis}", fix)]
    if memory < est.total_mb:
        return [error(REL, line, f"VM memory {memory} MB is below the {basis}: the game data would not fit once "
                      "loaded", fix)]
    if memory < est.required_mb:
        return [warning(REL, line, f"VM memory {memory} MB leaves less than {est.margin_mb} MB of headroom over the "
                        f"{basis}", fix)]
    return []


def fly_toml_verify_value(mb: int) -> str:
    value = units.fly_memory(mb)
    return f'"{value}"' if isinstance(value, str) else str(value)
