"""`inv plan.*` tasks (thin: flags → library calls → output)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke import task

from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task

if TYPE_CHECKING:
    from bezgelor_tasks.costs import CostEstimate
    from bezgelor_tasks.settings import Settings
    from bezgelor_tasks.sizing import MemoryEstimate


def memory_lines(est: MemoryEstimate) -> list[str]:
    """The estimate as a table whose MB column adds up to the total."""
    from bezgelor_tasks.fly.platform import vm_size_name
    from bezgelor_tasks.sizing import PLAN

    data_mb = f"{est.data_mb:.1f} MB"
    why = {
        "game data in ETS": f"{data_mb} of JSON x {est.ets_factor:g}",
        "DB pool": f"pool of {PLAN.db_pool_size} connections x {PLAN.db_connection_mb} MB",
    }
    rows = [f"  {name:<18} {mb:>7} MB   {why.get(name, '')}".rstrip() for name, mb in est.parts.items()]
    rows.append(f"  {'total':<18} {est.total_mb:>7} MB   "
                f"(ETS x {est.ets_factor_low:g}..{est.ets_factor_high:g}: {est.total_low_mb}..{est.total_high_mb} MB)")
    rows.append(f"  {'configured VM':<18} {est.vm_memory_mb:>7} MB   "
                f"{vm_size_name(est.vm_cpu_kind, est.vm_cpus)}")
    rows.append(f"  {'headroom':<18} {est.headroom_mb:>7} MB   (want at least {est.margin_mb} MB free)")
    return rows


def cost_lines(costs: CostEstimate) -> list[str]:
    rows = [f"  {line.item:<18} {line.spec:<52} {'$' + str(line.monthly):>9}" for line in costs.lines]
    rows.append(f"  {'total':<18} {'':<52} {'$' + str(costs.total):>9}")
    return rows


@task(help={"root": ROOT_HELP,
            "json_": "Print one JSON document (memory, recommendation, costs) instead of tables."})
@user_task
def size(c: Any, root: str | None = None, json_: bool = False) -> None:
    """Estimate the game machine's memory from the checkout's game data, and the monthly cost."""
    from bezgelor_tasks.checkout.discover import Checkout
    from bezgelor_tasks.costs import estimate_costs, load_prices
    from bezgelor_tasks.sizing import estimate_memory, recommendation

    s = session(root, json_mode=json_)
    co = Checkout.open(s.settings)
    est = estimate_memory(co)
    prices = load_prices()
    costs = estimate_costs(s.settings, prices)
    advice = recommendation(s.settings, est)
    proposed = None if est.ok else estimate_costs(s.settings, prices, vm_memory_mb=est.recommended_mb,
                                                  vm_cpus=est.recommended_cpus)
    if s.json_mode:
        s.ui.emit_json(_as_json(s.settings, est, costs, advice, proposed))
        return
    ui = s.ui
    files = "file" if est.data_files == 1 else "files"
    ui.heading(f"Memory estimate ({est.data_files} JSON {files}, {est.data_mb:.1f} MB under {est.data_dir})")
    for row in memory_lines(est):
        ui.line(row)
    for note in est.notes:
        ui.warn(note)
    if est.ok:
        ui.ok(f"{est.vm_memory_mb} MB holds the estimate with {est.headroom_mb} MB to spare.")
    else:
        for i, text in enumerate(advice):
            (ui.error if i == 0 else ui.info)(text)
    ui.line()
    ui.heading(f"Monthly cost estimate ({costs.currency}, prices as of {costs.as_of}: {costs.source})")
    for row in cost_lines(costs):
        ui.line(row)
    if proposed is not None:
        ui.line()
        ui.heading(f"With the recommended {est.recommended_mb} MB")
        for row in cost_lines(proposed):
            ui.line(row)
    ui.line(f"Prices live in {prices.path}; update them (and as_of) from {prices.source or 'fly.io pricing'}.")


def _as_json(settings: Settings, est: MemoryEstimate, costs: CostEstimate, advice: list[str],
             proposed: CostEstimate | None) -> dict[str, Any]:
    from bezgelor_tasks.sizing import scale_commands

    return {
        "memory": est.as_json(),
        "recommendation": None if est.ok else {
            "memory_mb": est.recommended_mb, "cpus": est.recommended_cpus, "text": advice,
            "commands": [cmd.as_json() for cmd in scale_commands(settings, est)],
        },
        "costs": costs.as_json(),
        "costs_recommended": None if proposed is None else proposed.as_json(),
    }
