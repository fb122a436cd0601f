"""The one source of truth: every name, port, size and path the toolkit uses.

Values come from, in order: the process environment, `.env` in the current folder, the checkout's
`.env`, then the defaults below. Every generated file and every check reads a `Settings`, so a port
changed here changes the Dockerfile, fly.toml, the health controller and verify together.
`.env.example` is generated from `FIELDS` (and a test keeps it in step).

Validation is table-driven and runs once, before a task does anything (`load_checked`, called by
tasks/_common.session): each field's `check` judges its own value, `CROSS_CHECKS` judge values
together, unknown `BEZGELOR_*` names get the nearest known one, unreadable `.env` lines are named by
file and line, and every problem found goes into one UserError. A new setting gets validated by giving
it a `check` (or a function in CROSS_CHECKS); a `BEZGELOR_*` variable read elsewhere goes in OTHER_KEYS.
"""

from __future__ import annotations

import difflib
import io
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bezgelor_tasks.errors import UserError

if TYPE_CHECKING:
    from bezgelor_tasks.fly.platform import CpuKind

# A check gets a setting's converted value and returns what is wrong with it (a clause that follows
# "BEZGELOR_X=value "), or None when it is fine. Checks across settings are in CROSS_CHECKS below.
Check = Callable[[Any], "str | None"]

# flyctl (internal/command/launch/plan_builder.go validateAppName): "app name must consist of only lowercase
# letters, numbers, and dashes". The name is also the DNS label of <app>.fly.dev: at most 63 characters,
# not starting or ending with a dash.
APP_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MPG_PLANS = ("basic", "starter", "launch", "scale")
ELIXIR_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def _port(v: int) -> str | None:
    return None if 1 <= v <= 65535 else "is not a TCP port: use a number from 1 to 65535"


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be more than 0"


def _not_negative(v: float) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def _in_range(low: float, high: float, why: str = "") -> Check:
    """A number from `low` to `high` (e.g. kill_timeout: Fly allows at most 300 s)."""
    def check(v: float) -> str | None:
        return None if low <= v <= high else f"is out of range: use {low:g} to {high:g}{f' ({why})' if why else ''}"
    return check


def _one_of(*choices: str) -> Check:
    def check(v: str) -> str | None:
        return None if v in choices else f"is not known: use {' or '.join(choices)}"
    return check


def _app_name(v: str) -> str | None:
    if APP_NAME_RE.match(v):
        return None
    return ("is not a name Fly accepts: app names are 1-63 lowercase letters, digits and dashes, not starting "
            f"or ending with a dash (for example {_slug(v)!r})")


def _slug(v: str) -> str:
    """What flyctl's sanitizeAppName would make of a name: lowercase, other characters to single dashes."""
    return re.sub(r"[^a-z0-9]+", "-", v.lower()).strip("-")[:63].strip("-") or "my-bezgelor"


def _region(v: str) -> str | None:
    from bezgelor_tasks.fly import platform

    known = platform.regions()
    if v in known:
        return None
    moved = platform.deprecated_regions().get(v)
    if moved:
        return f"is a region Fly retired and consolidated into {moved} ({known.get(moved, moved)}): use {moved}"
    near = difflib.get_close_matches(v, known, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]} ({known[near[0]]})? " if near else ""
    return (f"is not a Fly region: {hint}Fly's regions are {', '.join(sorted(known))} (as of "
            f"{platform.regions_as_of()}; if Fly has added one since, add it to bezgelor_tasks/data/regions.json)")


def _elixir_name(v: str) -> str | None:
    return None if ELIXIR_NAME_RE.match(v) else "is not an Elixir app/release name (lowercase letters, digits, _)"


def _elixir_names(v: tuple[str, ...]) -> str | None:
    bad = [n for n in v if not ELIXIR_NAME_RE.match(n)]
    return f"has {', '.join(map(repr, bad))}, not Elixir app names (lowercase letters, digits, _)" if bad else None


def _url_or_empty(v: str) -> str | None:
    return None if not v or v.startswith(("http://", "https://")) else "is not an http(s):// URL (or empty)"


# -- checks of the off-site backup settings (issue 17) -------------------------------------------------------

def _s3_url(v: str) -> str | None:
    """Empty (no off-site copies) or s3://bucket[/prefix]."""
    if not v:
        return None
    from bezgelor_tasks.backup.store import parse_s3_url

    try:
        parse_s3_url(v)
    except UserError as e:
        return e.message.rstrip(".")
    return None


