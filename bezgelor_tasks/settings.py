"""The one source of truth: every name, port, size and path the toolkit uses, as the `Settings` dataclass.

Each field is one `BEZGELOR_*` variable: its name, its default, what it is for (`.env.example` is generated
from them, settings_variables.py) and the check of its value (settings_values.py). Every generated file and
every check reads a `Settings`, so a port changed here changes the Dockerfile, fly.toml, the health controller
and verify together. Tasks get theirs from settings_load.py (`load_checked`: the environment, then `.env`,
then these defaults, every value checked, completed by the checkout's own files). A new setting is a field
here with its check (or a function in settings_checks.CROSS_CHECKS when it is judged with others).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bezgelor_tasks import settings_values as value


def _setting(env: str, default: Any, doc: str, check: value.Check | None = None, *, secret: bool = False) -> Any:
    """A setting; `secret` ones (alert URLs with tokens in them) are masked in every message and output."""
    return field(default=default, metadata={"env": env, "doc": doc, "check": check, "secret": secret})


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
    app: str = _setting("BEZGELOR_FLY_APP", "bezgelor", "Fly app that runs the portal and the three game servers.",
                        value.app_name)
    db_app: str = _setting("BEZGELOR_FLY_DB_APP", "bezgelor-db", "Fly Postgres app.", value.app_name)
    org: str = _setting("BEZGELOR_FLY_ORG", "personal", "Fly organization slug that owns both apps.")
    region: str = _setting("BEZGELOR_FLY_REGION", "sjc", "Fly primary region.", value.region)
    release_name: str = _setting(
        "BEZGELOR_RELEASE_NAME", "bezgelor", "Name of the Elixir release (mix.exs releases/0) when the checkout's "
        "Dockerfile names none: the release the Dockerfile copies into the image wins.", value.elixir_name)
    dev_only_apps: tuple[str, ...] = _setting(
        "BEZGELOR_DEV_ONLY_APPS", ("bezgelor_dev",), "Comma-separated umbrella apps left out of the release.",
        value.elixir_names)
    portal_app: str = _setting("BEZGELOR_PORTAL_APP", "bezgelor_portal", "Umbrella app that serves HTTP.",
                               value.elixir_name)
    db_otp_app: str = _setting("BEZGELOR_DB_APP", "bezgelor_db", "Umbrella app that owns the Ecto repo.",
                               value.elixir_name)
    data_app: str = _setting("BEZGELOR_DATA_APP", "bezgelor_data", "Umbrella app whose priv/ holds the game data.",
                             value.elixir_name)
    portal_port: int = _setting("BEZGELOR_PORTAL_PORT", 4000, "Phoenix portal HTTP port (internal).", value.port)
    auth_port: int = _setting("BEZGELOR_AUTH_PORT", 6600, "Auth server TCP port.", value.port)
    realm_port: int = _setting("BEZGELOR_REALM_PORT", 23115, "Realm server TCP port.", value.port)
    world_port: int = _setting("BEZGELOR_WORLD_PORT", 24000, "World server TCP port.", value.port)
    vm_cpus: int = _setting("BEZGELOR_VM_CPUS", 2, "CPUs of the game machine.", value.positive)
    vm_cpu_kind: str = _setting("BEZGELOR_VM_CPU_KIND", "shared", "shared or performance.",
                                value.one_of("shared", "performance"))
    vm_memory_mb: int = _setting("BEZGELOR_VM_MEMORY_MB", 4096, "Memory of the game machine in MB.", value.positive)
    health_grace_period_s: int = _setting(
        "BEZGELOR_HEALTH_GRACE_PERIOD", 60,
        "Seconds Fly waits before health checks count (Fly clamps check durations to 60s; longer boots are "
        "covered by the deploy wait timeout and our health gate).",
        value.not_negative,
    )
    elixir_version: str = _setting(
        "BEZGELOR_ELIXIR_VERSION", "1.19.5", "Elixir of the build image (hexpm/elixir), >= what mix.exs requires.")
    otp_version: str = _setting("BEZGELOR_OTP_VERSION", "28.5", "Erlang/OTP of the build image.")
    debian_version: str = _setting("BEZGELOR_DEBIAN_VERSION", "bookworm-20260518-slim", "Debian tag of both images.")
    image_source: str = _setting(
        "BEZGELOR_IMAGE_SOURCE", "https://github.com/Bezgelor/bezgelor", "OCI source label of the image."
    )
    pg_vm_size: str = _setting("BEZGELOR_PG_VM_SIZE", "shared-cpu-1x", "VM size of the Postgres machine.")
    pg_vm_memory_mb: int = _setting(
        "BEZGELOR_PG_VM_MEMORY_MB", 1024, "Postgres machine memory (>= 512 for `fly postgres backup enable`).",
        value.positive)
    pg_volume_gb: int = _setting("BEZGELOR_PG_VOLUME_GB", 10, "Postgres volume size in GB.", value.positive)
    pg_cluster_size: int = _setting("BEZGELOR_PG_CLUSTER_SIZE", 1, "Postgres initial cluster size.", value.positive)
    pg_flavor: str = _setting("BEZGELOR_PG_FLAVOR", "flex", "flex (fly postgres) or mpg (Managed Postgres).",
                              value.one_of("flex", "mpg"))
    pg_major: int = _setting(
        "BEZGELOR_PG_MAJOR", 15,
        "PostgreSQL major pinned when the database is created (Flex: flyio/postgres-flex:<N>, 15-18; Managed "
        "Postgres offers 16 and 17, and 15 means 16 there). 15 is the client every Debian 12 has; a newer local "
        "pg_dump still dumps it, with zstd.", value.in_range(15, 18, "the Postgres majors Fly offers"))
    pg_bindir: str = _setting(
        "BEZGELOR_PG_BINDIR", "", "Directory of the pg_dump/pg_restore/psql to use, searched before the usual places.")
    mpg_plan: str = _setting(
        "BEZGELOR_MPG_PLAN", "basic", "Managed Postgres plan: basic, starter, launch or scale.",
        value.one_of(*value.MPG_PLANS))
    db_name: str = _setting("BEZGELOR_DB_NAME", "bezgelor", "Database name inside the Postgres app.")
    db_user: str = _setting("BEZGELOR_DB_USER", "postgres", "Database user for backups and restores.")
    kill_timeout_s: int = _setting(
        "BEZGELOR_KILL_TIMEOUT", 60,
        "Seconds Fly gives the machine to stop after SIGTERM (fly.toml kill_timeout; Fly allows 1-300).",
        value.in_range(1, 300, "Fly's kill_timeout is at most 300 seconds (5 minutes)"))
    deploy_wait_timeout_s: int = _setting("BEZGELOR_DEPLOY_WAIT_TIMEOUT", 600, "Seconds `fly deploy` waits for checks.",
                                          value.positive)
    health_timeout_s: int = _setting("BEZGELOR_HEALTH_TIMEOUT", 300, "Seconds the health gate waits for all-ok.",
                                     value.positive)
    health_interval_s: float = _setting("BEZGELOR_HEALTH_INTERVAL", 5.0, "Seconds between health-gate polls.",
                                        value.positive)
    health_url: str = _setting("BEZGELOR_HEALTH_URL", "", "Health URL; empty means https://<app>.fly.dev/health.",
                               value.url_or_empty)
    flyctl: str = _setting("BEZGELOR_FLYCTL", "fly", "flyctl executable (fly or flyctl, or a path).")
    command_timeout_s: int = _setting("BEZGELOR_COMMAND_TIMEOUT", 900, "Upper bound for any one external command.",
                                      value.positive)
    backup_dir: str = _setting(
        "BEZGELOR_BACKUP_DIR", ".bezgelor/backups", "Where local backups go (relative to the checkout).")
    backup_keep_daily_days: int = _setting("BEZGELOR_BACKUP_KEEP_DAILY", 7, "Days daily backups are kept.",
                                           value.positive)
    backup_keep_monthly_months: int = _setting(
        "BEZGELOR_BACKUP_KEEP_MONTHLY", 3, "Months first-of-month backups are kept.", value.positive)
    drain: str = _setting(
        "BEZGELOR_DRAIN", "10m",
        "deploy.full waits up to this long for players to leave (in-game countdown); 0 = do not wait.")
    drain_marks: tuple[str, ...] = _setting(
        "BEZGELOR_DRAIN_MARKS", ("10m", "5m", "1m", "30s", "10s"),
        "Comma-separated times before the restart at which the countdown is announced in game.")
    drain_poll_s: float = _setting("BEZGELOR_DRAIN_POLL", 5.0, "Seconds between player counts while draining.",
                                   value.positive)
    drain_reason: str = _setting(
        "BEZGELOR_DRAIN_REASON", "a server update", "Why the server restarts, as announced in game.")
    rpc_timeout_s: int = _setting(
        "BEZGELOR_RPC_TIMEOUT", 60, "Seconds a remote console call (`bin/<release> rpc`) may take.", value.positive)
    # -- off-site backups (issue 17): an S3-compatible bucket, age encryption, the watcher's schedule ----------
    offsite_url: str = _setting(
        "BEZGELOR_OFFSITE_URL", "",
        "Off-site copies go to this S3-compatible bucket: s3://bucket/prefix (empty = none). Credentials come from "
        "the standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables, never from this file.", value.s3_url)
    offsite_endpoint: str = _setting(
        "BEZGELOR_OFFSITE_ENDPOINT", "",
        "Endpoint of a non-AWS S3 service (Tigris, R2, B2, MinIO...), e.g. https://fly.storage.tigris.dev "
        "(empty = AWS; the region comes from AWS_REGION).", value.url_or_empty)
    offsite_always: bool = _setting(
        "BEZGELOR_OFFSITE_ALWAYS", False, "yes: every `inv db.backup` also uploads its backup off-site (--offsite).")
    offsite_plaintext: bool = _setting(
        "BEZGELOR_OFFSITE_PLAINTEXT", False,
        "yes: upload without encryption when no age recipients are set. Off by default: no recipients, no upload.")
    age_recipients: tuple[str, ...] = _setting(
        "BEZGELOR_BACKUP_AGE_RECIPIENTS", (),
        "Comma-separated age public keys (age1..., from `age-keygen`) every off-site copy is encrypted to.",
        value.age_recipients)
    age_identity_file: str = _setting(
        "BEZGELOR_BACKUP_AGE_IDENTITY_FILE", "",
        "age identity file that reads off-site copies (restore, verify, drill); or set the secret "
        "BEZGELOR_BACKUP_AGE_IDENTITY. The machine that only uploads needs neither.")
    offsite_keep_daily_days: int = _setting(
        "BEZGELOR_OFFSITE_KEEP_DAILY", 14, "Days daily off-site copies are kept.", value.positive)
    offsite_keep_monthly_months: int = _setting(
        "BEZGELOR_OFFSITE_KEEP_MONTHLY", 12, "Months first-of-month off-site copies are kept.", value.positive)
    offsite_part_mb: int = _setting(
        "BEZGELOR_OFFSITE_PART_MB", 16, "Part size of multipart uploads in MiB (S3 allows 5 to 5120).",
        value.in_range(5, 5120, "S3's limits for one part"))
    offsite_max_mbps: float = _setting(
        "BEZGELOR_OFFSITE_MAX_MBPS", 0.0, "Upload bandwidth cap in MB/s, to keep a home link usable (0 = none).",
        value.not_negative)
    offsite_timeout_s: float = _setting(
        "BEZGELOR_OFFSITE_TIMEOUT", 60.0, "Seconds one S3 request may wait to connect or for an answer.",
        value.positive)
    backup_schedule: str = _setting(
        "BEZGELOR_BACKUP_SCHEDULE", "0 4 * * *",
        "Cron expression (UTC) of the watcher's off-site backup, dumped next to the database (empty = none).",
        value.cron)
    drill_schedule: str = _setting(
        "BEZGELOR_DRILL_SCHEDULE", "30 5 * * 0",
        "Cron expression (UTC) of the watcher's restore drill of the newest off-site copy (empty = none).", value.cron)
    backup_max_age: str = _setting(
        "BEZGELOR_BACKUP_MAX_AGE", "26h",
        "The newest verified backup at each end (local, off-site) may be this old before the watcher alerts, e.g. "
        "26h (empty or 0 = never).",
        value.duration_or_off)
    # The release (areas/release.py, areas/overlays.py)
    heart_timeout_s: int = _setting(
        "BEZGELOR_HEART_TIMEOUT", 60,
        "Seconds a hung BEAM may go without a heartbeat before Erlang's heart kills it (HEART_BEAT_TIMEOUT; Fly's "
        "restart policy then starts the machine again).", value.in_range(11, 65535, "heart needs more than 10 seconds"))
    # Not a setting: the names of the settings that were given (environment, .env, an override) rather than
    # defaulted. A value the checkout already has (fly.toml's primary_region, ...) is kept unless its setting
    # was given.
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    # Not a setting: the values the checkout decided (checkout/effective.py: the release's name from the
    # Dockerfile, the region from fly.toml), each as (field, the value the settings alone gave).
    from_checkout: tuple[tuple[str, Any], ...] = field(default=(), compare=False, repr=False)
    # --- keeping the world up: probe, watcher, alerts, heartbeat, schedules (issue 16) ---------------------
    probe_timeout_s: float = _setting(
        "BEZGELOR_PROBE_TIMEOUT", 5.0,
        "Seconds each game-level probe waits: /health's answer, and the ServerHello a game port sends on connect.",
        value.positive)
    watch_interval_s: float = _setting(
        "BEZGELOR_WATCH_INTERVAL", 30.0, "Seconds between the watcher's probe passes (inv watch).", value.positive)
    watch_failures: int = _setting(
        "BEZGELOR_WATCH_FAILURES", 3, "Consecutive failed probe passes before the watcher restarts the game machine.",
        value.positive)
    restart_limit: int = _setting(
        "BEZGELOR_RESTART_LIMIT", 3,
        "Automatic restarts per hour; past it the watcher stops restarting and alerts 'needs a human'.", value.positive)
    restart_schedule: str = _setting(
        "BEZGELOR_RESTART_SCHEDULE", "",
        "Cron expression (UTC) of scheduled restarts, with the in-game countdown (BEZGELOR_DRAIN); empty = none.",
        value.cron)
    alert_discord_url: str = _setting(
        "BEZGELOR_ALERT_DISCORD_URL", "", "Discord webhook URL for alerts (secret: keep it out of git).",
        value.url_or_empty, secret=True)
    alert_webhook_url: str = _setting(
        "BEZGELOR_ALERT_WEBHOOK_URL", "", "URL that gets each alert as a JSON POST (README: the payload; secret).",
        value.url_or_empty, secret=True)
    alert_ntfy_url: str = _setting(
        "BEZGELOR_ALERT_NTFY_URL", "", "ntfy topic URL for alerts, e.g. https://ntfy.sh/<topic> (secret).",
        value.url_or_empty, secret=True)
    alert_smtp_url: str = _setting(
        "BEZGELOR_ALERT_SMTP_URL", "",
        "Mail server for alerts: smtp://user:password@host:587 (STARTTLS) or smtps://...:465 (secret).",
        value.smtp_url_or_empty, secret=True)
    alert_email_to: str = _setting("BEZGELOR_ALERT_EMAIL_TO", "", "Comma-separated addresses alert mails go to.")
    alert_email_from: str = _setting(
        "BEZGELOR_ALERT_EMAIL_FROM", "",
        "Sender of alert mails; empty = the SMTP user, or bezgelor-tasks@<app>.fly.dev.")
    alert_lock_age: str = _setting(
        "BEZGELOR_ALERT_LOCK_AGE", "1h", "Alert when the deploy lock on Fly is held longer than this (0 = never).",
        value.duration_or_off)
    heartbeat_url: str = _setting(
        "BEZGELOR_HEARTBEAT_URL", "",
        "Pinged on every watcher cycle: a dead man's switch (healthchecks.io, Uptime Kuma push; secret).",
        value.url_or_empty, secret=True)
    watch_app: str = _setting(
        "BEZGELOR_WATCH_APP", "", "Fly app the watcher runs in (inv watch.deploy); empty = <BEZGELOR_FLY_APP>-watch.")
    watch_memory_mb: int = _setting(
        "BEZGELOR_WATCH_MEMORY_MB", 256, "Memory of the watcher's machine (shared-cpu-1x) in MB.", value.positive)

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
    def watcher_app(self) -> str:
        """The Fly app `inv watch.deploy` runs the watcher in."""
        return self.watch_app or f"{self.app}-watch"

    def secret_values(self) -> list[str]:
        """The values of the settings marked secret (alert URLs): registered with redact when loaded."""
        return [str(getattr(self, f.name)) for f in fields(self) if f.metadata.get("secret") and getattr(self, f.name)]

    @property
    def state_dir(self) -> Path:
        """`.bezgelor/` in the checkout: journal, lock, database password, backups. Gitignored."""
        return self.root / ".bezgelor"

    @property
    def backups_path(self) -> Path:
        p = Path(self.backup_dir)
        return p if p.is_absolute() else self.root / p

    @property
    def pg_create_major(self) -> int:
        """The major asked for at create: Managed Postgres starts at 16."""
        return max(16, self.pg_major) if self.pg_flavor == "mpg" else self.pg_major

    def as_configured(self) -> Settings:
        """These settings without what the checkout decided: the environment, .env and the defaults only."""
        from dataclasses import replace

        return replace(self, from_checkout=(), **dict(self.from_checkout)) if self.from_checkout else self

    def is_given(self, name: str) -> bool:
        """Whether setting `name` (a field name: "region") was given, not left at its default."""
        return name in self.given

    def overruled(self) -> list[tuple[str, Any, Any]]:
        """(field, given, used) for settings that were given but the checkout's files overrule (the release the
        Dockerfile puts in the image): every task says so, none follows a value silently dropped."""
        return [(name, given, getattr(self, name)) for name, given in self.from_checkout if self.is_given(name)]


FIELDS = [f for f in fields(Settings) if f.metadata.get("env")]
ENV_OF = {f.name: f.metadata["env"] for f in FIELDS}
