"""The docs area: docs/fly-*.md written for the checkout, and the user's own Markdown read for flyctl lines.

Every command line in the generated docs is rendered from the builders that run them (fly/commands.py,
postgres_commands.py, secret_commands.py, operator_commands.py), so flags and flavors follow by construction:
`fly deploy` carries `--ha=false`, `fly postgres create` its `--image-ref` and `--enable-backups`, and with
BEZGELOR_PG_FLAVOR=mpg the docs show `fly mpg`. Placeholders are written <LikeThis>. The prose is in
templates/docs/*.md (the one template engine, render.py).

The user's Markdown (people read it; nothing runs it) gets at most one summarised note about flyctl
lines that flyctl would refuse or that break our rules, so it never buries the real errors.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from bezgelor_tasks import units
from bezgelor_tasks.areas.fly_toml_spec import check_grace_period_s
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.checks.findings import Finding, info
from bezgelor_tasks.command import Command
from bezgelor_tasks.files import FileChange, generated_change, marker_intact
from bezgelor_tasks.fly import commands, postgres_commands, secret_commands
from bezgelor_tasks.fly import operator_commands as operator
from bezgelor_tasks.fly.command_lines import fly_lines, judge
from bezgelor_tasks.pg_flavor import DIRECT_URL_VARIABLE, release_command, repo_runtime_options
from bezgelor_tasks.release_image import db_release_call
from bezgelor_tasks.render import render
from bezgelor_tasks.settings import Settings

DEPLOYMENT = "docs/fly-deployment.md"
BACKUP = "docs/fly-backup-strategy.md"
ROLLBACK = "docs/fly-rollback.md"
GENERATED_NOTE = ("*Written by bezgelor-tasks (`inv init`) from your BEZGELOR_* settings. Edit it freely; "
                  "`inv init` then asks before replacing it.*")
LOCAL_PORT = 15432
SECRETS_FILE = "bezgelor-secrets.env"
DIRECT_FILE = "direct-url.env"
_PLAIN_WORD = re.compile(r"^[\w@%+=:,./<>$-]+$")


def shell_line(cmd: Command, stdin_from: str = "") -> str:
    """A builder's command as a person types it: `fly ...`, <Placeholders> unquoted, stdin from a file."""
    words = ["fly", *(w if _PLAIN_WORD.match(w) else shlex.quote(w) for w in cmd.argv[1:])]
    if cmd.stdin is not None:
        words.append(f"< {stdin_from}")
    return " ".join(words)


def _database_commands(s: Settings) -> dict[str, Command | tuple[Command, str]]:
    direct = secret_commands.secrets_import(s, {DIRECT_URL_VARIABLE: "<DirectUri>"})
    unset = secret_commands.secrets_unset(s, "DATABASE_URL", *((DIRECT_URL_VARIABLE,) if s.pg_flavor == "mpg" else ()))
    if s.pg_flavor == "mpg":
        return {
            "mpg_create": postgres_commands.mpg_create(s), "mpg_list": postgres_commands.mpg_list(s),
            "mpg_status": postgres_commands.mpg_status(s, "<ClusterId>"),
            "mpg_attach": postgres_commands.mpg_attach(s, "<ClusterId>"), "direct_url_import": (direct, DIRECT_FILE),
            "mpg_attach_new": postgres_commands.mpg_attach(s, "<NewClusterId>"),
            "backup_create": postgres_commands.mpg_backup_create(s, "<ClusterId>"),
            "backup_list": postgres_commands.mpg_backup_list(s, "<ClusterId>"),
            "proxy": postgres_commands.mpg_proxy(s, "<ClusterId>", LOCAL_PORT),
            "restore": postgres_commands.mpg_restore(s, "<ClusterId>", backup_id="<BackupId>", name="<NewCluster>"),
            "restore_pitr": postgres_commands.mpg_restore(s, "<ClusterId>", pitr_time="<Time>", name="<NewCluster>"),
            "secrets_unset": unset, "secrets_deploy": secret_commands.secrets_deploy(s),
        }
    return {
        "postgres_create": postgres_commands.postgres_create(s),
        "postgres_attach": postgres_commands.postgres_attach(s),
        "postgres_attach_new": postgres_commands.postgres_attach(s, "<NewDbApp>"),
        "volume_snapshots": operator.volume_snapshots(s, "<VolumeId>"),
        "backup_create": postgres_commands.postgres_backup_create(s),
        "backup_list": postgres_commands.postgres_backup_list(s),
        "backup_enable": postgres_commands.postgres_backup_enable(s),
        "scale_db_memory": commands.scale_memory(s, max(s.pg_vm_memory_mb, 1024), s.db_app),
        "proxy": postgres_commands.proxy(s, s.db_app, LOCAL_PORT),
        "restore": postgres_commands.postgres_backup_restore(s, "<NewDbApp>"),
        "restore_pitr": postgres_commands.postgres_backup_restore(s, "<NewDbApp>", target_time="<Time>"),
        "secrets_unset": unset, "secrets_deploy": secret_commands.secrets_deploy(s),
    }


