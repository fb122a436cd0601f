"""The game machine's memory against an estimate from the game data's size (the plan's analysis:
JSON × 2–3 once loaded into ETS, plus BEAM, Phoenix, the game GenServers and the DB pool; the
arithmetic lives in bezgelor_tasks.sizing, shared with `inv plan.size`)."""

from __future__ import annotations

import re

from bezgelor_tasks import sizing
from bezgelor_tasks.checkout.flytoml import parse_memory_mb
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, error, line_of, warning


def check(ctx: CheckContext) -> list[Finding]:
    data = ctx.fly_toml
    if data is None:
        return []
    text = ctx.text("fly.toml") or ""
    est = sizing.estimate_memory(ctx.co)
    memory = None
    for vm in (v for v in (data.get("vm") or []) if isinstance(v, dict)):
        memory = parse_memory_mb(vm.get("memory", vm.get("memory_mb")))
        if memory is not None:
            break
    line = line_of(text, r"^[ \t]*memory(_mb)?\s*=", re.M) or line_of(text, r"^\[\[vm\]\]", re.M)
    basis = (f"estimate of {est.total_mb} MB ({est.data_bytes / sizing.MB:.0f} MB of game JSON under "
             f"{est.data_dir} × {est.ets_factor:g} in ETS + the VM, Phoenix, game servers and DB pool)")
    rec = f'{est.recommended_mb // 1024}gb' if est.recommended_mb % 1024 == 0 else str(est.recommended_mb)
    s = ctx.settings
    more_cpus = est.recommended_cpus != s.vm_cpus  # the CPU count caps memory (2 GB per shared CPU)
    env = f"BEZGELOR_VM_MEMORY_MB={est.recommended_mb}" + (f" BEZGELOR_VM_CPUS={est.recommended_cpus}"
                                                           if more_cpus else "")
    running = "; ".join(f"`{c.shown()}`" for c in sizing.scale_commands(s, est))
    fix = (f'set [[vm]] memory = "{rec}"' + (f" and cpus = {est.recommended_cpus}" if more_cpus else "")
           + f" in fly.toml (or {env} in .env, then `inv init`); for machines already running: {running}; "
           "see `inv plan.size`")
    if memory is None:
        return [error("fly.toml", line, f"sets no VM memory, so Fly uses its 256 MB default; {basis}", fix)]
    if memory < est.total_mb:
        return [error("fly.toml", line, f"VM memory {memory} MB is below the {basis}: the game data would not "
                      "fit once loaded", fix)]
    if memory < est.required_mb:
        return [warning("fly.toml", line, f"VM memory {memory} MB leaves less than {est.margin_mb} MB of "
                        f"headroom over the {basis}", fix)]
    return []