def _age_recipients(v: tuple[str, ...]) -> str | None:
    from bezgelor_tasks.backup.crypto import bad_recipients

    bad = bad_recipients(v)
    return (f"has {', '.join(bad)}, not age public keys: use what `age-keygen -y KEYFILE` prints (age1...) "
            "or an ssh-ed25519 public key") if bad else None


def _setting(env: str, default: Any, doc: str, check: Check | None = None, *, secret: bool = False) -> Any:
    """A setting; `secret` ones (alert URLs with tokens in them) are masked in every message and output."""
    return field(default=default, metadata={"env": env, "doc": doc, "check": check, "secret": secret})


def _cron(v: str) -> str | None:
    """Empty (no schedule) or a cron expression cronsim accepts: 5 fields, or 6 with seconds first (UTC)."""
    if not v.strip():
        return None
    from datetime import UTC, datetime

    from cronsim import CronSim, CronSimError

    try:
        CronSim(v, datetime.now(UTC))
    except CronSimError as e:
        return f"is not a cron expression ({e}): write it like `0 4 * * *` (every day at 04:00 UTC), or leave it empty"
    return None


def _duration_or_off(v: str) -> str | None:
    """Empty or 0 (off), or a duration like 36h, 90m, 1h30m."""
    if not v.strip():
        return None
    from bezgelor_tasks.game.countdown import parse_duration

    try:
        parse_duration(v)
    except UserError:
        return "is not a duration: write it like 36h, 90m or 1h30m (empty or 0 turns it off)"
    return None


