"""Command handlers, one module per command group. A handler takes a Ctx and returns the exit code."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# command path -> (module, function)
ROUTES = {
    "": ("basics", "root_version"),
    "version": ("basics", "version"),
    "auth whoami": ("basics", "whoami"),
    "auth logout": ("basics", "logout"),
    "apps list": ("apps", "apps_list"),
    "apps create": ("apps", "apps_create"),
    "apps destroy": ("apps", "apps_destroy"),
    "postgres create": ("postgres", "pg_create"),
    "postgres attach": ("postgres", "pg_attach"),
    "postgres backup enable": ("postgres", "backup_enable"),
    "postgres backup create": ("postgres", "backup_create"),
    "postgres backup list": ("postgres", "backup_list"),
    "mpg create": ("mpg", "mpg_create"),
    "mpg list": ("mpg", "mpg_list"),
    "mpg status": ("mpg", "mpg_status"),
    "mpg attach": ("mpg", "mpg_attach"),
    "mpg proxy": ("mpg", "mpg_proxy"),
    "mpg backup create": ("mpg", "backup_create"),
    "mpg backup list": ("mpg", "backup_list"),
    "mpg restore": ("mpg", "mpg_restore"),
    "postgres backup restore": ("postgres", "backup_restore"),
    "ips list": ("ips", "ips_list"),
    "ips allocate": ("ips", "allocate_interactive"),
    "ips allocate-v4": ("ips", "allocate_v4"),
    "ips allocate-v6": ("ips", "allocate_v6"),
    "ips release": ("ips", "ips_release"),
    "secrets list": ("secrets", "secrets_list"),
    "secrets import": ("secrets", "secrets_import"),
    "secrets unset": ("secrets", "secrets_unset"),
    "secrets deploy": ("secrets", "secrets_deploy"),
    "deploy": ("deploy", "deploy"),
    "releases": ("deploy", "releases"),
    "status": ("deploy", "status"),
    "image show": ("deploy", "image_show"),
    "scale memory": ("deploy", "scale_memory"),
    "scale count": ("deploy", "scale_count"),
    "machine list": ("deploy", "machine_list"),
    "machine destroy": ("deploy", "machine_destroy"),
    "machine restart": ("machines", "machine_restart"),
    "machine stop": ("machines", "machine_stop"),
    "machine start": ("machines", "machine_start"),
    "tokens create deploy": ("machines", "tokens_create_deploy"),
    "logs": ("deploy", "logs"),
    "ssh console": ("ssh", "ssh_console"),
    "proxy": ("proxy", "proxy"),
}


def handler_for(path: str) -> Callable[[Any], int] | None:
    route = ROUTES.get(path)
    if route is None:
        return None
    module = importlib.import_module(f"{__name__}.{route[0]}")
    return getattr(module, route[1])  # type: ignore[no-any-return]
