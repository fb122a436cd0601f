"""`inv secrets.*`: list, check, set and rotate the app's Fly secrets. Values travel on stdin only."""

from __future__ import annotations

import sys
from typing import Any

from invoke import task

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.tasks._common import ROOT_HELP, session, user_task

JSON_HELP = "Print one JSON document on stdout."
DRY_HELP = "Show the flyctl command without running it."
NOW_HELP = "Apply now (restarts the machines) instead of staging for the next deploy."

CLOAK_ROTATION = (
    "CLOAK_KEY encrypts data already in the database: replacing it makes every encrypted column unreadable. "
    "Rotate it with a Cloak key-rotation migration instead: 1) add the new key as a second cipher and make it "
    "the default (`ciphers: [default: {Cloak.Ciphers.AES.GCM, tag: \"AES.GCM.V2\", key: new}, retired: "
    "{Cloak.Ciphers.AES.GCM, tag: \"AES.GCM.V1\", key: old}]`) while keeping the old one for decryption; "
    "2) deploy; 3) re-encrypt every row (`Cloak.Ecto.Migrator.migrate(Repo, Schema)` for each encrypted "
    "schema); 4) only then drop the old cipher and its secret."
)
NOT_GENERATED = {
    "DATABASE_URL": "it is set by `fly postgres attach` (inv deploy.full does it); change the database "
                    "password on the Postgres app first, then `inv secrets.set DATABASE_URL`.",
    "WORLD_PUBLIC_ADDRESS": "it is the app's dedicated IPv4 (`inv ips.list`), not a random value; "
                            "set it with `inv secrets.set WORLD_PUBLIC_ADDRESS`.",
}


def _read_value(name: str) -> str:
    """The secret from a hidden prompt on a terminal, else from stdin (first line). Never from argv."""
    import getpass

    if sys.stdin is not None and sys.stdin.isatty():
        value = getpass.getpass(f"Value for {name} (hidden): ")
    else:
        value = sys.stdin.read() if sys.stdin is not None else ""
        value = value.rstrip("\r\n")
    if not value.strip():
        raise UserError(f"No value was given for {name}.",
                        fix=f"type it at the prompt, or pipe it: `printf %s \"$VALUE\" | inv secrets.set {name}`.")
    return value


@task(name="list", help={"root": ROOT_HELP, "json_": JSON_HELP})
@user_task
def list_(c: Any, root: str | None = None, json_: bool = False) -> None:
    """List the app's secret names, digests and status (never values)."""
    from bezgelor_tasks.fly.client import FlyClient

    s = session(root, json_mode=json_)
    found = FlyClient(s.settings, s.executor).secrets(s.settings.app)
    if json_:
        s.ui.emit_json([{"name": x.name, "digest": x.digest, "status": x.status} for x in found])
        return
    if not found:
        s.ui.info(f"{s.settings.app} has no secrets yet.")
    for x in sorted(found, key=lambda x: x.name):
        s.ui.line(f"{x.name:<28} {x.status:<10} {x.digest}")


@task(help={"root": ROOT_HELP, "json_": JSON_HELP})
@user_task
def check(c: Any, root: str | None = None, json_: bool = False) -> None:
    """Check that every secret the release needs is set on Fly; exit 1 if one is missing."""
    from bezgelor_tasks.fly.client import FlyClient
    from bezgelor_tasks.fly.secret_names import secret_names

    s = session(root, json_mode=json_)
    names = secret_names(s.settings)
    if not names.read_runtime_exs:
        why = ("the checkout has none" if not (s.settings.root / "config" / "runtime.exs").is_file() else
               "Elixir is not installed, or the file does not parse: `inv verify` says which")
        s.ui.warn(f"config/runtime.exs was not read ({why}): checking only the secrets every Bezgelor release needs")
    present = {x.name: x for x in FlyClient(s.settings, s.executor).secrets(s.settings.app)}
    missing = [n for n in names.required if n not in present]
    optional_missing = [n for n in names.optional if n not in present]
    staged = [n for n in names.required if n in present and present[n].status.lower() == "staged"]
    if json_:
        s.ui.emit_json({"app": s.settings.app, "required": list(names.required), "missing": missing,
                        "optional_missing": optional_missing, "staged": staged, "ok": not missing,
                        "read_runtime_exs": names.read_runtime_exs})
    else:
        for n in names.required:
            if n in missing:
                s.ui.error(f"{n} is not set on {s.settings.app}")
            else:
                s.ui.ok(f"{n} ({present[n].status})")
        for n in optional_missing:
            s.ui.info(f"{n} is read by config/runtime.exs but optional, and not set")
        for n in staged:
            s.ui.info(f"{n} is staged: it applies with the next deploy")
    if missing:
        raise UserError(f"{len(missing)} required secret(s) missing on {s.settings.app}: {', '.join(missing)}.",
                        fix="set each with `inv secrets.set NAME` (DATABASE_URL comes from `inv deploy.full`'s "
                            "database attach).")


@task(name="set", help={"name": "Secret name, e.g. CLOAK_KEY (the value is prompted for or read from stdin).",
                        "root": ROOT_HELP, "now": NOW_HELP, "dry_run": DRY_HELP})
@user_task
def set_(c: Any, name: str, root: str | None = None, now: bool = False, dry_run: bool = False) -> None:
    """Set one secret; the value comes from a hidden prompt or stdin, never the command line."""
    from bezgelor_tasks.fly.client import FlyClient

    s = session(root, dry_run=dry_run)
    value = _read_value(name)
    FlyClient(s.settings, s.executor).import_secrets(s.settings.app, {name: value}, stage=not now)
    if dry_run:
        return
    s.ui.ok(f"{name} set on {s.settings.app}" + ("" if now else " (staged: it applies with the next deploy)"))


@task(help={"name": "Secret to rotate (SECRET_KEY_BASE; CLOAK_KEY is refused with the safe procedure).",
            "root": ROOT_HELP, "now": NOW_HELP, "dry_run": DRY_HELP})
@user_task
def rotate(c: Any, name: str, root: str | None = None, now: bool = False, dry_run: bool = False) -> None:
    """Replace a generated secret with a fresh random value."""
    from bezgelor_tasks.deploy.secretgen import secret_key_base
    from bezgelor_tasks.fly.client import FlyClient

    if name == "CLOAK_KEY":
        raise UserError(f"Refusing to rotate CLOAK_KEY in place. {CLOAK_ROTATION}",
                        fix="follow the four steps above; `inv secrets.set` can then add the new key's secret.")
    if name in NOT_GENERATED:
        raise UserError(f"{name} cannot be rotated to a random value: {NOT_GENERATED[name]}")
    if name != "SECRET_KEY_BASE":
        raise UserError(f"Only SECRET_KEY_BASE has a known random format to rotate to, not {name}.",
                        fix=f"put the new value in with `inv secrets.set {name}`.")
    s = session(root, dry_run=dry_run)
    s.ui.warn("Rotating SECRET_KEY_BASE signs every session and cookie anew: all players and admins are "
              "logged out of the portal" + (" now." if now else " when the next deploy applies it."))
    value = secret_key_base()          # the one generator deploy.full uses too
    FlyClient(s.settings, s.executor).import_secrets(s.settings.app, {name: value}, stage=not now)
    if not dry_run:
        s.ui.ok(f"{name} rotated on {s.settings.app}" + ("" if now else " (staged)"))
