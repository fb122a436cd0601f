"""flyctl commands as data: pure builders returning `run.Command`, no I/O.

Every builder passes each value as a flag (flyctl prompts, and fails, when it is not on a TTY and a
value is missing), `--yes` where the command has it, and `-a <app>` where the command takes it.
flyctl runs in the checkout root because it reads `./fly.toml` there. Read-only queries are
`mutates=False`: they run under --dry-run and may be retried. Secret values only ever travel on stdin.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.settings import Settings

BASE_ENV: Mapping[str, str] = {"FLY_NO_UPDATE_CHECK": "1"}
POSTGRES_PORT = 5432
SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
READ_RETRIES = 1  # one retry for read-only queries: the Fly API has transient hiccups


FLYCTL_INSTALL = ("install it (https://fly.io/docs/flyctl/install/: `curl -L https://fly.io/install.sh | sh`), "
                  "put it on PATH, or set BEZGELOR_FLYCTL to its path.")


def _fly(settings: Settings, *args: str, purpose: str, mutates: bool = True, stdin: str | None = None,
         secret_stdin: bool = False, env: Mapping[str, str] | None = None, timeout: float | None = None,
         retries: int | None = None, public_stdin_names: frozenset[str] = frozenset(),
         stream: bool = False, interactive: bool = False) -> Command:
    return Command(
        argv=(settings.flyctl, *args),
        purpose=purpose,
        env={**BASE_ENV, **(env or {})},
        stdin=stdin,
        cwd=settings.root,
        timeout=timeout,
        retries=(READ_RETRIES if not mutates else 0) if retries is None else retries,
        mutates=mutates,
        secret_stdin=secret_stdin,
        public_stdin_names=public_stdin_names,
        tool="flyctl",
        install=FLYCTL_INSTALL,
        stream=stream,
        interactive=interactive,
    )


# --- account and apps -------------------------------------------------------------------------------

def version(settings: Settings) -> Command:
    return _fly(settings, "version", "--json", purpose="read the flyctl version", mutates=False, retries=0)


def whoami(settings: Settings) -> Command:
    return _fly(settings, "auth", "whoami", "--json", purpose="check the Fly login", mutates=False, retries=0)


def apps_list(settings: Settings) -> Command:
    return _fly(settings, "apps", "list", "--json", "--org", settings.org, purpose="list the Fly apps",
                mutates=False)


def apps_create(settings: Settings, name: str | None = None) -> Command:
    app = name or settings.app
    return _fly(settings, "apps", "create", app, "--org", settings.org, "--yes", purpose=f"create the Fly app {app}")


def scale_memory(settings: Settings, mb: int, app: str | None = None) -> Command:
    target = app or settings.app
    return _fly(settings, "scale", "memory", str(int(mb)), "-a", target,
                purpose=f"set the memory of {target}'s machines to {int(mb)} MB")


def scale_vm(settings: Settings, size: str, memory_mb: int, app: str | None = None) -> Command:
    """A bigger VM size: `fly scale memory` cannot go past 2 GB per shared CPU."""
    target = app or settings.app
    return _fly(settings, "scale", "vm", size, "--vm-memory", str(int(memory_mb)), "-a", target,
                purpose=f"move {target}'s machines to {size} with {int(memory_mb)} MB")


# --- Postgres ---------------------------------------------------------------------------------------

def postgres_create(settings: Settings) -> Command:
    """The output holds the database password: the caller must never show it."""
    return _fly(settings, "postgres", "create",
                "--name", settings.db_app,
                "--region", settings.region,
                "--org", settings.org,
                "--initial-cluster-size", str(settings.pg_cluster_size),
                "--vm-size", settings.pg_vm_size,
                "--volume-size", str(settings.pg_volume_gb),
                "--vm-memory", str(settings.pg_vm_memory_mb),
                # Fly's API picks the major otherwise (15-18): a pinned one is a client we can name
                "--image-ref", flex_image(settings.pg_create_major),
                *(("--enable-backups",) if settings.pg_vm_memory_mb >= FLY_BACKUPS_MIN_MB else ()),
                purpose=f"create the Postgres app {settings.db_app}", stream=True)


FLY_BACKUPS_MIN_MB = 512  # barman-cloud backups to Tigris need this much on the Postgres machines
FLEX_IMAGE = "flyio/postgres-flex"


def flex_image(major: int) -> str:
    return f"{FLEX_IMAGE}:{major}"


def image_show(settings: Settings, app: str | None = None) -> Command:
    """The image of each machine (`Repository`, `Tag`): a Flex machine's tag is its PostgreSQL major."""
    target = app or settings.db_app
    return _fly(settings, "image", "show", "-a", target, "--json", purpose=f"read the image of {target}'s machines",
                mutates=False)