def _smtp_url_or_empty(v: str) -> str | None:
    if not v:
        return None
    return None if v.startswith(("smtp://", "smtps://")) else \
        "is not an smtp:// (STARTTLS, port 587) or smtps:// (TLS, port 465) URL, e.g. smtp://user:password@host:587"


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
                        _app_name)
    db_app: str = _setting("BEZGELOR_FLY_DB_APP", "bezgelor-db", "Fly Postgres app.", _app_name)
    org: str = _setting("BEZGELOR_FLY_ORG", "personal", "Fly organization slug that owns both apps.")
    region: str = _setting("BEZGELOR_FLY_REGION", "sjc", "Fly primary region.", _region)
    release_name: str = _setting(
        "BEZGELOR_RELEASE_NAME", "bezgelor", "Name of the Elixir release (mix.exs releases/0).", _elixir_name)
    dev_only_apps: tuple[str, ...] = _setting(
        "BEZGELOR_DEV_ONLY_APPS", ("bezgelor_dev",), "Comma-separated umbrella apps left out of the release.",
        _elixir_names)
    portal_app: str = _setting("BEZGELOR_PORTAL_APP", "bezgelor_portal", "Umbrella app that serves HTTP.", _elixir_name)
    db_otp_app: str = _setting("BEZGELOR_DB_APP", "bezgelor_db", "Umbrella app that owns the Ecto repo.", _elixir_name)
    data_app: str = _setting("BEZGELOR_DATA_APP", "bezgelor_data", "Umbrella app whose priv/ holds the game data.",
                         _elixir_name)
    portal_port: int = _setting("BEZGELOR_PORTAL_PORT", 4000, "Phoenix portal HTTP port (internal).", _port)
    auth_port: int = _setting("BEZGELOR_AUTH_PORT", 6600, "Auth server TCP port.", _port)
    realm_port: int = _setting("BEZGELOR_REALM_PORT", 23115, "Realm server TCP port.", _port)
    world_port: int = _setting("BEZGELOR_WORLD_PORT", 24000, "World server TCP port.", _port)
    vm_cpus: int = _setting("BEZGELOR_VM_CPUS", 2, "CPUs of the game machine.", _positive)
    vm_cpu_kind: str = _setting("BEZGELOR_VM_CPU_KIND", "shared", "shared or performance.",
                               _one_of("shared", "performance"))
    vm_memory_mb: int = _setting("BEZGELOR_VM_MEMORY_MB", 4096, "Memory of the game machine in MB.", _positive)
    health_grace_period_s: int = _setting(
        "BEZGELOR_HEALTH_GRACE_PERIOD", 60,
        "Seconds Fly waits before health checks count (Fly clamps check durations to 60s; longer boots are "
        "covered by the deploy wait timeout and our health gate).",
        _not_negative,
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
        _positive)
    pg_volume_gb: int = _setting("BEZGELOR_PG_VOLUME_GB", 10, "Postgres volume size in GB.", _positive)
    pg_cluster_size: int = _setting("BEZGELOR_PG_CLUSTER_SIZE", 1, "Postgres initial cluster size.", _positive)
    pg_flavor: str = _setting("BEZGELOR_PG_FLAVOR", "flex", "flex (fly postgres) or mpg (Managed Postgres).",
                            _one_of("flex", "mpg"))
    pg_major: int = _setting(
        "BEZGELOR_PG_MAJOR", 15,
        "PostgreSQL major pinned when the database is created (Flex: flyio/postgres-flex:<N>, 15-18; Managed "
        "Postgres offers 16 and 17, and 15 means 16 there). 15 is the client every Debian 12 has; a newer local "
        "pg_dump still dumps it, with zstd.", _in_range(15, 18, "the Postgres majors Fly offers"))
    pg_bindir: str = _setting(
        "BEZGELOR_PG_BINDIR", "", "Directory of the pg_dump/pg_restore/psql to use, searched before the usual places.")
    mpg_plan: str = _setting(
        "BEZGELOR_MPG_PLAN", "basic", "Managed Postgres plan: basic, starter, launch or scale.",
        _one_of(*MPG_PLANS))
    db_name: str = _setting("BEZGELOR_DB_NAME", "bezgelor", "Database name inside the Postgres app.")
    db_user: str = _setting("BEZGELOR_DB_USER", "postgres", "Database user for backups and restores.")
    kill_timeout_s: int = _setting(
        "BEZGELOR_KILL_TIMEOUT", 60,
        "Seconds Fly gives the machine to stop after SIGTERM (fly.toml kill_timeout; Fly allows 1-300).",
        _in_range(1, 300, "Fly's kill_timeout is at most 300 seconds (5 minutes)"))
    deploy_wait_timeout_s: int = _setting("BEZGELOR_DEPLOY_WAIT_TIMEOUT", 600, "Seconds `fly deploy` waits for checks.",
                                        _positive)
    health_timeout_s: int = _setting("BEZGELOR_HEALTH_TIMEOUT", 300, "Seconds the health gate waits for all-ok.",
                                     _positive)
    health_interval_s: float = _setting("BEZGELOR_HEALTH_INTERVAL", 5.0, "Seconds between health-gate polls.",
                                        _positive)
    health_url: str = _setting("BEZGELOR_HEALTH_URL", "", "Health URL; empty means https://<app>.fly.dev/health.",
                          _url_or_empty)
    flyctl: str = _setting("BEZGELOR_FLYCTL", "fly", "flyctl executable (fly or flyctl, or a path).")
    command_timeout_s: int = _setting("BEZGELOR_COMMAND_TIMEOUT", 900, "Upper bound for any one external command.",
                                    _positive)
    backup_dir: str = _setting(
        "BEZGELOR_BACKUP_DIR", ".bezgelor/backups", "Where local backups go (relative to the checkout).")
    backup_keep_daily_days: int = _setting("BEZGELOR_BACKUP_KEEP_DAILY", 7, "Days daily backups are kept.", _positive)
    backup_keep_monthly_months: int = _setting(
        "BEZGELOR_BACKUP_KEEP_MONTHLY", 3, "Months first-of-month backups are kept.", _positive)
    drain: str = _setting(
        "BEZGELOR_DRAIN", "10m",
        "deploy.full waits up to this long for players to leave (in-game countdown); 0 = do not wait.")
    drain_marks: tuple[str, ...] = _setting(
        "BEZGELOR_DRAIN_MARKS", ("10m", "5m", "1m", "30s", "10s"),
        "Comma-separated times before the restart at which the countdown is announced in game.")
    drain_poll_s: float = _setting("BEZGELOR_DRAIN_POLL", 5.0, "Seconds between player counts while draining.",
                                   _positive)
    drain_reason: str = _setting(
        "BEZGELOR_DRAIN_REASON", "a server update", "Why the server restarts, as announced in game.")
    rpc_timeout_s: int = _setting(
        "BEZGELOR_RPC_TIMEOUT", 60, "Seconds a remote console call (`bin/<release> rpc`) may take.", _positive)
    # -- off-site backups (issue 17): an S3-compatible bucket, age encryption, the watcher's schedule ----------
    offsite_url: str = _setting(
        "BEZGELOR_OFFSITE_URL", "",
        "Off-site copies go to this S3-compatible bucket: s3://bucket/prefix (empty = none). Credentials come from "
        "the standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables, never from this file.", _s3_url)
    offsite_endpoint: str = _setting(
        "BEZGELOR_OFFSITE_ENDPOINT", "",
        "Endpoint of a non-AWS S3 service (Tigris, R2, B2, MinIO...), e.g. https://fly.storage.tigris.dev "
        "(empty = AWS; the region comes from AWS_REGION).", _url_or_empty)
    offsite_always: bool = _setting(
        "BEZGELOR_OFFSITE_ALWAYS", False, "yes: every `inv db.backup` also uploads its backup off-site (--offsite).")
    offsite_plaintext: bool = _setting(
        "BEZGELOR_OFFSITE_PLAINTEXT", False,
        "yes: upload without encryption when no age recipients are set. Off by default: no recipients, no upload.")
    age_recipients: tuple[str, ...] = _setting(
        "BEZGELOR_BACKUP_AGE_RECIPIENTS", (),
        "Comma-separated age public keys (age1..., from `age-keygen`) every off-site copy is encrypted to.",
        _age_recipients)
    age_identity_file: str = _setting(
        "BEZGELOR_BACKUP_AGE_IDENTITY_FILE", "",
        "age identity file that reads off-site copies (restore, verify, drill); or set the secret "
        "BEZGELOR_BACKUP_AGE_IDENTITY. The machine that only uploads needs neither.")
    offsite_keep_daily_days: int = _setting(
        "BEZGELOR_OFFSITE_KEEP_DAILY", 14, "Days daily off-site copies are kept.", _positive)
    offsite_keep_monthly_months: int = _setting(
        "BEZGELOR_OFFSITE_KEEP_MONTHLY", 12, "Months first-of-month off-site copies are kept.", _positive)
    offsite_part_mb: int = _setting(
        "BEZGELOR_OFFSITE_PART_MB", 16, "Part size of multipart uploads in MiB (S3 allows 5 to 5120).",
        _in_range(5, 5120, "S3's limits for one part"))
    offsite_max_mbps: float = _setting(
        "BEZGELOR_OFFSITE_MAX_MBPS", 0.0, "Upload bandwidth cap in MB/s, to keep a home link usable (0 = none).",
        _not_negative)
    offsite_timeout_s: float = _setting(
        "BEZGELOR_OFFSITE_TIMEOUT", 60.0, "Seconds one S3 request may wait to connect or for an answer.", _positive)
    backup_schedule: str = _setting(
        "BEZGELOR_BACKUP_SCHEDULE", "0 4 * * *",
        "Cron expression (UTC) of the watcher's off-site backup, dumped next to the database (empty = none).", _cron)
    drill_schedule: str = _setting(
        "BEZGELOR_DRILL_SCHEDULE", "30 5 * * 0",
        "Cron expression (UTC) of the watcher's restore drill of the newest off-site copy (empty = none).", _cron)
    backup_max_age: str = _setting(
        "BEZGELOR_BACKUP_MAX_AGE", "26h",
        "The newest verified backup at each end (local, off-site) may be this old before the watcher alerts, e.g. "
        "26h (empty or 0 = never).",
        _duration_or_off)
    # The release (areas/release.py, areas/overlays.py)
    heart_timeout_s: int = _setting(
        "BEZGELOR_HEART_TIMEOUT", 60,
        "Seconds a hung BEAM may go without a heartbeat before Erlang's heart kills it (HEART_BEAT_TIMEOUT; Fly's "
        "restart policy then starts the machine again).", _in_range(11, 65535, "heart needs more than 10 seconds"))
    # Not a setting: the names of the settings that were given (environment, .env, an override) rather than
    # defaulted. A value the checkout already has (fly.toml's primary_region, ...) is kept unless its setting
    # was given.
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    # --- keeping the world up: probe, watcher, alerts, heartbeat, schedules (issue 16) ---------------------
    probe_timeout_s: float = _setting(
        "BEZGELOR_PROBE_TIMEOUT", 5.0,
        "Seconds each game-level probe waits: /health's answer, and the ServerHello a game port sends on connect.",
        _positive)
    watch_interval_s: float = _setting(
        "BEZGELOR_WATCH_INTERVAL", 30.0, "Seconds between the watcher's probe passes (inv watch).", _positive)
    watch_failures: int = _setting(
        "BEZGELOR_WATCH_FAILURES", 3, "Consecutive failed probe passes before the watcher restarts the game machine.",
        _positive)
    restart_limit: int = _setting(
        "BEZGELOR_RESTART_LIMIT", 3,
        "Automatic restarts per hour; past it the watcher stops restarting and alerts 'needs a human'.", _positive)
    restart_schedule: str = _setting(
        "BEZGELOR_RESTART_SCHEDULE", "",
        "Cron expression (UTC) of scheduled restarts, with the in-game countdown (BEZGELOR_DRAIN); empty = none.",
        _cron)
    alert_discord_url: str = _setting(
        "BEZGELOR_ALERT_DISCORD_URL", "", "Discord webhook URL for alerts (secret: keep it out of git).",
        _url_or_empty, secret=True)
    alert_webhook_url: str = _setting(
        "BEZGELOR_ALERT_WEBHOOK_URL", "", "URL that gets each alert as a JSON POST (README: the payload; secret).",
        _url_or_empty, secret=True)
    alert_ntfy_url: str = _setting(
        "BEZGELOR_ALERT_NTFY_URL", "", "ntfy topic URL for alerts, e.g. https://ntfy.sh/<topic> (secret).",
        _url_or_empty, secret=True)
    alert_smtp_url: str = _setting(
        "BEZGELOR_ALERT_SMTP_URL", "",
        "Mail server for alerts: smtp://user:password@host:587 (STARTTLS) or smtps://...:465 (secret).",
        _smtp_url_or_empty, secret=True)
    alert_email_to: str = _setting("BEZGELOR_ALERT_EMAIL_TO", "", "Comma-separated addresses alert mails go to.")
    alert_email_from: str = _setting(
        "BEZGELOR_ALERT_EMAIL_FROM", "",
        "Sender of alert mails; empty = the SMTP user, or bezgelor-tasks@<app>.fly.dev.")
    alert_lock_age: str = _setting(
        "BEZGELOR_ALERT_LOCK_AGE", "1h", "Alert when the deploy lock on Fly is held longer than this (0 = never).",
        _duration_or_off)
    heartbeat_url: str = _setting(
        "BEZGELOR_HEARTBEAT_URL", "",
        "Pinged on every watcher cycle: a dead man's switch (healthchecks.io, Uptime Kuma push; secret).",
        _url_or_empty, secret=True)
    watch_app: str = _setting(
        "BEZGELOR_WATCH_APP", "", "Fly app the watcher runs in (inv watch.deploy); empty = <BEZGELOR_FLY_APP>-watch.")
    watch_memory_mb: int = _setting(
        "BEZGELOR_WATCH_MEMORY_MB", 256, "Memory of the watcher's machine (shared-cpu-1x) in MB.", _positive)

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

    def is_given(self, name: str) -> bool:
        """Whether setting `name` (a field name: "region") was given, not left at its default."""
        return name in self.given

    def validate(self) -> None:
        """Raise one UserError naming every bad value (see `problems`)."""
        raise_problems(problems(self))


