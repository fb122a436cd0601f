"""Drained deploys: let the world empty (in-game countdown) before `fly deploy` restarts it.

- `check_players()` (main thread, after the plan is confirmed, before any step runs): with a live
  world about to be restarted, read the player count. Unreadable (no Portal API, rpc failed) or,
  with `--drain 0`, players online: ask on a terminal, go on with --yes, else stop (nothing changed).
- the `drain` step (after build and secrets, before backup and deploy): at zero players go on; else
  maintenance on, countdown, poll, go on at zero or at the deadline. The backup that follows is then
  taken with nobody playing.
- Ctrl-C: the pipeline sets the executor's STOP (processes.interrupt_all), which the countdown waits on,
  so it stops within one call.
- `maintenance_ends()`: whatever happens afterwards, maintenance mode does not stay on. If the new
  release is not live (failure, rollback, Ctrl-C), it is turned off and the cancellation announced;
  if it is, the new release booted with it off anyway (Application env), and it is turned off again
  to be sure, silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bezgelor_tasks.command import Command
from bezgelor_tasks.deploy import fly_lock
from bezgelor_tasks.deploy import machines as machines_mod
from bezgelor_tasks.deploy.context import DeployContext
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.game import countdown as cd
from bezgelor_tasks.game import rpc
from bezgelor_tasks.game.portal import DisconnectCheck, Portal, PortalUnavailable, ask, confirm_disconnect
from bezgelor_tasks.pipeline import Pipeline, Status, Step, done, todo
from bezgelor_tasks.processes import STOP, cleanup_after_interrupt

FACT = "drain"


@dataclass
class DrainState:
    """What deploy.full learns about the players; kept in ctx.facts["drain"]."""

    drain_s: float
    reason: str
    yes: bool = False
    before: DisconnectCheck | None = None       # the count read before any step ran
    unknown_ok: bool = False                     # going on without a count was allowed (--yes or asked)
    maintenance_on: bool = False                 # we turned it on: it must go off again
    result: cd.CountdownResult | None = None
    players_at_cutover: int | None = None
    waited_s: float = 0.0
    note: str = ""                               # one line for the summary
    ended: str = ""                              # how maintenance mode ended

    def as_json(self) -> dict[str, Any]:
        return {"drain_s": self.drain_s, "reason": self.reason, "players_at_cutover": self.players_at_cutover,
                "waited_s": round(self.waited_s, 2), "note": self.note or None,
                "countdown": self.result.as_json() if self.result else None,
                "maintenance": self.ended or None, "before": self.before.as_json() if self.before else None}


def setup(ctx: DeployContext, *, drain: str | None, reason: str | None, yes: bool) -> DrainState:
    s = ctx.settings
    state = DrainState(cd.parse_duration(s.drain if drain is None else drain, "--drain"),
                       (reason if reason is not None else s.drain_reason).strip() or s.drain_reason, yes=yes)
    rpc.check_message(state.reason)
    ctx.facts[FACT] = state
    return state


def state_of(ctx: DeployContext) -> DrainState:
    found = ctx.facts.get(FACT)
    if isinstance(found, DrainState):
        return found
    return setup(ctx, drain=None, reason=None, yes=False)


def _world_restarts(ctx: DeployContext) -> str:
    """Why the deploy restarts a live world ("" when it does not: first deploy, or already deployed)."""
    s = ctx.settings
    status = ctx.fly.status(s.app)
    live = machines_mod.serving(status)   # what the machines run, not the newest release
    if live is None:
        return ""
    if ctx.label and machines_mod.runs_label(status, ctx.label):
        staged = [x.name for x in ctx.fly.secrets(s.app) if x.status.lower() == "staged"
                  and not fly_lock.is_bookkeeping_name(x.name)]   # bookkeeping: staged on purpose
        return f"staged secrets {', '.join(staged)} restart it" if staged else ""
    return f"release v{live.release_version} is live"


def check_players(ctx: DeployContext, pipe: Pipeline) -> None:
    """Before any step runs (main thread: it may ask): is there a world to restart, and who is in it?"""
    st = state_of(ctx)
    if pipe.reports["app"].state != "done" or pipe.reports["deploy"].state == "done" or not _world_restarts(ctx):
        return
    portal = Portal(ctx.settings, ctx.executor)
    if st.drain_s > 0:
        try:
            status = portal.read()
        except PortalUnavailable as e:
            ctx.ui.warn(f"players: {e.message}")
            if not st.yes:
                ask("Nobody online can be warned. Deploy without a countdown anyway?",
                    UserError(f"{e.message} Without a player count there is no countdown, and deploy.full "
                              "goes on only with --yes.",
                              fix=f"{e.fix}; or pass --yes to deploy without warning anyone"))
            st.unknown_ok = True
            st.before = DisconnectCheck(None, "--yes" if st.yes else "asked", e.message.split(":")[0])
            return
        count = status.count if status else 0
        st.before = DisconnectCheck(count)
        ctx.ui.info(f"players: {count} online" + (f"; the drain step waits up to {cd.short(st.drain_s)} for them "
                                                   "to leave" if count else ""))
        return
    st.before = confirm_disconnect(portal, ctx.ui, yes=st.yes, action="the deploy",
                                   hint=" (or give them a countdown: --drain 10m)")
    st.unknown_ok = st.before.players is None


def drain_step(ctx: DeployContext) -> Step:
    s = ctx.settings

    def check() -> Status:
        why = _world_restarts(ctx)
        if not why:
            return done("no live world to restart (first deploy, or this version already runs)")
        st = state_of(ctx)
        return todo(f"{why}: wait up to {cd.short(st.drain_s)} for players to leave" if st.drain_s
                    else f"{why}: --drain 0, no wait")

    def plan() -> list[Command]:
        st = state_of(ctx)
        cmds = [rpc.read(s)]
        if st.drain_s:
            cmds += [rpc.maintenance(s, True), rpc.announce(s, cd.restart_in(st.drain_s, st.reason))]
        return cmds

    def run() -> dict[str, Any]:
        st = state_of(ctx)
        portal = Portal(s, ctx.executor)
        began = time.monotonic()
        try:
            status = portal.read()
        except PortalUnavailable as e:
            if not (st.unknown_ok or st.yes):
                raise UserError(f"{e.message} Without a player count deploy.full goes on only with --yes.",
                                fix=f"{e.fix}; or pass --yes") from None
            went_on = st.before.went_on if st.before and st.before.went_on else "--yes"
            st.note = f"count unknown ({e.message.split(':')[0]}): no countdown ({went_on})"
            ctx.ui.warn(f"drain: {e.message} Going on without a countdown.")
            return {"players": None, "summary": st.note}
        count = status.count if status else 0
        if count == 0:
            st.players_at_cutover, st.note = 0, "nobody online at cut-over: no wait"
            return {"players": 0, "summary": st.note}
        if st.drain_s <= 0:
            went_on = st.before.went_on if st.before and st.before.went_on else ("--yes" if st.yes else "asked")
            st.players_at_cutover = count
            st.note = f"{count} online at cut-over, disconnected without a countdown (--drain 0, {went_on})"
            return {"players": count, "summary": st.note}
        result = cd.countdown(portal, ctx.ui, players=count, drain_s=st.drain_s, marks=cd.marks_of(s),
                              poll_s=s.drain_poll_s, reason=st.reason, cancel=STOP,
                              on_maintenance=lambda: setattr(st, "maintenance_on", True))
        st.result, st.players_at_cutover = result, result.players_at_cutover
        st.waited_s = time.monotonic() - began
        how = "everyone left" if result.emptied else f"deadline reached with {result.players_at_cutover} online"
        st.note = f"{result.players_at_cutover} online at cut-over ({how}; {count} when the countdown began)"
        return {**result.as_json(), "summary": f"{how} after {cd.short(st.waited_s)}"}

    return Step("drain", "let the players leave: in-game countdown in maintenance mode, until nobody is online "
                "or the drain time is up", check, plan, run, after=("build", "secrets"),
                fix="see the message above; `inv players` shows who is online",
                bypass="deploy with --drain 0 --yes to restart without waiting")


@dataclass
class Ending:
    """How the deploy ended, as far as maintenance mode is concerned (set by deploy.full)."""

    why: str = ""
    rolled_back: bool = False


@contextmanager
def maintenance_ends(ctx: DeployContext, deployed: Callable[[], bool]) -> Iterator[Ending]:
    """Maintenance mode never stays on by accident: turned off on every way out (see module doc).

    `deployed()` says whether the new release went out; a rollback (`ending.rolled_back`) undoes that."""
    st = state_of(ctx)
    ending = Ending()
    try:
        yield ending
    except KeyboardInterrupt:
        ending.why = ending.why or "the deploy was interrupted"
        raise
    except BaseException:
        ending.why = ending.why or "the deploy failed"
        raise
    finally:
        if st.maintenance_on:
            live = deployed() and not ending.rolled_back
            with cleanup_after_interrupt():  # these calls must run after Ctrl-C too
                _end_maintenance(ctx, st, live=live, why=ending.why or "the deploy did not finish")


def _end_maintenance(ctx: DeployContext, st: DrainState, *, live: bool, why: str) -> None:
    portal = Portal(ctx.settings, ctx.executor)
    ui = ctx.ui
    if not live:
        message = cd.cancelled(st.reason, why)
        try:
            portal.set_maintenance(False)
            ui.info(f"announce: {message}")
            portal.announce(message)
            st.ended = f"turned off, cancellation announced ({why})"
            st.maintenance_on = False
            ui.ok(f"maintenance mode is off again and players were told the restart is cancelled ({why})")
        except PortalUnavailable as e:
            st.ended = f"COULD NOT turn it off: {e.message}"
            ui.error(f"maintenance mode may still be on: {e.message} Turn it off with `inv maintenance.off`.")
        return
    try:
        portal.set_maintenance(False)
        st.ended = "off (the new release is live)"
    except PortalUnavailable as e:  # the new release starts with it off; say so, do not fail the deploy
        st.ended = f"not confirmed off on the new release: {e.message}"
        ui.warn(f"could not confirm maintenance mode is off on the new release: {e.message} "
                "(`inv maintenance.off` turns it off)")
    st.maintenance_on = False


def summary_rows(ctx: DeployContext) -> list[tuple[str, str]]:
    st = ctx.facts.get(FACT)
    if not isinstance(st, DrainState):
        return []
    rows: list[tuple[str, str]] = []
    if st.note:
        rows.append(("players", st.note))
    elif st.before is not None and st.before.players and not st.before.went_on:
        rows.append(("players", f"{st.before.players} online before the deploy (the drain step did not run)"))
    elif st.before is not None:
        rows.append(("players", st.before.summary()))
    if st.result is not None or st.waited_s:
        rows.append(("drain", f"waited {cd.short(st.waited_s)} of {cd.short(st.drain_s)}"))
    if st.ended:
        rows.append(("maintenance", st.ended))
    return rows
