"""Entry point: check argv against flyctl's grammar, apply faults and auth, run the handler, log the call."""

from __future__ import annotations

import io
import os
import sys
import time
from typing import Any

from . import faults, tripwire
from .context import Ctx
from .errors import NOT_LOGGED_IN, FlyError
from .grammar import command_path, parse, usage
from .store import Home

# Commands flyctl runs without a session.
AUTH_FREE = {"", "version", "help", "auth logout"}


def main(argv: list[str]) -> int:
    argv = [os.path.basename(argv[0])] + list(argv[1:])
    home_dir = os.environ.get("FAKE_FLY_HOME")
    if not home_dir:
        sys.stderr.write("Error: fake flyctl: FAKE_FLY_HOME is not set (use the fake_fly pytest fixture)\n")
        return 1
    home = Home(home_dir)
    record: dict[str, Any] = {
        "argv": argv,
        "env_names": sorted(os.environ),
        "stdin_len": 0,
        "exit": None,
        "cwd": os.getcwd(),
        "cmd": command_path(argv),
        "t": time.time(),
    }
    code = 1
    try:
        code = run(argv, home, record)
    except KeyboardInterrupt:
        code = 127
    finally:
        record["exit"] = code
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        home.append_call(record)
    return code


def run(argv: list[str], home: Home, record: dict[str, Any]) -> int:
    try:
        parsed = parse(argv)
    except ValueError as e:
        record["invalid"] = str(e)
        sys.stdout.write(usage(record["cmd"]))
        sys.stderr.write(f"Error: {e}\n")
        return 1
    ctx = Ctx(argv=argv, path=parsed.path, flags=parsed.flags, pos=parsed.pos, env=dict(os.environ),
              cwd=os.getcwd(), home=home)
    try:
        code = dispatch(ctx, record)
    except FlyError as e:
        sys.stdout.flush()
        sys.stderr.write(f"Error: {e.message}\n")
        if e.suggestion:
            sys.stderr.write(f"\n{e.suggestion}\n")
        code = e.code
    record["stdin_len"] = ctx.stdin_len
    return code


def dispatch(ctx: Ctx, record: dict[str, Any]) -> int:
    if ctx.on("help") or ctx.path == "help" or (ctx.path == "" and not ctx.on("version")):
        ctx.out.write(usage(ctx.path if ctx.path != "help" else ""))
        return 0
    from .commands import handler_for

    handler = handler_for(ctx.path)
    if handler is None:
        raise FlyError(f'fake flyctl does not emulate "{ctx.path}"')

    if ctx.read().get("tripwire") and tripwire.changes(ctx.path, ctx.argv):
        record["tripwire"] = True
        raise FlyError(f"tripwire: `fly {ctx.path}` would change the Fly account, and the test said nothing may")
    garbage = apply_faults(ctx, record)
    if ctx.path not in AUTH_FREE and not logged_in(ctx):
        raise FlyError(NOT_LOGGED_IN)
    if not garbage:
        return handler(ctx)
    real_out, ctx.out = ctx.out, io.StringIO()
    try:
        handler(ctx)
    finally:
        text, ctx.out = ctx.out.getvalue(), real_out  # type: ignore[attr-defined]
    real_out.write(garbage if garbage is not True else (text[: len(text) // 2] or '{"'))
    return 0


def logged_in(ctx: Ctx) -> bool:
    if ctx.env.get("FLY_API_TOKEN") or ctx.env.get("FLY_ACCESS_TOKEN") or ctx.flag("access-token"):
        return True
    return bool(ctx.read()["auth"].get("logged_in"))


def apply_faults(ctx: Ctx, record: dict[str, Any]) -> Any:
    """Run the faults set for this command. Returns a false value, True (garbage: truncate the real
    output) or a string (garbage: print this instead)."""
    modes = {"fail_once", "fail_always", "hang", "garbage", "slow"}
    if not any(f.get("mode") in modes and faults.matches(f, ctx.path, ctx.argv) for f in ctx.read()["faults"]):
        return None
    with ctx.tx() as state:
        found = faults.take(state, ctx.path, ctx.argv, modes)
    garbage: Any = None
    for fault in found:
        record.setdefault("faults", []).append(fault["mode"])
        mode = fault["mode"]
        if mode == "slow":  # `latency` seconds, or until the test releases it (FakeFly.release_slow)
            until = time.monotonic() + float(fault.get("latency") or 1.0)
            while time.monotonic() < until and not ctx.read().get("slow_released"):
                time.sleep(0.1)
        elif mode == "hang":
            record["hung"] = True
            ctx.home.append_call(dict(record))
            sys.stdout.flush()
            while True:  # until killed
                time.sleep(3600)
        elif mode in ("fail_once", "fail_always"):
            raise FlyError(faults.error_text(fault, ctx.path))
        elif mode == "garbage":
            garbage = fault.get("error") or True
    return garbage
