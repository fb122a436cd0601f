"""flyctl commands as data: pure builders returning `command.Command`, no I/O. This module holds the one way a
flyctl command is built (`build`) and the app's own commands: apps, scaling, IPs, deploys and releases, ssh,
machines and logs. The database's are in postgres_commands.py, the secrets' in secret_commands.py, those people
run by hand in operator_commands.py; all build theirs with `build`.

Every builder passes each value as a flag (flyctl prompts, and fails, when it is not on a TTY and a
value is missing), `--yes` where the command has it, and `-a <app>` where the command takes it.
flyctl runs in the checkout root because it reads `./fly.toml` there. Read-only queries are
`mutates=False`: they run under --dry-run and may be retried. Secret values only ever travel on stdin.
"""

from __future__ import annotations

from collections.abc import Mapping

from bezgelor_tasks.command import Command
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.settings import Settings

BASE_ENV: Mapping[str, str] = {"FLY_NO_UPDATE_CHECK": "1"}
READ_RETRIES = 1  # one retry for read-only queries: the Fly API has transient hiccups


FLYCTL_INSTALL = ("install it (https://fly.io/docs/flyctl/install/: `curl -L https://fly.io/install.sh | sh`), "
                  "put it on PATH, or set BEZGELOR_FLYCTL to its path.")


def build(settings: Settings, *args: str, purpose: str, mutates: bool = True, stdin: str | None = None,
          secret_stdin: bool = False, env: Mapping[str, str] | None = None, timeout: float | None = None,
          retries: int | None = None, public_stdin_names: frozenset[str] = frozenset(),
          stream: bool = False, interactive: bool = False) -> Command:
    """A flyctl command with the defaults every builder shares (commands.py, postgres_commands.py,
    secret_commands.py, operator_commands.py): the checkout as working directory, no update check, retries
    for read-only queries, the install hint when flyctl is missing."""
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
    return build(settings, "version", "--json", purpose="read the flyctl version", mutates=False, retries=0)


def whoami(settings: Settings) -> Command:
    return build(settings, "auth", "whoami", "--json", purpose="check the Fly login", mutates=False, retries=0)


def apps_list(settings: Settings) -> Command:
    return build(settings, "apps", "list", "--json", "--org", settings.org, purpose="list the Fly apps",
                 mutates=False)


def apps_create(settings: Settings, name: str | None = None) -> Command:
    app = name or settings.app
    return build(settings, "apps", "create", app, "--org", settings.org, "--yes", purpose=f"create the Fly app {app}")


def scale_memory(settings: Settings, mb: int, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "scale", "memory", str(int(mb)), "-a", target,
                 purpose=f"set the memory of {target}'s machines to {int(mb)} MB")


def scale_vm(settings: Settings, size: str, memory_mb: int, app: str | None = None) -> Command:
    """A bigger VM size: `fly scale memory` cannot go past 2 GB per shared CPU."""
    target = app or settings.app
    return build(settings, "scale", "vm", size, "--vm-memory", str(int(memory_mb)), "-a", target,
                 purpose=f"move {target}'s machines to {size} with {int(memory_mb)} MB")


# --- the app's IP addresses --------------------------------------------------------------------------

def ips_list(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "ips", "list", "--json", "-a", target, purpose=f"list the IP addresses of {target}",
                 mutates=False)


def ips_allocate_v4(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "ips", "allocate-v4", "-a", target, "--yes",
                 purpose=f"allocate a dedicated IPv4 for {target} (raw TCP game ports need one)")


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
    return build(settings, *args, purpose=purpose, env={"FLY_EMIT_RELEASE_JSON": "1"}, timeout=timeout, stream=True)


def releases(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "releases", "--image", "--json", "-a", target, purpose=f"list the releases of {target}",
                 mutates=False)


def status(settings: Settings, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "status", "--json", "-a", target, purpose=f"read the status of {target}", mutates=False)


def ssh_command(settings: Settings, app: str | None, remote_command: str, *, mutates: bool = True,
                purpose: str = "") -> Command:
    target = app or settings.app
    return build(settings, "ssh", "console", "-a", target, "-C", remote_command,
                 purpose=purpose or f"run `{remote_command}` on {target}", mutates=mutates, retries=0)


# --- machines and logs ------------------------------------------------------------------------------

def machine_destroy(settings: Settings, machine_id: str, app: str | None = None) -> Command:
    """Destroy one machine (`--force`: it is running). The way back to one game world."""
    target = app or settings.app
    return build(settings, "machine", "destroy", machine_id, "--force", "-a", target,
                 purpose=f"destroy the extra machine {machine_id} of {target}")


def logs(settings: Settings, app: str | None = None, machine: str | None = None) -> Command:
    """The buffered recent log lines (`--no-tail`: return instead of following). flyctl has no --since."""
    target = app or settings.app
    extra = ("--machine", machine) if machine else ()
    return build(settings, "logs", "--no-tail", "-a", target, *extra, purpose=f"read the recent logs of {target}",
                 mutates=False, retries=0)


# --- keeping the world up: machines, the watcher's app (issue 16; its token: operator_commands.py) ------------

def machine_restart(settings: Settings, machine_id: str, app: str | None = None) -> Command:
    """Restart one machine the way Fly stops it for a deploy: SIGTERM (the BEAM stops cleanly on it), then
    BEZGELOR_KILL_TIMEOUT seconds before SIGKILL. `--skip-health-checks`: our own game-level health gate
    follows (Fly's checks see only /health); flyctl's `--signal` takes a name since 2024 (it parsed a number)."""
    target = app or settings.app
    return build(settings, "machine", "restart", machine_id, "-a", target, "--signal", "SIGTERM",
                 "--time", str(int(settings.kill_timeout_s)), "--skip-health-checks",
                 purpose=f"restart {target}'s machine {machine_id}", timeout=settings.kill_timeout_s + 360)


def machine_stop(settings: Settings, machine_id: str, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "machine", "stop", machine_id, "-a", target, "--signal", "SIGTERM",
                 "--timeout", str(int(settings.kill_timeout_s)),
                 purpose=f"stop {target}'s machine {machine_id}", timeout=settings.kill_timeout_s + 120)


def machine_start(settings: Settings, machine_id: str, app: str | None = None) -> Command:
    target = app or settings.app
    return build(settings, "machine", "start", machine_id, "-a", target,
                 purpose=f"start {target}'s machine {machine_id}", timeout=360)


def apps_destroy(settings: Settings, app: str) -> Command:
    return build(settings, "apps", "destroy", app, "--yes", purpose=f"destroy the Fly app {app}")


def deploy_app_from(settings: Settings, app: str, context_dir: str, config: str) -> Command:
    """`fly deploy` of a small app of ours (the watcher) from a build context with its own fly.toml."""
    return build(settings, "deploy", context_dir, "-a", app, "--config", config, "--remote-only", "--ha=false",
                 "--yes", purpose=f"build and deploy {app}", timeout=settings.command_timeout_s, stream=True)
