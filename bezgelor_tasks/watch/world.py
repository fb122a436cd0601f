"""Restart, stop and start the game world: its one machine, players warned first, health-gated after.

One code path for the watcher's automatic restart (no countdown: a hung world has nobody playing in it),
the scheduled restart job and `inv restart|stop|start`. The countdown and the rule that maintenance mode
never stays on by accident are the drained deploy's (deploy/drain.py, game/countdown.py): with players
online and a drain time, maintenance goes on, the restart is announced at each mark, and the machine
restarts when the world is empty or at the deadline. Each change takes the deploy lock on Fly, so a deploy
and a restart never overlap; a stop marks maintenance in the watcher's state, so the watcher leaves a world
stopped on purpose alone until `inv start`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from bezgelor_tasks.command import Command
from bezgelor_tasks.deploy import drain as drain_mod
from bezgelor_tasks.deploy import machines as machines_mod
from bezgelor_tasks.deploy.context import DeployContext
from bezgelor_tasks.deploy.fly_lock import FlyLock
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.fly import commands
from bezgelor_tasks.fly.client import FlyClient
from bezgelor_tasks.fly.records import Machine
from bezgelor_tasks.game import countdown as cd
from bezgelor_tasks.game.portal import Portal, PortalUnavailable, ask, confirm_disconnect
from bezgelor_tasks.health import HealthReport, health_gate
from bezgelor_tasks.processes import STOP, cleanup_after_interrupt
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.watch.state import StateOnFly

ACTIONS = ("restart", "stop", "start")


@dataclass
class WorldChange:
    action: str
    machine: str
    ok: bool = False
    summary: str = ""
    players: int | None = None          # online before (None: unknown)
    countdown: cd.CountdownResult | None = None
    health: HealthReport | None = None
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "machine": self.machine, "ok": self.ok, "summary": self.summary,
                "players_before": self.players, "countdown": self.countdown.as_json() if self.countdown else None,
                "health": self.health.as_json() if self.health else None, "dry_run": self.dry_run,
                "notes": self.notes}


def the_machine(fly: FlyClient, settings: Settings) -> Machine:
    """The game machine (one machine, one world: with more, the one deploys keep)."""
    fly.forget()
    count = machines_mod.assess(fly.status(settings.app))
    if count.keep is None:
        raise UserError(f"{settings.app} has no machine: there is no world to restart, stop or start.",
                        fix="deploy it first: `inv deploy.full`")
    return count.keep


def machine_command(settings: Settings, action: str, machine: str) -> Command:
    builders = {"restart": commands.machine_restart, "stop": commands.machine_stop, "start": commands.machine_start}
    return builders[action](settings, machine)


def public_ipv4(fly: FlyClient, settings: Settings) -> str:
    from bezgelor_tasks.deploy.rollback import public_ipv4 as dedicated_v4

    return dedicated_v4(fly, settings.app)


@contextmanager
def lock_held(fly: FlyClient, settings: Settings, purpose: str, message: str) -> Iterator[None]:
    """The deploy lock on Fly for the block (refused when a deploy holds it), freed on every way out."""
    lock = FlyLock(fly, settings.app)
    if fly.dry_run:
        lock.refuse_if_held()
        yield
        return
    lock.acquire(purpose, message=message)
    try:
        yield
    finally:
        with cleanup_after_interrupt():
            lock.release()


def change_machine(ctx: DeployContext, action: str, machine: Machine, *, gate: bool = True) -> WorldChange:
    """Run the machine command (a `start` of a stopped machine when a restart is asked), then health-gate."""
    s = ctx.settings
    if action == "restart" and machine.state not in ("started", "starting"):
        action = "start"   # a stopped machine is started, not restarted (flyctl refuses to restart it)
    change = WorldChange(action, machine.id, dry_run=ctx.dry_run)
    ctx.fly.run(machine_command(s, action, machine.id), app=s.app)
    if ctx.dry_run:
        change.ok, change.summary = True, f"would {action} {machine.id}"
        return change
    if action == "stop" or not gate:
        change.ok, change.summary = True, f"{machine.id} {action}ed" if action != "stop" else f"{machine.id} stopped"
        return change
    report = health_gate(s, ctx.ui, public_ipv4(ctx.fly, s) or None)
    change.health, change.ok = report, report.ok
    change.summary = f"{action}ed {machine.id}: {report.summary()}"
    return change


def player_aware(ctx: DeployContext, action: str, *, drain: str | None, reason: str | None,
                 yes: bool) -> WorldChange:
    """`inv restart|stop` and the scheduled restart: warn the players (countdown), then act, then gate."""
    s = ctx.settings
    machine = the_machine(ctx.fly, s)
    st = drain_mod.setup(ctx, drain=drain, reason=reason, yes=yes)
    acted = [False]
    with lock_held(ctx.fly, s, action, f"{action} ({st.reason})"), \
            drain_mod.maintenance_ends(ctx, lambda: acted[0]) as ending:
        players, result = _warn_players(ctx, st, action)
        ending.why = f"the {action} did not happen"
        change = change_machine(ctx, action, machine)
        acted[0] = True
        if action == "stop":
            st.maintenance_on = False   # the machine is stopped: it boots with maintenance off, nothing to turn off
            mark_maintenance(s, ctx.executor, True, fly=ctx.fly)
    change.players, change.countdown = players, result
    return change


def start(ctx: DeployContext) -> WorldChange:
    """`inv start`: start the machine, clear the maintenance mark, health-gate."""
    s = ctx.settings
    machine = the_machine(ctx.fly, s)
    with lock_held(ctx.fly, s, "start", "start the world"):
        change = change_machine(ctx, "start", machine)
        mark_maintenance(s, ctx.executor, False, fly=ctx.fly)
    return change


def mark_maintenance(settings: Settings, executor: Executor, on: bool, *, fly: FlyClient | None = None) -> None:
    """The watcher's maintenance mark on Fly: set by `inv stop` and `inv maintenance.on`, cleared by `inv start`
    and `inv maintenance.off`. Under --dry-run the write is shown, not made."""
    store = StateOnFly(fly or FlyClient(settings, executor), settings.app)
    state = store.read()
    if bool(state.maintenance_since) == on:
        return
    store.write(replace(state, maintenance_since=time.time() if on else 0.0, maintenance_by=_me() if on else ""))


def _warn_players(ctx: DeployContext, st: drain_mod.DrainState, action: str) -> tuple[int | None,
                                                                                      cd.CountdownResult | None]:
    s, ui = ctx.settings, ctx.ui
    portal = Portal(s, ctx.executor)
    if st.drain_s <= 0:
        check = confirm_disconnect(portal, ui, yes=st.yes, action=f"the {action}",
                                   hint=" (or give them a countdown: --drain 5m)")
        return check.players, None
    try:
        status = portal.read()
    except PortalUnavailable as e:
        ui.warn(f"players: {e.message}")
        if not st.yes:
            ask(f"Nobody online can be warned. Go on with the {action} anyway?",
                UserError(f"{e.message} Without a player count the {action} goes on only with --yes.",
                          fix=f"{e.fix}; or pass --yes"))
        return None, None
    count = status.count if status else 0
    if ctx.dry_run:
        ui.info(f"players: {count} online; a countdown of up to {cd.short(st.drain_s)} would run before the {action}"
                if count else f"players: nobody online, the {action} would run at once")
        for cmd in _countdown_commands(s, st) if count else []:
            ctx.executor.run(cmd)
        return count, None
    if not count:
        ui.info(f"players: nobody online, {action} now")
        return 0, None
    ui.info(f"players: {count} online; counting down {cd.short(st.drain_s)} before the {action}")
    result = cd.countdown(portal, ui, players=count, drain_s=st.drain_s, marks=cd.marks_of(s), poll_s=s.drain_poll_s,
                          reason=st.reason, cancel=STOP, on_maintenance=lambda: setattr(st, "maintenance_on", True))
    return count, result


def _countdown_commands(s: Settings, st: drain_mod.DrainState) -> list[Command]:
    from bezgelor_tasks.game import rpc

    return [rpc.maintenance(s, True), rpc.announce(s, cd.restart_in(st.drain_s, st.reason))]


def _me() -> str:
    from bezgelor_tasks.lock import Holder

    me = Holder.me("stop")
    return f"{me.user}@{me.host}"[:16]
