"""Talk to the running world through `fly ssh console -C "/app/bin/<release> rpc ..."` (builders in rpc.py).

`Portal` runs the commands through the one executor and turns their output into `PortalStatus`;
a release without the API (an older Bezgelor) or a failed call becomes `PortalUnavailable`, which
says plainly which of the two it was. `confirm_disconnect()` is the question asked before anything
restarts the world without a countdown (deploy.full --drain 0, rollback.app, db.rollback).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.game import rpc
from bezgelor_tasks.game.rpc import PortalStatus
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings
from bezgelor_tasks.ui import UI, confirm


class PortalUnavailable(UserError):
    """The player count cannot be read (or a broadcast not sent): API absent, or the remote call failed."""

    def __init__(self, message: str, *, fix: str = "", absent: bool = False) -> None:
        self.absent = absent
        super().__init__(message, fix=fix)


class Portal:
    def __init__(self, settings: Settings, executor: Executor) -> None:
        from bezgelor_tasks.areas.release import settings_for

        # `bin/<release> rpc` names the release the checkout deploys (its own, when mix.exs defines one).
        self.settings = settings_for(settings)
        self.executor = executor
        # Polls during a countdown are not echoed (one line every few seconds would bury the output).
        self.quiet = Executor(ui=executor.ui, dry_run=executor.dry_run, echo=False,
                              default_timeout=executor.default_timeout)

    def _run(self, cmd: Command, *, players: bool = False, quiet: bool = False) -> PortalStatus | None:
        s = self.settings
        result = (self.quiet if quiet else self.executor).run(cmd, check=False)
        if result.dry_run:
            return None
        output = f"{result.stdout}\n{result.stderr}"
        try:
            status = rpc.parse(output, players=players)
        except rpc.PortalMissing as e:
            raise PortalUnavailable(
                f"{s.app}'s release answers, but has no {e} (an older Bezgelor): players cannot be counted "
                "or warned in game.",
                fix="update Bezgelor (its BezgelorWorld.Portal has online_player_count/0, "
                    "broadcast_system_message/1 and set_maintenance_mode/1)", absent=True) from None
        if result.ok and status is not None:
            return status
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        tail = " ".join(lines[-3:])[-400:] or "no output"
        raise PortalUnavailable(
            f"The remote console call to {s.app} failed (`bin/{s.release_name} rpc` through `fly ssh console`, "
            f"exit {result.returncode}): {tail}.",
            fix=f"check that {s.app} runs (`inv deploy.status`), that BEZGELOR_RELEASE_NAME={s.release_name} is "
                "its release, and that `fly ssh console` works")

    def read(self, *, players: bool = False, quiet: bool = False) -> PortalStatus | None:
        """The count (and the players, if asked). A read runs under --dry-run too (it changes nothing)."""
        return self._run(rpc.read(self.settings, players=players), players=players, quiet=quiet)

    def poll(self) -> PortalStatus | None:
        return self.read(quiet=True)

    def announce(self, text: str) -> PortalStatus | None:
        """Broadcast `text` to everyone online; None under --dry-run (nothing was sent)."""
        return self._run(rpc.announce(self.settings, text))

    def set_maintenance(self, on: bool) -> PortalStatus | None:
        return self._run(rpc.maintenance(self.settings, on))


@dataclass
class DisconnectCheck:
    """What was known about the players before a restart without a countdown, for the summary."""

    players: int | None           # None: unknown (API absent or the call failed)
    went_on: str = ""             # "--yes" or "asked": why we went on with players online (or unknown)
    reason: str = ""              # why the count is unknown

    def summary(self) -> str:
        if self.players is None:
            return f"count unknown ({self.reason}); went on without a countdown ({self.went_on})"
        if self.players == 0:
            return "nobody online"
        return f"{self.players} online were disconnected ({self.went_on})"

    def as_json(self) -> dict[str, Any]:
        return {"players": self.players, "went_on": self.went_on or None, "reason": self.reason or None}


def ask(question: str, refusal: UserError) -> None:
    """y/N on a terminal; without one, `refusal` (which names --yes)."""
    if not confirm(question, no_terminal=refusal):
        raise UserError("Stopped before changing anything.", fix="run again and answer y, or pass --yes.")


def confirm_disconnect(portal: Portal, ui: UI, *, yes: bool, action: str, hint: str = "",
                       dry_run: bool = False) -> DisconnectCheck:
    """Before `action` restarts the world with no countdown: count, say it, and ask (or --yes). A dry run
    counts and says it, and asks nothing (it disconnects no one)."""
    try:
        status = portal.read()
    except PortalUnavailable as e:
        ui.warn(f"players: {e.message}")
        if dry_run:
            return DisconnectCheck(None, "dry run", e.message.split(":")[0])
        if not yes:
            ask(f"Nobody online can be warned. Go on with {action} anyway?",
                UserError(f"{e.message} Without a player count, {action} goes on only with --yes.",
                          fix=f"{e.fix}; or pass --yes to go on without warning anyone"))
        check = DisconnectCheck(None, "--yes" if yes else "asked", e.message.split(":")[0])
        ui.warn(f"players: going on with {action} without a countdown ({check.went_on})")
        return check
    count = status.count if status is not None else 0
    if count == 0:
        ui.info("players: nobody online")
        return DisconnectCheck(0)
    ui.warn(f"players: {count} online; {action} disconnects them without warning{hint}")
    if dry_run:
        return DisconnectCheck(count, "dry run")
    if not yes:
        ask(f"Disconnect {count} player(s)?",
            UserError(f"{count} player(s) are online and {action} would disconnect them without warning, "
                      "and there is no terminal to ask on.",
                      fix=f"pass --yes to go on anyway{hint}, or warn them first with `inv announce \"...\"`"))
    return DisconnectCheck(count, "--yes" if yes else "asked")
