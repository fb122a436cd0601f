"""The one source of truth: every name, port, size and path the toolkit uses.

Values come from, in order: the process environment, the checkout's `.env`, this project's `.env`,
then the defaults below. Every generated file and every check reads a `Settings`, so a port changed
here changes the Dockerfile, fly.toml, the health controller and verify together.
`.env.example` is generated from `FIELDS` (and a test keeps it in step).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bezgelor_tasks.errors import UserError

APP_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Ports:
    portal: int
    auth: int
    realm: int
    world: int

    def game(self) -> dict[str, int]:
        """The three raw-TCP game servers, by service name."""
        return {"auth": self.auth, "realm": self.realm, "world": self.world}

    def all(self) -> dict[str, int]:
        return {"portal": self.portal, **self.game()}


@dataclass(frozen=True)
class Settings:
    root: Path = _setting("BEZGELOR_ROOT", ".", "The Bezgelor checkout (umbrella root). Tasks also take --root.")
    app: str = _setting("BEZGELOR_FLY_APP", "bezgelor", "Fly app that runs the portal and the three game servers.")
    db_app: str = _setting("BEZGELOR_FLY_DB_APP", "bezgelor-db", "Fly Postgres app.")
    org: str = _setting("BEZGELOR_FLY_ORG", "personal", "Fly organization slug that owns both apps.")
    region: str = _setting("BEZGELOR_FLY_REGION", "sjc", "Fly primary region.")
    release_name: str = _setting(
        "BEZGELOR_RELEASE_NAME", "bezgelor", "Name of the Elixir release (mix.exs releases/0).")
    dev_only_apps: tuple[str, ...] = _setting(
        "BEZGELOR_DEV_ONLY_APPS", ("bezgelor_dev",), "Comma-separated umbrella apps left out of the release."
    )
    portal_app: str = _setting("BEZGELOR_PORTAL_APP", "bezgelor_portal", "Umbrella app that serves HTTP.")
    db_otp_app: str = _setting("BEZGELOR_DB_APP", "bezgelor_db", "Umbrella app that owns the Ecto repo.")
    data_app: str = _setting("BEZGELOR_DATA_APP", "bezgelor_data", "Umbrella app whose priv/ holds the game data.")
    portal_port: int = _setting("BEZGELOR_PORTAL_PORT", 4000, "Phoenix portal HTTP port (internal).")
    auth_port: int = _setting("BEZGELOR_AUTH_PORT", 6600, "Auth server TCP port.")
    realm_port: int = _setting("BEZGELOR_REALM_PORT", 23115, "Realm server TCP port.")
    world_port: int = _setting("BEZGELOR_WORLD_PORT", 24000, "World server TCP port.")
    vm_cpus: int = _setting("BEZGELOR_VM_CPUS", 2, "CPUs of the game machine.")
    vm_cpu_kind: str = _setting("BEZGELOR_VM_CPU_KIND", "shared", "shared or performance.")
    vm_memory_mb: int = _setting("BEZGELOR_VM_MEMORY_MB", 4096, "Memory of the game machine in MB.")
    health_grace_period_s: int = _setting(
        "BEZGELOR_HEALTH_GRACE_PERIOD", 60,
        "Seconds Fly waits before health checks count (Fly clamps check durations to 60s; longer boots are "
        "covered by the deploy wait timeout and our health gate).",
    )
    elixir_version: str = _setting("BEZGELOR_ELIXIR_VERSION", "1.17.3", "Elixir of the build image.")
    otp_version: str = _setting("BEZGELOR_OTP_VERSION", "27.2", "Erlang/OTP of the build image.")
    debian_version: str = _setting("BEZGELOR_DEBIAN_VERSION", "bookworm-20241202-slim", "Debian tag of both images.")
    image_source: str = _setting(
        "BEZGELOR_IMAGE_SOURCE", "https://github.com/Bezgelor/bezgelor", "OCI source label of the image."
    )
    pg_vm_size: str = _setting("BEZGELOR_PG_VM_SIZE", "shared-cpu-1x", "VM size of the Postgres machine.")
    pg_vm_memory_mb: int = _setting(
        "BEZGELOR_PG_VM_MEMORY_MB", 1024, "Postgres machine memory (>= 512 for `fly postgres backup enable`)."
    )
    pg_volume_gb: int = _setting("BEZGELOR_PG_VOLUME_GB", 10, "Postgres volume size in GB.")
    pg_cluster_size: int = _setting("BEZGELOR_PG_CLUSTER_SIZE", 1, "Postgres initial cluster size.")
    pg_flavor: str = _setting("BEZGELOR_PG_FLAVOR", "flex", "flex (fly postgres) or mpg (Managed Postgres).")
    db_name: str = _setting("BEZGELOR_DB_NAME", "bezgelor", "Database name inside the Postgres app.")
    db_user: str = _setting("BEZGELOR_DB_USER", "postgres", "Database user for backups and restores.")
    deploy_wait_timeout_s: int = _setting("BEZGELOR_DEPLOY_WAIT_TIMEOUT", 600, "Seconds `fly deploy` waits for checks.")
    health_timeout_s: int = _setting("BEZGELOR_HEALTH_TIMEOUT", 300, "Seconds the health gate waits for all-ok.")
    health_interval_s: float = _setting("BEZGELOR_HEALTH_INTERVAL", 5.0, "Seconds between health-gate polls.")
    health_url: str = _setting("BEZGELOR_HEALTH_URL", "", "Health URL; empty means https://<app>.fly.dev/health.")
    flyctl: str = _setting("BEZGELOR_FLYCTL", "fly", "flyctl executable (fly or flyctl, or a path).")
    command_timeout_s: int = _setting("BEZGELOR_COMMAND_TIMEOUT", 900, "Upper bound for any one external command.")
    backup_dir: str = _setting(
        "BEZGELOR_BACKUP_DIR", ".bezgelor/backups", "Where local backups go (relative to the checkout).")
    backup_keep_daily_days: int = _setting("BEZGELOR_BACKUP_KEEP_DAILY", 7, "Days daily backups are kept.")
    backup_keep_monthly_months: int = _setting(
        "BEZGELOR_BACKUP_KEEP_MONTHLY", 3, "Months first-of-month backups are kept.")
    drain: str = _setting(
        "BEZGELOR_DRAIN", "10m",
        "deploy.full waits up to this long for players to leave (in-game countdown); 0 = do not wait.")
    drain_marks: tuple[str, ...] = _setting(
        "BEZGELOR_DRAIN_MARKS", ("10m", "5m", "1m", "30s", "10s"),
        "Comma-separated times before the restart at which the countdown is announced in game.")
    drain_poll_s: float = _setting("BEZGELOR_DRAIN_POLL", 5.0, "Seconds between player counts while draining.")
    drain_reason: str = _setting(
        "BEZGELOR_DRAIN_REASON", "a server update", "Why the server restarts, as announced in game.")
    rpc_timeout_s: int = _setting(
        "BEZGELOR_RPC_TIMEOUT", 60, "Seconds a remote console call (`bin/<release> rpc`) may take.")

    @property
    def ports(self) -> Ports:
        return Ports(self.portal_port, self.auth_port, self.realm_port, self.world_port)

    @property
    def health_paths(self) -> tuple[str, ...]:
        """Routes the health controller serves; force_ssl must not redirect them."""
        return ("/health", "/api/health", "/livez")

    @property
    def hostname(self) -> str:
        return f"{self.app}.fly.dev"

    @property
    def public_health_url(self) -> str:
        return self.health_url or f"https://{self.hostname}/health"

    @property
    def state_dir(self) -> Path:
        """`.bezgelor/` in the checkout: journal, lock, database password, backups. Gitignored."""
        return self.root / ".bezgelor"

    @property
    def backups_path(self) -> Path:
        p = Path(self.backup_dir)
        return p if p.is_absolute() else self.root / p

    def release_path(self) -> str:
        return f"/app/_build/prod/rel/{self.release_name}"

    def validate(self) -> None:
        for name in (self.app, self.db_app):
            if not APP_NAME_RE.match(name):
                raise UserError(
                    f"The Fly app name {name!r} is not valid: Fly app names are 3-63 characters of lowercase "
                    "letters, digits and dashes, starting and ending with a letter or digit. "
                    "Set BEZGELOR_FLY_APP / BEZGELOR_FLY_DB_APP in .env (for example BEZGELOR_FLY_APP=my-bezgelor)."
                )
        if self.pg_flavor not in ("flex", "mpg"):
            raise UserError(f"BEZGELOR_PG_FLAVOR={self.pg_flavor!r} is not known: use flex or mpg.")
        if self.vm_cpu_kind not in ("shared", "performance"):
            raise UserError(f"BEZGELOR_VM_CPU_KIND={self.vm_cpu_kind!r} is not known: use shared or performance.")
        from bezgelor_tasks.game.countdown import check_drain_settings

        check_drain_settings(self)
        if len(set(self.ports.all().values())) != 4:
            raise UserError(f"The four ports must differ, got {self.ports.all()}: fix the BEZGELOR_*_PORT settings.")


FIELDS = [f for f in fields(Settings)]


def _convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if isinstance(default, Path) or name == "root":
            return Path(raw)
        return raw
    except ValueError:
        raise UserError(
            f"Setting {name} has the value {raw!r}, which is not a {type(default).__name__}: "
            f"fix it in the environment or .env (default {default!r})."
        ) from None


def load(root: str | Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from environment, `.env` files and defaults; `root` (a --root flag) wins over BEZGELOR_ROOT."""
    env = dict(os.environ if environ is None else environ)
    layered: dict[str, str] = {}
    for dotenv in (Path.cwd() / ".env",):
        if dotenv.is_file():
            layered.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    layered.update(env)
    root_path = Path(root) if root else Path(layered.get("BEZGELOR_ROOT", "."))
    checkout_env = root_path / ".env"
    if checkout_env.is_file() and checkout_env.resolve() != (Path.cwd() / ".env").resolve():
        from_checkout = {k: v for k, v in dotenv_values(checkout_env).items() if v is not None}
        layered = {**from_checkout, **layered}
    values: dict[str, Any] = {}
    for f in FIELDS:
        key = f.metadata["env"]
        if f.name == "root":
            values["root"] = root_path.resolve()
        elif key in layered and layered[key] != "":
            values[f.name] = _convert(key, layered[key], f.default)
    values.update(overrides)
    return Settings(**values)


def env_example() -> str:
    """The text of `.env.example`: every setting, its default and what it is for."""
    lines = [
        "# bezgelor-tasks settings. Copy to .env and change what differs; the environment wins over .env.",
        "# No secret values belong here: secrets live on Fly (inv secrets.set NAME).",
        "",
    ]
    for f in FIELDS:
        default = f.default
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        lines.append(f"# {f.metadata['doc']}")
        lines.append(f"{f.metadata['env']}={shown}")
        lines.append("")
    lines.append("# flyctl reads FLY_API_TOKEN for CI deploys (set it in your CI's secret store, not here).")
    return "\n".join(lines) + "\n"
