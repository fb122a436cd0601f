"""Run flyctl commands through the executor and turn their output into records.

`FlyClient` is the only place that knows how flyctl phrases its errors: each known phrase becomes a
`UserError` naming the fix. The builders (`commands.py`, `postgres_commands.py`,
`secret_commands.py`) stay pure; this module does the I/O.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping

from bezgelor_tasks import redact
from bezgelor_tasks.command import Command, Result
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import has_marker
from bezgelor_tasks.fly import commands, postgres_commands, records, secret_commands
from bezgelor_tasks.fly.records import IP, App, AppStatus, MigrationStatus, Release, Secret, Version, WhoAmI
from bezgelor_tasks.processes import Background
from bezgelor_tasks.release_image import (
    MIGRATE,
    db_release_call,
    db_release_module,
    db_release_module_file,
    db_release_module_text,
)
from bezgelor_tasks.run import Executor
from bezgelor_tasks.settings import Settings

PROXY_READY = r"Proxying (?:localhost|127\.0\.0\.1|\[::1\]):(\d+)"

_NOT_LOGGED_IN = re.compile(r"no access token available|not logged in|must be authenticated|"
                            r"unauthorized|authentication required", re.I)
_NAME_TAKEN = re.compile(r"name has already been taken|is already taken", re.I)
_APP_MISSING = re.compile(r"could not find app|app not found|could not resolve app", re.I)
_MISSING_NAME = re.compile(r'could not find app "([^"]+)"', re.I)
_ALREADY_ATTACHED = re.compile(r"already contains a secret named DATABASE_URL", re.I)
_RELEASE_COMMAND = re.compile(r"release command failed", re.I)
_CHECKS_TIMEOUT = re.compile(r"timeout reached waiting for health checks", re.I)
_SSH_EXIT = re.compile(r"ssh shell: Process exited with status (\d+)", re.I)
_BUILD_IMAGE = re.compile(r"^\s*image:\s*(\S+)", re.M)


# Read-only queries whose answer is cached for the rest of the run until something changes the account.
# Not `ssh` (runs code in the machine), `logs` (always new lines) or `proxy` (a live tunnel).
_CACHEABLE = frozenset({"version", "auth", "apps", "status", "releases", "secrets", "ips"})


class FlyClient:
    """flyctl for one run. Observe once, then act: a read-only query (`fly status`, `releases`,
    `secrets list`...) is asked once and its answer reused, until any changing command runs."""

    def __init__(self, settings: Settings, executor: Executor) -> None:
        self.settings = settings
        self.executor = executor
        self._cache: dict[tuple[str, ...], Result] = {}
        self._generation = 0  # bumped around every changing command: a read that overlapped one is not kept
        self._cache_lock = threading.Lock()
        # A changing command run through the same executor but not through this client (a Managed Postgres
        # attach, a restore plan) changes the account too: forget what was read before it.
        executor.observers.append(lambda cmd, result: self.forget() if cmd.mutates and not result.dry_run else None)

    def forget(self) -> None:
        """Drop every cached answer (something outside this client may have changed the account)."""
        with self._cache_lock:
            self._cache.clear()
            self._generation += 1

    @staticmethod
    def _cache_key(cmd: Command) -> tuple[str, ...] | None:
        if cmd.mutates or cmd.stdin is not None or len(cmd.argv) < 2 or cmd.argv[1] not in _CACHEABLE:
            return None
        return (str(cmd.cwd), *cmd.argv)

    # --- plumbing -----------------------------------------------------------------------------------

    @property
    def dry_run(self) -> bool:
        return self.executor.dry_run

    def run(self, cmd: Command, *, app: str | None = None, check: bool = True) -> Result:
        """Run a flyctl command; known failures become UserErrors with fixes. Reads are cached (above)."""
        key = self._cache_key(cmd)
        with self._cache_lock:
            cached = self._cache.get(key) if key else None
            generation = self._generation
        if cached is not None:
            return cached
        changes = cmd.mutates and not self.dry_run
        if changes:
            self.forget()
        try:
            result = self.executor.run(cmd, check=False)
        finally:
            if changes:
                self.forget()
        if key and result.ok:
            with self._cache_lock:
                if generation == self._generation:
                    self._cache[key] = result
        if check and not result.ok:
            raise self.explain(result, app=app)
        return result

    def explain(self, result: Result, *, app: str | None = None) -> UserError:
        """The UserError for a failed flyctl command: a known cause and its fix, or the raw failure.
        The cause comes first (the headline); the command that said it follows."""
        text = f"{result.stderr}\n{result.stdout}"
        ran = f"(`{result.command.shown()}` failed)"
        target = app or self.settings.app
        if _NOT_LOGGED_IN.search(text):
            return UserError(f"flyctl is not logged in to Fly.io {ran}.",
                             fix="run `fly auth login` or set FLY_API_TOKEN (e.g. `fly tokens create deploy`).")
        if _NAME_TAKEN.search(text):
            return UserError(f"The Fly app name {target!r} is already taken (names are global across all Fly "
                             f"users) {ran}.",
                             fix="choose another BEZGELOR_FLY_APP (or BEZGELOR_FLY_DB_APP) in .env and retry.")
        if _APP_MISSING.search(text):
            named = _MISSING_NAME.search(text)
            target = named.group(1) if named else target
            return UserError(f"Fly has no app named {target!r} that you can see {ran}.",
                             fix="check BEZGELOR_FLY_APP / BEZGELOR_FLY_ORG and `fly auth whoami`, or create "
                                 "the app with `inv deploy.full`.")
        if _RELEASE_COMMAND.search(text):
            return UserError(f"The release command (/app/bin/migrate) failed, so no machine was updated {ran}.",
                             fix=f"read the migration error with `fly logs -a {target}`, fix the migration, "
                                 "then deploy again (`inv db.status` shows what is applied).")
        if _CHECKS_TIMEOUT.search(text):
            return UserError(f"The machines did not pass their health checks in time {ran}.",
                             fix=f"see `inv deploy.status` and `fly logs -a {target}`; roll back with "
                                 "`inv rollback.app` if the previous release was healthy.")
        return self.executor.failure(result)

    # --- account and apps ---------------------------------------------------------------------------

    def version(self) -> Version:
        return records.parse_version(self.run(commands.version(self.settings)).stdout)

    def whoami(self) -> WhoAmI:
        return records.parse_whoami(self.run(commands.whoami(self.settings)).stdout)

    def apps(self) -> list[App]:
        return records.parse_apps(self.run(commands.apps_list(self.settings)).stdout)

    def find_app(self, name: str) -> App | None:
        return next((a for a in self.apps() if a.name == name), None)

    def create_app(self, name: str | None = None) -> None:
        app = name or self.settings.app
        self.run(commands.apps_create(self.settings, app), app=app)

    def scale_memory(self, mb: int, app: str | None = None) -> None:
        target = app or self.settings.app
        self.run(commands.scale_memory(self.settings, mb, target), app=target)

    # --- Postgres -----------------------------------------------------------------------------------

    def postgres_create(self) -> str:
        """Create the Postgres app; returns flyctl's raw output, which holds the password (never show it).

        The password is registered with `redact` before anything can print it, errors included.
        """
        cmd = postgres_commands.postgres_create(self.settings)

        def register_credentials(line: str) -> None:  # streamed: make the password secret before it is shown
            redact.register(*records.postgres_credentials(line))

        self.forget()
        self.executor.line_watchers.append(register_credentials)
        try:
            result = self.executor.run(cmd, check=False)
        finally:
            self.executor.line_watchers.remove(register_credentials)
            self.forget()
        output = f"{result.stdout}\n{result.stderr}"
        password, url = records.postgres_credentials(output)
        redact.register(password, url)
        if not result.ok:
            raise self.explain(result, app=self.settings.db_app)
        return result.stdout

    def postgres_attach(self) -> bool:
        """Attach the database (sets DATABASE_URL); False when it was already attached."""
        result = self.run(postgres_commands.postgres_attach(self.settings), check=False)
        if result.ok:
            return True
        if _ALREADY_ATTACHED.search(f"{result.stderr}\n{result.stdout}"):
            return False
        raise self.explain(result)

    def postgres_backup_create(self, name: str | None = None) -> Result:
        return self.run(postgres_commands.postgres_backup_create(self.settings, name), app=self.settings.db_app)

    def postgres_backup_list(self) -> Result:
        return self.run(postgres_commands.postgres_backup_list(self.settings), app=self.settings.db_app)

    def postgres_backup_enable(self) -> Result:
        return self.run(postgres_commands.postgres_backup_enable(self.settings), app=self.settings.db_app)

    def mpg_backup_create(self, cluster_id: str) -> Result:
        return self.run(postgres_commands.mpg_backup_create(self.settings, cluster_id))

    def proxy(self, pg_app: str | None = None, local_port: int = 0, ready_timeout: float = 60.0) -> Background:
        """Start `fly proxy`; the bound local port is `int(bg.match.group(1))`. Stop it when done."""
        cmd = postgres_commands.proxy(self.settings, pg_app, local_port)
        return self.executor.spawn(cmd, ready=PROXY_READY, ready_timeout=ready_timeout)

    # --- network ------------------------------------------------------------------------------------

    def ips(self, app: str | None = None) -> list[IP]:
        target = app or self.settings.app
        return records.parse_ips(self.run(commands.ips_list(self.settings, target), app=target).stdout)

    def allocate_v4(self, app: str | None = None) -> None:
        target = app or self.settings.app
        self.run(commands.ips_allocate_v4(self.settings, target), app=target)

    # --- secrets ------------------------------------------------------------------------------------

    def secrets(self, app: str | None = None) -> list[Secret]:
        target = app or self.settings.app
        return records.parse_secrets(self.run(secret_commands.secrets_list(self.settings, target), app=target).stdout)

    def import_secrets(self, app: str | None, values: Mapping[str, str], stage: bool = True) -> None:
        target = app or self.settings.app
        redact.register(*(v for k, v in values.items() if k not in secret_commands.PUBLIC_SECRET_NAMES))
        self.run(secret_commands.secrets_import(self.settings, values, stage=stage, app=target), app=target)

    def unset_secret(self, app: str | None, *names: str, stage: bool = True) -> None:
        target = app or self.settings.app
        self.run(secret_commands.secrets_unset(self.settings, *names, app=target, stage=stage), app=target)

    # --- deploys and releases -----------------------------------------------------------------------

    def deploy_build(self, version: str, label: str, labels: Mapping[str, str] | None = None) -> str:
        """Build and push the image remotely (no release); returns its image reference.

        `labels` become Docker labels on the image (`--label KEY=VALUE`)."""
        result = self.run(commands.deploy(self.settings, version, build_only=True, image_label=label,
                                          labels=labels))
        emitted = records.parse_release_json(result.stdout)
        if emitted and emitted.image_ref:
            return emitted.image_ref
        found = _BUILD_IMAGE.findall(result.stdout + "\n" + result.stderr)
        return found[-1] if found else f"registry.fly.io/{self.settings.app}:{label}"

    def deploy_image(self, image_ref: str, version: str) -> records.ReleaseJson | None:
        """Roll the app to an existing image (also how a rollback is done); the emitted release, if any."""
        result = self.run(commands.deploy(self.settings, version, image=image_ref))
        return records.parse_release_json(result.stdout)

    def deploy_source(self, version: str, label: str | None = None) -> records.ReleaseJson | None:
        result = self.run(commands.deploy(self.settings, version, image_label=label))
        return records.parse_release_json(result.stdout)

    def destroy_machine(self, machine_id: str, app: str | None = None) -> None:
        target = app or self.settings.app
        self.run(commands.machine_destroy(self.settings, machine_id, target), app=target)

    def releases(self, app: str | None = None) -> list[Release]:
        target = app or self.settings.app
        return records.parse_releases(self.run(commands.releases(self.settings, target), app=target).stdout)

    def status(self, app: str | None = None) -> AppStatus:
        target = app or self.settings.app
        return records.parse_status(self.run(commands.status(self.settings, target), app=target).stdout)

    # --- inside the machine -------------------------------------------------------------------------

    def ssh(self, app: str | None, cmd: str, *, mutates: bool = True, purpose: str = "") -> Result:
        """Run a command in the app's machine; a non-zero remote exit becomes a UserError with its output."""
        target = app or self.settings.app
        command = commands.ssh_command(self.settings, target, cmd, mutates=mutates, purpose=purpose)
        result = self.run(command, app=target, check=False)
        if result.ok:
            return result
        remote = _SSH_EXIT.search(result.stderr + result.stdout)
        if remote:
            tail = " ".join(line.strip() for line in (result.stdout + "\n" + result.stderr).splitlines()
                            if line.strip() and not _SSH_EXIT.search(line))[-400:]
            raise UserError(
                f"`{cmd}` on {target} exited with status {remote.group(1)}: {redact.redact(tail) or 'no output'}",
                fix=f"read the full error with `fly logs -a {target}` and fix the cause, then retry.")
        raise self.explain(result, app=target)

    def _db_release_call(self, call: str, doing: str) -> str:
        """The remote command that runs our release module's `call`; refused when the checkout has none of ours
        (its own bin/migrate is never asked instead: it may migrate, and seed, whatever it is given)."""
        s = self.settings
        rel, module = db_release_module_file(s.db_otp_app), db_release_module(s.db_otp_app)
        text = db_release_module_text(s.root, s.db_otp_app)
        if not has_marker(text):
            whose = "is not there" if text is None else "is a module of your own"
            raise UserError(
                f"Cannot {doing}: the checkout has no {module} of bezgelor-tasks ({rel} {whose}), and bin/migrate "
                "is never asked instead (a checkout's own bin/migrate may migrate and seed whatever it is given).",
                fix=f"run `inv init` (it writes {module} with status/0 and rollback_to/1"
                    + (", beside your bin/migrate" if text is None else " once your module has another name")
                    + "), deploy, then run this again.")
        return db_release_call(s, call)

    def migration_status(self, app: str | None = None) -> MigrationStatus:
        """Every repo's migrations, from our release module's status/0 (BEZGELOR_MIGRATIONS line)."""
        cmd = self._db_release_call("status()", "read the migration status")
        result = self.ssh(app, cmd, mutates=False, purpose="read the migration status")
        return records.parse_migration_status(result.stdout + "\n" + result.stderr, cmd)

    def migrate(self, app: str | None = None) -> Result:
        return self.ssh(app, MIGRATE, purpose="run the database migrations")

    def db_rollback(self, app: str | None, version: int) -> Result:
        """Revert the first repo's migrations down to and including `version` (Ecto's `:down, to:`)."""
        cmd = self._db_release_call(f'rollback_to("{int(version)}")', f"roll the database back to {version}")
        result = self.ssh(app, cmd, purpose=f"roll the database back to {version}")
        if not result.dry_run and not records.rollback_confirmed(result.stdout + "\n" + result.stderr, int(version)):
            raise UserError(
                f"`{cmd}` finished without confirming the rollback (no `{records.ROLLBACK_MARKER} ok {version}` line).",
                fix="check `inv db.status`; redeploy a release built after `inv init` (its release module knows "
                    "rollback_to/1).")
        return result