def postgres_backup_restore(settings: Settings, new_app: str, *, target_time: str | None = None,
                            target_name: str | None = None) -> Command:
    """Fly-side restore (barman) into a new Postgres app: a point in time (RFC 3339) or a backup name."""
    extra: tuple[str, ...] = ()
    if target_time:
        extra = ("--restore-target-time", target_time)
    elif target_name:
        extra = ("--restore-target-name", target_name)
    return _fly(settings, "postgres", "backup", "restore", new_app, "-a", settings.db_app,
                "--image-ref", flex_image(settings.pg_create_major), *extra,
                purpose=f"restore {settings.db_app}'s Fly-side backup into the new Postgres app {new_app}")


def postgres_attach(settings: Settings, pg_app: str | None = None) -> Command:
    source = pg_app or settings.db_app
    return _fly(settings, "postgres", "attach", source, "-a", settings.app, "--yes",
                purpose=f"attach {source} to {settings.app} (sets DATABASE_URL)")


def postgres_backup_create(settings: Settings, name: str | None = None) -> Command:
    extra = ("--name", name) if name else ()
    return _fly(settings, "postgres", "backup", "create", "-a", settings.db_app, *extra,
                purpose=f"take a Fly-side backup of {settings.db_app}")


def postgres_backup_list(settings: Settings) -> Command:
    return _fly(settings, "postgres", "backup", "list", "-a", settings.db_app,
                purpose=f"list the Fly-side backups of {settings.db_app}", mutates=False)


def postgres_backup_enable(settings: Settings) -> Command:
    return _fly(settings, "postgres", "backup", "enable", "-a", settings.db_app,
                purpose=f"enable Fly-side backups of {settings.db_app}")


def mpg_create(settings: Settings, name: str | None = None) -> Command:
    """Polls until the cluster is ready; its output holds the connection string with the password."""
    cluster = name or settings.db_app
    return _fly(settings, "mpg", "create", "--name", cluster, "--region", settings.region, "--org", settings.org,
                "--plan", settings.mpg_plan, "--volume-size", str(settings.pg_volume_gb),
                "--pg-major-version", str(settings.pg_create_major),
                purpose=f"create the Managed Postgres cluster {cluster}", timeout=1800)


def mpg_list(settings: Settings) -> Command:
    return _fly(settings, "mpg", "list", "--org", settings.org, "--json", mutates=False, timeout=120,
                purpose="list the Managed Postgres clusters")


def mpg_attach(settings: Settings, cluster_id: str, app: str | None = None,
               variable: str = "DATABASE_URL") -> Command:
    """Sets `variable` on the app to the cluster's pooled (PgBouncer) URI; refuses when it exists."""
    target = app or settings.app
    return _fly(settings, "mpg", "attach", cluster_id, "-a", target, "--variable-name", variable,
                purpose=f"attach Managed Postgres cluster {cluster_id} to {target} (sets {variable})")


def mpg_proxy(settings: Settings, cluster_id: str, local_port: int = 0) -> Command:
    return _fly(settings, "mpg", "proxy", cluster_id, "--local-port", str(int(local_port)),
                purpose=f"forward a local port to Managed Postgres cluster {cluster_id}", mutates=False, retries=0)


def mpg_restore(settings: Settings, cluster_id: str, *, backup_id: str | None = None,
                pitr_time: str | None = None, name: str | None = None) -> Command:
    """Always into a new cluster (named `name`); exactly one of backup_id / pitr_time (RFC 3339)."""
    if (backup_id is None) == (pitr_time is None):
        raise UserError("A Managed Postgres restore needs exactly one of a backup id or a point in time.",
                        fix="pass --backup-id ID (see `inv db.backups`) or --point-in-time 2026-06-01T12:00:00Z.")
    what = ("--backup-id", backup_id) if backup_id else ("--pitr-time", str(pitr_time))
    return _fly(settings, "mpg", "restore", cluster_id, *what, *(("--name", name) if name else ()),
                purpose=f"restore Managed Postgres cluster {cluster_id} into a new cluster", timeout=300)


def mpg_status(settings: Settings, cluster_id: str) -> Command:
    """The cluster and its credentials (user, password, pgbouncer_uri): the output is secret."""
    return _fly(settings, "mpg", "status", cluster_id, "--json", mutates=False, timeout=120,
                purpose=f"read the status and credentials of Managed Postgres cluster {cluster_id}")


def ssh_printenv(settings: Settings, name: str, app: str | None = None) -> Command:
    """A variable as the app's running machine sees it (its secrets included): the output is secret."""
    if not SECRET_NAME_RE.match(name):
        raise UserError(f"{name!r} is not a valid variable name.", fix="use letters, digits and underscores.")
    target = app or settings.app
    return replace(ssh_command(settings, target, f"printenv {name}", mutates=False,
                               purpose=f"read {name} as {target}'s machine sees it"), timeout=120)