FIELDS = [f for f in fields(Settings) if f.metadata.get("env")]
ENV_OF = {f.name: f.metadata["env"] for f in FIELDS}

# BEZGELOR_* names that are not settings but are read by this toolkit elsewhere, so never "unknown".
OTHER_KEYS = {
    "BEZGELOR_DB_PASSWORD": "the database password for backups and restores (backup/, never stored in .env)",
    "BEZGELOR_TASKS_REPO": "where the generated CI workflow fetches bezgelor-tasks from",
    "BEZGELOR_TASKS_REF": "which ref of it the CI workflow fetches",
    "BEZGELOR_BACKUP_AGE_IDENTITY": "the age secret key that reads off-site copies (a secret: Fly secret or CI secret)",
}


# -- checks across settings: each takes the Settings and returns problem sentences -------------------------

def _distinct_ports(s: Settings) -> list[str]:
    by_port: dict[int, list[str]] = {}
    for name in ("portal_port", "auth_port", "realm_port", "world_port"):
        by_port.setdefault(getattr(s, name), []).append(ENV_OF[name])
    return [f"{' and '.join(keys)} are {'both' if len(keys) == 2 else 'all'} {port}: the portal and the three "
            "game servers each need a port of their own (defaults 4000, 6600, 23115, 24000)"
            for port, keys in by_port.items() if len(keys) > 1]