def doc_commands(s: Settings) -> dict[str, str]:
    """Every command line the docs show, by name, rendered from the builders."""
    built: dict[str, Command | tuple[Command, str]] = {
        "auth_login": operator.auth_login(s), "apps_create": commands.apps_create(s),
        "ips_allocate_v4": commands.ips_allocate_v4(s), "ips_list": commands.ips_list(s),
        "secrets_import": (secret_commands.secrets_import(s, {"SECRET_KEY_BASE": "<Value>"}), SECRETS_FILE),
        "secrets_list": secret_commands.secrets_list(s),
        "deploy": commands.deploy(s, "<Version>"), "deploy_image": commands.deploy(s, "", image="<ImageRef>"),
        "status": commands.status(s), "logs": commands.logs(s), "releases": commands.releases(s),
        "scale_memory": commands.scale_memory(s, s.vm_memory_mb + 2048),
        "remote_console": operator.remote_console(s),
        "migrate_status": commands.ssh_command(s, None, db_release_call(s, "status()"), mutates=False),
        "migrate_rollback": commands.ssh_command(s, None, db_release_call(s, 'rollback_to("<OldestVersionToRevert>")')),
        "scale_to_zero": operator.scale_count(s, 0), "scale_to_one": operator.scale_count(s, 1),
        "apps_restart": operator.apps_restart(s),
        **_database_commands(s),
    }
    return {name: shell_line(*c) if isinstance(c, tuple) else shell_line(c) for name, c in built.items()}


def _values(s: Settings) -> dict[str, Any]:
    mpg = s.pg_flavor == "mpg"
    repo = repo_runtime_options(s.pg_flavor)
    database = (f"A Managed Postgres cluster, `{s.db_app}`, holds the database." if mpg else
                f"A Fly Postgres app, `{s.db_app}`, holds the database.")
    return {"s": s, "mpg": mpg, "cmd": doc_commands(s), "generated_note": GENERATED_NOTE,
            "memory": units.human_memory(s.vm_memory_mb), "grace": check_grace_period_s(s),
            "game_ports": list(s.ports.game().items()), "database_sentence": database,
            "release_command": release_command(s.pg_flavor), "health_path": s.health_paths[0],
            "repo_sentence": repo.why_ssl + " The pool pings idle connections and keeps TCP keepalive on: Fly's "
            "proxy closes connections that carry nothing.", "local_port": LOCAL_PORT,
            "db_user": "<User>" if mpg else s.db_user, "db_name": "<Database>" if mpg else s.db_name}


def _markdown_generated(co: Checkout, rel: str, body: str, why: str) -> FileChange:
    # The marker line opens an HTML comment that the body's first line closes, so it stays invisible.
    return generated_change(co.path(rel), rel, "-->\n" + body, why, comment="<!--")


def docs_changes(co: Checkout) -> list[FileChange]:
    values = _values(co.settings)
    return [_markdown_generated(co, rel, render(f"docs/{Path(rel).name}", **values), why) for rel, why in (
        (DEPLOYMENT, "how to deploy: inv deploy.full and its flyctl"),
        (BACKUP, "backup layers and schedule, restore procedures"),
        (ROLLBACK, "rolling back the app image and migrations"))]


def _user_markdown(root: Path) -> list[Path]:
    return sorted(p for p in (*root.glob("docs/**/*.md"), *root.glob("*.md")) if p.is_file())


def check(ctx: CheckContext) -> list[Finding]:
    """One note for flyctl lines in the user's Markdown that flyctl refuses or that break our rules."""
    lines: dict[str, list[int]] = {}
    for path in _user_markdown(ctx.co.root):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "fly" not in text or marker_intact(text):
            continue
        for found in fly_lines(text, "markdown"):
            if judge(found.argv):
                lines.setdefault(ctx.rel(path), [])
                if found.line not in lines[ctx.rel(path)]:
                    lines[ctx.rel(path)].append(found.line)
    if not lines:
        return []
    n = sum(len(v) for v in lines.values())
    where = "; ".join(f"{rel}:{','.join(map(str, nos[:4]))}{'…' if len(nos) > 4 else ''}"
                      for rel, nos in sorted(lines.items()))
    return [info(sorted(lines)[0], None, f"{n} command line(s) in your Markdown docs are flyctl commands flyctl "
                 "refuses or that do harm (`fly secrets set NAME=value` leaks secrets, `fly ips allocate` is "
                 f"interactive, `fly deploy` without --ha=false starts a second world, ...): {where}. Nothing runs "
                 "them, so they do not block a deploy", "when you next edit those docs, point readers at "
                 "`inv secrets.set`, `inv ips.allocate`, `inv rollback.app` and `inv db.restore` (the generated "
                 "docs/fly-*.md already do)", "docs.prose-commands")]