def mpg_backup_list(settings: Settings, cluster_id: str) -> Command:
    return _fly(settings, "mpg", "backup", "list", cluster_id, "--json", mutates=False, timeout=120,
                purpose=f"list the Managed Postgres backups of cluster {cluster_id}")


def mpg_backup_create(settings: Settings, cluster_id: str, kind: str = "full") -> Command:
    return _fly(settings, "mpg", "backup", "create", cluster_id, "--type", kind,
                purpose=f"take a Managed Postgres backup of cluster {cluster_id}")


# --- network ----------------------------------------------------------------------------------------

def ips_list(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return _fly(settings, "ips", "list", "--json", "-a", target, purpose=f"list the IP addresses of {target}",
                mutates=False)


def ips_allocate_v4(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return _fly(settings, "ips", "allocate-v4", "-a", target, "--yes",
                purpose=f"allocate a dedicated IPv4 for {target} (raw TCP game ports need one)")


def proxy(settings: Settings, pg_app: str | None = None, local_port: int = 0) -> Command:
    target = pg_app or settings.db_app
    return _fly(settings, "proxy", f"{int(local_port)}:{POSTGRES_PORT}", "-a", target,
                purpose=f"forward a local port to {target}'s Postgres", mutates=False, retries=0)


# --- secrets ----------------------------------------------------------------------------------------

def secrets_list(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return _fly(settings, "secrets", "list", "--json", "-a", target, purpose=f"list the secret names of {target}",
                mutates=False)


def _protect(value: str) -> str:
    """Quote a value that `fly secrets import` would otherwise change (it strips blanks, then one pair of quotes)."""
    wrapped = len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"
    if value != value.strip() or wrapped:
        quote = "'" if value.startswith('"') or value.endswith('"') else '"'
        return f"{quote}{value}{quote}"
    return value


def secret_lines(values: Mapping[str, str]) -> str:
    """`NAME=VALUE` lines for `fly secrets import` (it strips quotes and knows no escapes)."""
    lines = []
    for name, value in values.items():
        if not SECRET_NAME_RE.match(name):
            raise UserError(f"{name!r} is not a valid secret name.",
                            fix="use letters, digits and underscores, not starting with a digit (e.g. CLOAK_KEY).")
        if "\n" in value or "\r" in value:
            raise UserError(f"The value of {name} spans several lines, which `fly secrets import` cannot take.",
                            fix="put the value on one line (base64-encode it if it is binary).")
        if not value:
            raise UserError(f"The value of {name} is empty.", fix=f"give {name} a non-empty value.")
        lines.append(f"{name}={_protect(value)}")
    return "\n".join(lines) + "\n"


# Set as Fly secrets for convenience but not secret: the game servers' public IPv4.
PUBLIC_SECRET_NAMES = frozenset({"WORLD_PUBLIC_ADDRESS"})


def secrets_import(settings: Settings, values: Mapping[str, str], stage: bool = True,
                   app: str | None = None) -> Command:
    target = app or settings.app
    names = ", ".join(sorted(values))
    return _fly(settings, "secrets", "import", "-a", target, *(("--stage",) if stage else ()),
                stdin=secret_lines(values), secret_stdin=True, public_stdin_names=PUBLIC_SECRET_NAMES,
                purpose=f"set the secret(s) {names} on {target}" + (" (staged, no restart)" if stage else ""))


def secrets_deploy(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return _fly(settings, "secrets", "deploy", "-a", target,
                purpose=f"restart {target}'s machines with its staged secrets")


def secrets_unset(settings: Settings, *names: str, app: str | None = None, stage: bool = True) -> Command:
    target = app or settings.app
    if not names:
        raise UserError("No secret name given to unset.", fix="name the secret, e.g. OLD_KEY.")
    return _fly(settings, "secrets", "unset", *names, "-a", target, *(("--stage",) if stage else ()),
                purpose=f"remove the secret(s) {', '.join(names)} from {target}")


# --- deploys and releases ---------------------------------------------------------------------------

def deploy(settings: Settings, version: str, *, image: str | None = None, build_only: bool = False,
           image_label: str | None = None, labels: Mapping[str, str] | None = None,
           wait_timeout: int | None = None, app: str | None = None) -> Command:
    """`fly deploy`: build-only (`--build-only --push`), from an image (rollback), or build-and-deploy."""
    target = app or settings.app
    wait = settings.deploy_wait_timeout_s if wait_timeout is None else int(wait_timeout)
    args: list[str] = ["deploy", "-a", target]
    if image:
        if build_only:
            raise UserError("A deploy cannot both build an image and deploy an existing one.",
                            fix="pass either image= or build_only=True.")
        args += ["--image", image]
    else:
        args += ["--remote-only", "--build-arg", f"APP_VERSION={version}"]
        if image_label:
            args += ["--image-label", image_label]
        for key, value in (labels or {}).items():
            args += ["--label", f"{key}={value}"]
    if build_only:
        args += ["--build-only", "--push"]
        purpose = f"build and push the image of {version}"
        timeout: float = settings.command_timeout_s
    else:
        # --ha=false: flyctl's default (--ha) gives a process group without machines a second one, and
        # two machines behind one IPv4 are two separate game worlds.
        args += ["--strategy", "rolling", "--wait-timeout", f"{wait}s", "--ha=false"]
        purpose = f"roll {target} to the image {image}" if image else f"build and deploy {version}"
        # The command also waits for every machine's checks; leave room for the build on top.
        timeout = max(settings.command_timeout_s, wait + settings.command_timeout_s)
    args.append("--yes")
    return _fly(settings, *args, purpose=purpose, env={"FLY_EMIT_RELEASE_JSON": "1"}, timeout=timeout, stream=True)


def releases(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return _fly(settings, "releases", "--image", "--json", "-a", target, purpose=f"list the releases of {target}",
                mutates=False)


def status(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return _fly(settings, "status", "--json", "-a", target, purpose=f"read the status of {target}", mutates=False)


def ssh_command(settings: Settings, app: str | None, remote_command: str, *, mutates: bool = True,
                purpose: str = "") -> Command:
    target = app or settings.app
    return _fly(settings, "ssh", "console", "-a", target, "-C", remote_command,
                purpose=purpose or f"run `{remote_command}` on {target}", mutates=mutates, retries=0)


# --- machines and logs ------------------------------------------------------------------------------

def machine_destroy(settings: Settings, machine_id: str, app: str | None = None) -> Command:
    """Destroy one machine (`--force`: it is running). The way back to one game world."""
    target = app or settings.app
    return _fly(settings, "machine", "destroy", machine_id, "--force", "-a", target,
                purpose=f"destroy the extra machine {machine_id} of {target}")


def logs(settings: Settings, app: str | None = None, machine: str | None = None) -> Command:
    """The buffered recent log lines (`--no-tail`: return instead of following). flyctl has no --since."""
    target = app or settings.app
    extra = ("--machine", machine) if machine else ()
    return _fly(settings, "logs", "--no-tail", "-a", target, *extra, purpose=f"read the recent logs of {target}",
                mutates=False, retries=0)


# --- keeping the world up: machines, the watcher's app and token (issue 16) -------------------------------

def machine_restart(settings: Settings, machine_id: str, app: str | None = None) -> Command:
    """Restart one machine the way Fly stops it for a deploy: SIGTERM (the BEAM stops cleanly on it), then
    BEZGELOR_KILL_TIMEOUT seconds before SIGKILL. `--skip-health-checks`: our own game-level health gate
    follows (Fly's checks see only /health); flyctl's `--signal` takes a name since 2024 (it parsed a number)."""
    target = app or settings.app
    return _fly(settings, "machine", "restart", machine_id, "-a", target, "--signal", "SIGTERM",
                "--time", str(int(settings.kill_timeout_s)), "--skip-health-checks",
                purpose=f"restart {target}'s machine {machine_id}", timeout=settings.kill_timeout_s + 360)


def machine_stop(settings: Settings, machine_id: str, app: str | None = None) -> Command:
    target = app or settings.app
    return _fly(settings, "machine", "stop", machine_id, "-a", target, "--signal", "SIGTERM",
                "--timeout", str(int(settings.kill_timeout_s)),
                purpose=f"stop {target}'s machine {machine_id}", timeout=settings.kill_timeout_s + 120)


def machine_start(settings: Settings, machine_id: str, app: str | None = None) -> Command:
    target = app or settings.app
    return _fly(settings, "machine", "start", machine_id, "-a", target,
                purpose=f"start {target}'s machine {machine_id}", timeout=360)


def apps_destroy(settings: Settings, app: str) -> Command:
    return _fly(settings, "apps", "destroy", app, "--yes", purpose=f"destroy the Fly app {app}")


def deploy_app_from(settings: Settings, app: str, context_dir: str, config: str) -> Command:
    """`fly deploy` of a small app of ours (the watcher) from a build context with its own fly.toml."""
    return _fly(settings, "deploy", context_dir, "-a", app, "--config", config, "--remote-only", "--ha=false",
                "--yes", purpose=f"build and deploy {app}", timeout=settings.command_timeout_s, stream=True)


# The other builder modules (operator_commands.py) build their commands with the same defaults.
build = _fly