def _distinct_apps(s: Settings) -> list[str]:
    if s.app == s.db_app:
        return [f"BEZGELOR_FLY_APP and BEZGELOR_FLY_DB_APP are both {s.app!r}: the game app and its Postgres app "
                f"need different names (for example {s.app}-db for the database)"]
    return []


def _machine(label: str, kind: CpuKind, cpus: int, memory_mb: int, memory_key: str, cpus_key: str) -> list[str]:
    from bezgelor_tasks.fly.platform import vm_size_name

    if cpus not in kind.cpus:
        return [f"{cpus_key}={cpus} is not a CPU count Fly offers for {kind.name} CPUs: use one of "
                f"{', '.join(map(str, kind.cpus))} ({label})"]
    low, high = kind.memory_range(cpus)
    out = []
    if not low <= memory_mb <= high:
        fits = [n for n in kind.cpus if kind.memory_range(n)[0] <= memory_mb <= kind.memory_range(n)[1]]
        more = f", or set {cpus_key}={fits[0]}" if fits and cpus_key else ""
        out.append(f"{memory_key}={memory_mb} does not fit {vm_size_name(kind.name, cpus)} ({label}): Fly allows "
                   f"{low}-{high} MB for {cpus} {kind.name} CPU(s) ({kind.min_memory_mb_per_cpu}-"
                   f"{kind.max_memory_mb_per_cpu} MB per CPU); use a memory in that range{more}")
    elif memory_mb % kind.memory_step_mb:
        out.append(f"{memory_key}={memory_mb} is not a multiple of {kind.memory_step_mb} MB, which Fly requires for "
                   f"{kind.name} CPUs ({label}): use {memory_mb // kind.memory_step_mb * kind.memory_step_mb or low}")
    return out


