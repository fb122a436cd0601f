"""fly version, fly auth whoami / logout."""

from __future__ import annotations

import json

from ..context import Ctx


def version(ctx: Ctx) -> int:
    fly = ctx.read()["flyctl"]
    if ctx.json:
        ctx.say(json.dumps({"Name": "flyctl", "Version": fly["version"], "Commit": fly["commit"],
                            "BranchName": "", "BuildDate": fly["build_date"], "OS": "linux",
                            "Architecture": "amd64", "Environment": "production"}))
    else:
        ctx.say(f"flyctl v{fly['version']} linux/amd64 Commit: {fly['commit']} BuildDate: {fly['build_date']}")
    return 0


def root_version(ctx: Ctx) -> int:  # `fly --version`
    return version(ctx)


def whoami(ctx: Ctx) -> int:
    email = ctx.read()["auth"].get("email", "pilot@example.com")
    if ctx.json:
        ctx.emit_json({"email": email})
    else:
        ctx.say(email)
    return 0


def logout(ctx: Ctx) -> int:
    with ctx.tx() as state:
        state["auth"]["logged_in"] = False
    ctx.say("Session removed")
    return 0
