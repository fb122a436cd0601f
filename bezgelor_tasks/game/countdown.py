"""The in-game countdown before a restart: durations, the marks it announces, and the wait itself.

`countdown()` turns maintenance mode on, announces the restart at once and again at each mark
(10 min, 5 min, 1 min, 30 s, 10 s by default) with the reason, counts the players every poll, and
returns when nobody is left or at the deadline. It waits on an Event, so a Ctrl-C (which sets it)
stops it within one remote call. It never turns maintenance off: the caller's guard does that on
every exit path (see deploy/drain.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.ui import UI
from bezgelor_tasks.units import human, parse_duration, short

__all__ = ["human", "parse_duration", "short"]  # read here by the drain and its tests

if TYPE_CHECKING:
    from bezgelor_tasks.game.portal import Portal
    from bezgelor_tasks.settings import Settings

def marks_of(settings: Settings) -> tuple[float, ...]:
    return tuple(sorted({parse_duration(m, "BEZGELOR_DRAIN_MARKS entry") for m in settings.drain_marks},
                        reverse=True))


def check_drain_settings(settings: Settings) -> None:
    """Validated with the other settings, before anything is written."""
    parse_duration(settings.drain, "BEZGELOR_DRAIN")
    marks_of(settings)
    if settings.drain_poll_s <= 0:
        raise UserError(f"BEZGELOR_DRAIN_POLL={settings.drain_poll_s} must be a positive number of seconds.")
    if settings.rpc_timeout_s <= 0:
        raise UserError(f"BEZGELOR_RPC_TIMEOUT={settings.rpc_timeout_s} must be a positive number of seconds.")


# --- what players read --------------------------------------------------------------------------------

def restart_in(left: float, reason: str) -> str:
    return f"Server restart in {human(left)} for {reason}. Please finish what you are doing and log out."


def restarting_now(reason: str) -> str:
    return f"Server restarting now for {reason}."


def cancelled(reason: str, why: str) -> str:
    return f"The server restart for {reason} is cancelled ({why}): the server stays up, maintenance is over."


# --- the wait -----------------------------------------------------------------------------------------

class Cancelled(UserError):
    """Ctrl-C (or the caller) stopped the countdown."""

    def __init__(self) -> None:
        super().__init__("The countdown was interrupted (Ctrl-C) before the restart.")


@dataclass
class CountdownResult:
    players_at_start: int
    players_at_cutover: int
    waited_s: float
    emptied: bool                      # nobody left before the deadline
    announced: list[str] = field(default_factory=list)
    poll_errors: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"players_at_start": self.players_at_start, "players_at_cutover": self.players_at_cutover,
                "waited_s": round(self.waited_s, 2), "emptied": self.emptied, "announced": self.announced,
                "poll_errors": self.poll_errors}


def countdown(portal: Portal, ui: UI, *, players: int, drain_s: float, marks: tuple[float, ...], poll_s: float,
              reason: str, cancel: threading.Event, on_maintenance: Callable[[], None],
              clock: Callable[[], float] = time.monotonic) -> CountdownResult:
    """Maintenance on, announce, poll; return at zero players or at the deadline. Raises Cancelled."""
    from bezgelor_tasks.game.portal import PortalUnavailable

    start = clock()
    deadline = start + drain_s
    result = CountdownResult(players, players, 0.0, False)
    pending = [m for m in marks if m < drain_s]
    count = players

    def stop_if_cancelled() -> None:
        if cancel.is_set():
            raise Cancelled()

    def call(what: str, fn: Callable[[], Any]) -> None:
        nonlocal count
        try:
            status = fn()
        except PortalUnavailable as e:
            result.poll_errors += 1
            ui.warn(f"drain: could not {what}: {e.message} (counting on: {count} player(s) at the last count)")
            return
        if status is not None and status.count != count:
            ui.info(f"drain: {status.count} player(s) online, {short(max(0.0, deadline - clock()))} left")
            count = status.count

    def say(text: str) -> None:
        result.announced.append(text)
        ui.info(f"announce: {text}")
        call("announce", lambda: portal.announce(text))

    on_maintenance()  # before the call: if it is interrupted half-way, the guard still turns it off
    call("turn maintenance mode on", lambda: portal.set_maintenance(True))
    stop_if_cancelled()
    say(restart_in(drain_s, reason))
    while True:
        stop_if_cancelled()
        left = deadline - clock()
        if count == 0:
            result.emptied = True
            break
        if left <= 0:
            break
        due = [m for m in pending if left <= m]
        if due:
            pending = [m for m in pending if m not in due]
            say(restart_in(min(due), reason))
            continue
        next_mark = max(pending, default=0.0)
        if cancel.wait(max(0.0, min(poll_s, left - next_mark))):
            raise Cancelled()
        call("count the players", portal.poll)
    if count:
        say(restarting_now(reason))
    result.players_at_cutover = count
    result.waited_s = clock() - start
    return result