def _game_machine(s: Settings) -> list[str]:
    from bezgelor_tasks.fly import platform

    kind = platform.cpu_kinds().get(s.vm_cpu_kind)
    if kind is None or s.vm_cpus <= 0 or s.vm_memory_mb <= 0:
        return []  # already reported by the field's own check
    return _machine("the game machine", kind, s.vm_cpus, s.vm_memory_mb, "BEZGELOR_VM_MEMORY_MB", "BEZGELOR_VM_CPUS")


def _postgres_machine(s: Settings) -> list[str]:
    from bezgelor_tasks.fly import platform

    parsed = platform.parse_vm_size(s.pg_vm_size)
    kinds = platform.cpu_kinds()
    if parsed is None or parsed[0] not in kinds or parsed[1] not in kinds[parsed[0]].preset_cpus:
        sizes = [platform.vm_size_name(k.name, n) for k in kinds.values() for n in k.preset_cpus]
        return [f"BEZGELOR_PG_VM_SIZE={s.pg_vm_size!r} is not a Fly VM size: use one of {', '.join(sizes)}"]
    if s.pg_vm_memory_mb <= 0:
        return []
    return _machine("the Postgres machine", kinds[parsed[0]], parsed[1], s.pg_vm_memory_mb,
                    "BEZGELOR_PG_VM_MEMORY_MB", "")


# Settings added later slot in: give the field a `check` (one value) or add a function here (several).
def _drain(s: Settings) -> list[str]:
    from bezgelor_tasks.units import parse_duration

    try:
        parse_duration(s.drain, "BEZGELOR_DRAIN")
        for mark in s.drain_marks:
            parse_duration(mark, "BEZGELOR_DRAIN_MARKS entry")
    except UserError as e:
        return [e.message.rstrip(".")]
    return []


def _postgres_major(s: Settings) -> list[str]:
    if s.pg_flavor == "mpg" and s.pg_major not in (15, 16, 17):
        return [f"BEZGELOR_PG_MAJOR={s.pg_major} is not offered by Managed Postgres: use 16 or 17"]
    return []


def _watcher(s: Settings) -> list[str]:
    from bezgelor_tasks.fly import platform

    out = [] if not s.watch_app or APP_NAME_RE.match(s.watch_app) else [
        f"BEZGELOR_WATCH_APP={s.watcher_app!r} is not a name Fly accepts (lowercase letters, digits and dashes)"]
    if s.watcher_app in (s.app, s.db_app):
        out.append(f"BEZGELOR_WATCH_APP={s.watcher_app!r} is the game or the database app: the watcher needs an app "
                   "of its own")
    shared = platform.cpu_kinds().get("shared")
    if shared is not None and s.watch_memory_mb > 0:
        out += _machine("the watcher machine", shared, 1, s.watch_memory_mb, "BEZGELOR_WATCH_MEMORY_MB", "")
    if s.alert_email_to and not s.alert_smtp_url:
        out.append("BEZGELOR_ALERT_EMAIL_TO is set but BEZGELOR_ALERT_SMTP_URL is not: alert mails need a mail server")
    if s.alert_smtp_url and not s.alert_email_to:
        out.append("BEZGELOR_ALERT_SMTP_URL is set but BEZGELOR_ALERT_EMAIL_TO is not: say where alert mails go")
    return out


CROSS_CHECKS: list[Callable[[Settings], list[str]]] = [
    _distinct_ports, _distinct_apps, _game_machine, _postgres_machine, _postgres_major, _drain, _watcher,
]


def _shown(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def problems(s: Settings, origins: Mapping[str, str] | None = None) -> list[str]:
    """Every bad value of `s`, one sentence each; `origins` (env key → where it was set) makes them precise."""
    origins = origins or {}
    out: list[str] = []
    for f in FIELDS:
        check = f.metadata.get("check")
        wrong = check(getattr(s, f.name)) if check else None
        if wrong:
            key = f.metadata["env"]
            where = f" ({origins[key]})" if key in origins else ""
            shown = "***" if f.metadata.get("secret") else _shown(getattr(s, f.name))
            out.append(f"{key}={shown}{where} {wrong}")
    for rule in CROSS_CHECKS:
        out.extend(rule(s))
    return out


def raise_problems(found: list[str], dotenv_hint: str = ".env") -> None:
    """A headline, one line per problem, the fix; nothing when there are none."""
    if not found:
        return
    raise UserError(
        f"{len(found)} setting problem(s): bezgelor-tasks stopped before changing anything.",
        detail="\n".join(f"- {p}" + ("" if p.endswith((".", "?")) else ".") for p in found),
        fix=f"correct them in the environment or in {dotenv_hint} (every setting and its default is listed in "
            ".env.example), then run the task again.")


# The unit a number setting is counted in, from its field name's ending.
_UNITS = {"_mb": "megabytes (MB)", "_gb": "gigabytes (GB)", "_s": "seconds", "_days": "days", "_months": "months"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _expected(name: str, raw: str, default: Any) -> str:
    """What a value that does not convert should have looked like: the form, the unit, an example."""
    unit = next((u for suffix, u in _UNITS.items() if name.endswith(suffix)), "")
    whole = isinstance(default, int) and not isinstance(default, bool)
    form = ("a whole number" if whole else "a number") + (f" of {unit}" if unit else "")
    example = f"e.g. {_shown(default)}, the default"
    if name.endswith("_mb"):
        from bezgelor_tasks.units import parse_memory_mb  # Fly's memory spellings: 4gb, 4GiB, 4096mb

        mb = parse_memory_mb(raw)
        if mb is not None:
            return f"is not {form}: {raw.strip()} is {mb} MB, so write {mb}"
    if name.endswith("_s") and re.fullmatch(r"\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*", raw):
        return f"is not {form}: write the seconds without a unit ({example})"
    return f"is not {form} ({example})"


def _convert(name: str, raw: str, default: Any) -> Any:
    """The typed value of a setting; ValueError says the form expected (`4GiB` → "is 4096 MB, so write 4096")."""
    try:
        if isinstance(default, bool):
            if raw.strip().lower() not in (*_TRUE, *_FALSE):
                raise ValueError("is not true or false (1/0, yes/no and on/off work too)")
            return raw.strip().lower() in _TRUE
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if isinstance(default, Path) or name == "root":
            return Path(raw)
        return raw
    except ValueError as e:
        if isinstance(default, bool):
            raise
        raise ValueError(_expected(name, raw, default)) from e


# -- reading the environment and .env files ----------------------------------------------------------------

@dataclass
class Sources:
    """Raw values by env key, where each came from, and what could not be read."""

    root: Path
    values: dict[str, str]
    origins: dict[str, str]
    problems: list[str]
    dotenv_files: list[Path]


def _read_dotenv(path: Path) -> tuple[dict[str, str], dict[str, int], list[str]]:
    """Values, the line of each key, and the lines python-dotenv cannot parse (named by file and line).

    Only python-dotenv's public surface is used: `dotenv_values`, and the warning it logs (through the
    standard `logging` module) for each statement it cannot parse, which carries the line number."""
    import logging

    from dotenv import dotenv_values

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        return {}, {}, [f"{path} cannot be read ({e})"]

    unparsed: list[int] = []

    class _Unparsed(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            numbers = [a for a in (record.args or ()) if isinstance(a, int)] if isinstance(record.args, tuple) else []
            unparsed.extend(numbers[:1] or [0])

    logger = logging.getLogger("dotenv.main")
    handler, propagate = _Unparsed(level=logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # the user sees our message (without the line's text), not python-dotenv's
    try:
        values = {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    # The line itself is never shown: a .env may hold a password next to our settings.
    bad = [f"{path} line {n or '?'} is not a NAME=value line (a comment starts with #; a value with spaces "
           "or # needs quotes)" for n in unparsed]
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if (match := _DOTENV_KEY.match(line)) and match.group(1) in values:
            lines[match.group(1)] = number  # the last assignment wins, as in python-dotenv
    if bad:
        return {}, lines, bad
    return values, lines, []


_DOTENV_KEY = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def read_sources(root: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Sources:
    """The environment over `.env` in the current folder over the checkout's `.env`."""
    env = dict(os.environ if environ is None else environ)
    layered: dict[str, str] = {}
    origins: dict[str, str] = {}
    found: list[str] = []
    files: list[Path] = []

    def layer(values: Mapping[str, str], where: Callable[[str], str], under: bool = False) -> None:
        for k, v in values.items():
            if under and k in layered:
                continue
            layered[k] = v
            origins[k] = where(k)

    cwd_env = Path.cwd() / ".env"
    if cwd_env.is_file():
        values, lines, bad = _read_dotenv(cwd_env)
        found += bad
        files.append(cwd_env)
        layer(values, lambda k: f"{cwd_env} line {lines.get(k, '?')}")
    layer(env, lambda k: "the environment")
    root_path = Path(root) if root else Path(layered.get("BEZGELOR_ROOT", "."))
    checkout_env = root_path / ".env"
    if checkout_env.is_file() and checkout_env.resolve() != cwd_env.resolve():
        values, lines, bad = _read_dotenv(checkout_env)
        found += bad
        files.append(checkout_env)
        layer(values, lambda k: f"{checkout_env} line {lines.get(k, '?')}", under=True)
    return Sources(root_path, layered, origins, found, files)


def _build(src: Sources, overrides: Mapping[str, Any]) -> tuple[Settings, list[str]]:
    values: dict[str, Any] = {}
    bad: list[str] = []
    for f in FIELDS:
        key = f.metadata["env"]
        if f.name == "root":
            values["root"] = src.root.resolve()
        elif key in src.values and src.values[key] != "":
            try:
                values[f.name] = _convert(f.name, src.values[key], f.default)
            except ValueError as e:
                bad.append(f"{key}={src.values[key]} ({src.origins.get(key, 'set')}) {e}")
    values.update(overrides)
    values["given"] = frozenset(n for n in values if n != "root")
    return Settings(**values), bad


def load(root: str | Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from environment, `.env` files and defaults; `root` (a --root flag) wins over BEZGELOR_ROOT.

    Raises UserError for what cannot be read at all (a .env line, a number that is not one). Tasks use
    `load_checked`, which also checks every value.
    """
    src = read_sources(root, environ)
    s, bad = _build(src, overrides)
    _register_secrets(s)
    raise_problems(src.problems + bad)
    return s


def _register_secrets(s: Settings) -> None:
    """Secret settings (alert URLs) are masked everywhere from the moment they are read."""
    from bezgelor_tasks import redact

    redact.register(*s.secret_values())


def _mentioned_by_checkout(root: Path, keys: set[str]) -> set[str]:
    """Which of `keys` the checkout's own code or config reads (those are the app's, not typos of ours)."""
    if not keys or not root.is_dir():
        return set()
    suffixes = {".ex", ".exs", ".eex", ".heex", ".sh", ".yml", ".yaml", ".toml", ".example"}
    names = {"Makefile", "Dockerfile", "Procfile"}
    skip = {".git", "deps", "_build", "node_modules", ".bezgelor", ".elixir_ls"}
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            if name in names or Path(name).suffix in suffixes or name.startswith("Dockerfile"):
                path = Path(dirpath, name)
                try:
                    if path.stat().st_size > 1_000_000:
                        continue
                    text = path.read_text(errors="replace")
                except OSError:
                    continue
                seen |= {k for k in keys if k in text}
                if seen == keys:
                    return seen
    return seen


def unknown_keys(src: Sources) -> list[str]:
    """`BEZGELOR_*` names set in the environment or a .env that no setting has, with the nearest known one."""
    known = set(ENV_OF.values()) | set(OTHER_KEYS)
    unknown = {k for k in src.values if k.startswith("BEZGELOR_") and k not in known}
    unknown -= _mentioned_by_checkout(src.root, unknown)
    out = []
    for key in sorted(unknown):
        near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        guess = f"did you mean {near[0]}?" if near else "no setting has this name; remove it"
        out.append(f"{key} ({src.origins.get(key, 'set')}) is not a bezgelor-tasks setting: {guess}")
    return out


def load_checked(root: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """What every task runs first: Settings, after every check passed; else one UserError listing them all."""
    src = read_sources(root, environ)
    s, bad = _build(src, {})
    _register_secrets(s)
    found = src.problems + bad + unknown_keys(src) + problems(s, src.origins)
    hint = " or ".join(str(p) for p in src.dotenv_files) or ".env"
    raise_problems(found, hint)
    return s


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
