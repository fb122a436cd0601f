"""fly.toml as data: what it must hold, built from the settings, the Postgres flavor and the checkout.

The spec is the one description of fly.toml: `fly_toml_apply` writes it into a document (an empty one for
a fresh file, the user's otherwise: their comments and keys survive) and `fly_toml_verify` checks a
document against it. Each key says how it is owned:

- `set`: ours; a different value is rewritten by init and reported by verify (`severity`, `why`);
- `keep`: a value the checkout already has is kept (primary_region, kill_timeout, check timings, the VM)
  unless its setting (`setting`, a Settings field) was given; a value that is not valid (`check`) is
  replaced by ours and reported;
- `add`: written only when absent (a default: the image label, the public host name).

Tables are matched by name; arrays of tables ([[services]], [[services.ports]], ...) by our role comment,
then by an identifying key (`ident`), and are created when missing. Why each value is what it is lives
beside it, so the generated file, init's notes and verify's findings say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from bezgelor_tasks import units
from bezgelor_tasks.fly.platform import regions
from bezgelor_tasks.pg_flavor import DIRECT_URL_VARIABLE, release_command
from bezgelor_tasks.release_image import MIGRATE
from bezgelor_tasks.settings import Settings

# Fly clamps check durations to 1s..60s (a longer grace_period acts as 60s). Longer boots (game data
# loading) are covered by `fly deploy`'s wait_timeout and by `inv deploy.full`'s own health gate.
FLY_MAX_CHECK_S = 60
FLY_MAX_KILL_TIMEOUT_S = 300
KILL_SIGNAL = "SIGTERM"
RELEASE_COMMAND_TIMEOUT = "10m"
RESTART_POLICY = "on-failure"
ROLE_MARK = "bezgelor-tasks service:"
# Fly's default concurrency limit is 25 connections per machine: far too few for a game server on a
# single machine. We set a higher one only where the user has none.
GAME_CONCURRENCY = {"type": "connections", "soft_limit": 800, "hard_limit": 1000}
PORTAL_CONCURRENCY = {"type": "requests", "soft_limit": 200, "hard_limit": 250}

Check = Callable[[Any], "tuple[str, str] | None"]   # a value → (severity, what is wrong with it) or None


@dataclass(frozen=True)
class Key:
    name: str
    value: Any
    policy: str = "set"                  # set | keep | add
    setting: str | None = None           # keep: the Settings field that, when given, wins over the file
    check: Check | None = None           # keep: is the file's value one Fly reads as intended?
    same: Callable[[Any, Any], bool] | None = None   # equal in another spelling ("4GiB" == 4096)
    # other names Fly reads for the same key, each with our value in its form (memory_mb: MB as an integer)
    aliases: tuple[tuple[str, Callable[[Any], Any]], ...] = ()
    comment: str = ""                    # trailing comment when init adds the key
    severity: str = "error"              # verify: a value other than ours
    why: str = ""                        # verify: what goes wrong with another value (or without one)
    # verify: the severity when the key is missing (default: `severity`); "quiet" when Fly's own default for a
    # missing key does what we want (init still writes it, to say so)
    absent: str | None = None


@dataclass(frozen=True)
class Table:
    keys: tuple[Key, ...] = ()
    tables: tuple[tuple[str, Table], ...] = ()
    arrays: tuple[tuple[str, Array], ...] = ()
    notes: tuple[str, ...] = ()          # comment lines at the top of a table init adds
    default_only: bool = False           # written whole when absent, never changed when present
    label: str = ""                      # verify: how its findings name it ("[http_service] ")


@dataclass(frozen=True)
class Entry:
    """One table of an array of tables."""
    table: Table
    ident: tuple[str, Any] | None = None    # the key/value that identifies it (internal_port = 6600)
    role: str | None = None                 # our role comment (the four services)
    label: str = ""                         # how verify names it ("service world (internal_port 24000)")
    missing: str = ""                       # verify: what goes wrong without it
    severity: str = "error"
    former: tuple[Any, ...] = ()            # other values its ident may still have (the port's default)


@dataclass(frozen=True)
class Array:
    entries: tuple[Entry, ...]
    only_ours: bool = False              # tables no entry matches are removed (a stale public port)
    stale: str = ""                      # verify: what a table no entry matches means


# -- what values Fly reads as intended ----------------------------------------------------------------------

def fly_duration_check(low: float = 1, high: float | None = None, what: str = "") -> Check:
    """A duration string within Fly's limits; a bare number is read as milliseconds (nanoseconds under
    [http_service])."""
    def check(value: Any) -> tuple[str, str] | None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return "error", f"is {value!r}, not a duration"
        if not isinstance(value, str):
            guess = f"{value / 1000:g}s" if value >= 1000 else f"{value:g}s"
            return "error", (f"is a bare number, which Fly reads as milliseconds (nanoseconds under [http_service]): "
                             f'write a duration string, e.g. "{guess}"')
        seconds = units.duration_seconds(value)
        if seconds is None:
            return "error", f"is not a duration Fly reads (write it like {units.DURATION_FORMS})"
        if seconds < low or (high is not None and seconds > high):
            top = f" and Fly's limit of {high:g}s" if high is not None else ""
            return "error", f"is not a duration between {low:g}s{top}{what}"
        return None
    return check


def grace_check(wanted_s: int) -> Check:
    duration = fly_duration_check()

    def check(value: Any) -> tuple[str, str] | None:
        wrong = duration(value)
        if wrong:
            return wrong
        seconds = units.duration_seconds(value) or 0
        if seconds > FLY_MAX_CHECK_S:
            return "warning", (f"is above Fly's {FLY_MAX_CHECK_S}s limit and acts as {FLY_MAX_CHECK_S}s (a slow boot "
                               "is covered by the deploy's wait timeout and the health gate)")
        if seconds < wanted_s:
            return "warning", f"is shorter than the {wanted_s}s the game data needs to load"
        return None
    return check


def memory_check(value: Any) -> tuple[str, str] | None:
    if units.parse_memory_mb(value) is None:
        return "error", f"is not a memory size Fly reads: write {units.MEMORY_FORMS}"
    return None


def region_check(value: Any) -> tuple[str, str] | None:
    if not isinstance(value, str) or value not in regions():
        return "error", "is not a Fly region (`fly platform regions` lists them)"
    return None


def positive_int_check(value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "error", "is not a whole number of at least 1"
    return None


def at_least_one_machine(value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "error", "lets Fly stop the one machine, and game clients cannot wake a stopped machine"
    return None


def same_duration(a: Any, b: Any) -> bool:
    return units.duration_seconds(a) is not None and units.duration_seconds(a) == units.duration_seconds(b)


def same_memory(a: Any, b: Any) -> bool:
    return units.parse_memory_mb(a) is not None and units.parse_memory_mb(a) == units.parse_memory_mb(b)


# -- the spec ---------------------------------------------------------------------------------------------

def check_grace_period_s(settings: Settings) -> int:
    return max(1, min(settings.health_grace_period_s, FLY_MAX_CHECK_S))


def _timing(name: str, seconds: int, check: Check | None = None, setting: str | None = None,
            absent: str | None = "quiet") -> Key:
    return Key(name, units.fly_duration(seconds), "keep", setting, check or fly_duration_check(high=FLY_MAX_CHECK_S),
               same_duration, absent=absent, why="" if absent else "Fly counts the check from the first second, "
               "before the game data has loaded")


def _checks(settings: Settings, portal: bool, name: str = "") -> tuple[str, Array]:
    grace = check_grace_period_s(settings)
    timings = (_timing("interval", 10 if portal else 15), _timing("timeout", 5 if portal else 2),
               _timing("grace_period", grace, grace_check(grace), "health_grace_period_s", absent=None))
    if not portal:
        return "tcp_checks", Array((Entry(Table(timings), label="TCP check", missing="has no health check, so Fly "
                                          "routes to it before it listens and deploys cannot tell a dead server"),))
    path = settings.health_paths[0]
    http = Table(timings + (Key("method", "GET", severity="warning", absent="quiet"),
                            Key("path", path, why="the health controller serves it"),
                            Key("protocol", "http", severity="warning", absent="quiet")),
                 tables=(("headers", Table((Key("X-Forwarded-Proto", "https", why="Fly's checks reach the machine over "
                                                "plain HTTP, so force_ssl answers them with a redirect"),))),),
                 notes=("Full readiness: database and the three game ports (503 if any is down).",))
    return name or "http_checks", Array((Entry(http, ("path", path), label=f"HTTP check of {path}",
                                               missing=f"has no HTTP check of {path}"),))


STOPS = "Fly would stop the one machine when this service idles, taking the portal and every game server with it"


def _always_on(role: str, port: int) -> tuple[Key, ...]:
    """What keeps the one machine running, on every service of it."""
    setting = "BEZGELOR_PORTAL_PORT" if role == "portal" else f"BEZGELOR_{role.upper()}_PORT"
    return (Key("internal_port", port, why=f"the {role} server listens on {port} ({setting})"),
            Key("auto_stop_machines", "off", why=STOPS, absent="warning"),
            Key("auto_start_machines", True, severity="warning", why="a stopped machine would stay stopped",
                absent="quiet"),
            Key("min_machines_running", 1, "keep", check=at_least_one_machine, absent="error",
                why="unset means 0: Fly may stop the one machine, and game clients cannot wake it"))


def http_service(settings: Settings) -> Table:
    """The portal as an [http_service] (what `fly launch` writes): kept in that form when the checkout has it."""
    keys = (*_always_on("portal", settings.portal_port), Key("force_https", True, "add"))
    concurrency = Table(tuple(Key(k, v) for k, v in PORTAL_CONCURRENCY.items()), default_only=True)
    return Table(keys, tables=(("concurrency", concurrency),), arrays=(_checks(settings, True, "checks"),),
                 label="[http_service] ")


def _service(settings: Settings, role: str, port: int) -> Entry:
    portal = role == "portal"
    if portal:
        ports = Array((Entry(Table((Key("handlers", ["http"]), Key("force_https", True, "add"))), ("port", 80)),
                       Entry(Table((Key("handlers", ["tls", "http"]),)), ("port", 443))))
        about = "Phoenix portal: HTTPS on 443, HTTP on 80 redirected to HTTPS."
    else:
        # The game client connects to the same port the server listens on; any other public port of this
        # service is stale (from an earlier port setting), so the list is ours whole.
        ports = Array((Entry(Table((Key("handlers", [], absent="quiet"),)), ("port", port)),), only_ours=True,
                      stale=f"publishes another port than {port}: game clients dial the port they are told")
        about = (f"{role} game server: raw TCP on its own public port (needs a dedicated IPv4; idle connections "
                 "close after 60 s).")
    internal, *rest = _always_on(role, port)
    keys = (internal, Key("protocol", "tcp"), *rest)
    concurrency = Table(tuple(Key(k, v) for k, v in (PORTAL_CONCURRENCY if portal else GAME_CONCURRENCY).items()),
                        default_only=True)
    table = Table(keys, tables=(("concurrency", concurrency),), arrays=(("ports", ports), _checks(settings, portal)),
                  notes=(f"{ROLE_MARK} {role}", about))
    default = next(f.default for f in fields(Settings) if f.name == f"{role}_port")
    return Entry(table, ("internal_port", port), role, f"service {role} (internal_port {port})",
                 f"no service has internal_port {port} ({role}), so nothing reaches it",
                 former=(default,) if default != port else ())


def fly_toml_spec(settings: Settings, app_version: str, portal_http_service: bool = False) -> Table:
    """The whole of fly.toml as we want it (`app_version`: the umbrella's mix.exs version, the image label;
    `portal_http_service`: the checkout serves the portal from an [http_service], which is kept as it is)."""
    s = settings
    stop_note = ("the BEAM stops cleanly (game sessions saved, connections closed) on SIGTERM; Fly's default is "
                 "SIGINT and 5 s")
    root = (Key("app", s.app, severity="warning", why="every task deploys BEZGELOR_FLY_APP"),
            Key("primary_region", s.region, "keep", "region", region_check),
            Key("kill_signal", KILL_SIGNAL, severity="warning", why=stop_note),
            Key("kill_timeout", units.fly_duration(s.kill_timeout_s), "keep", "kill_timeout_s",
                fly_duration_check(high=FLY_MAX_KILL_TIMEOUT_S), same_duration, severity="warning",
                why="Fly kills the machine 5 s after the signal by default"))
    build = Table((Key("dockerfile", "Dockerfile", severity="warning", why="`inv init` writes the image's Dockerfile "
                       "there", absent="quiet"),),          # Fly's default is ./Dockerfile
                  tables=(("args", Table((Key("APP_VERSION", app_version, "add"),),
                                         notes=("`inv deploy.full` passes --build-arg APP_VERSION=<git describe>, "
                                                "which wins over this default.",))),))
    # Absent, PHX_SERVER and ECTO_IPV6 are quiet: bin/server sets PHX_SERVER, and the runtime area judges the
    # Repo's IPv6 whatever it reads
    env = Table((Key("PHX_HOST", s.hostname, "add"), Key("PHX_SERVER", "true", severity="warning",
                                                         why="the release starts no web server without it",
                                                         absent="quiet"),
                 Key("PORT", str(s.portal_port), why=f"the portal listens on {s.portal_port} (BEZGELOR_PORTAL_PORT)"),
                 Key("ECTO_IPV6", "true", severity="warning", why="Fly's private network is IPv6 only: the Repo's "
                     "socket_options read it", absent="quiet")))
    migrate_why = (f"with BEZGELOR_PG_FLAVOR=mpg, {MIGRATE} must connect on {DIRECT_URL_VARIABLE}: through "
                   "PgBouncer (DATABASE_URL) the migrations' advisory locks fail" if s.pg_flavor == "mpg" else
                   f"migrations ({MIGRATE}) will not run before new machines start")
    deploy = Table((Key("release_command", release_command(s.pg_flavor), severity="warning", why=migrate_why),
                    Key("release_command_timeout", RELEASE_COMMAND_TIMEOUT, "keep", check=fly_duration_check(),
                        same=same_duration, absent="quiet"),
                    Key("strategy", "rolling", comment="not bluegreen: see the note at the top", severity="warning",
                        why="bluegreen runs a second game world against the same database while the new machine "
                            "warms up", absent="quiet"),              # `fly deploy` rolls by default
                    Key("wait_timeout", units.fly_duration(s.deploy_wait_timeout_s), "keep", "deploy_wait_timeout_s",
                        fly_duration_check(), same_duration, absent="quiet")))    # deploy.full passes its own
    services = Array(tuple(_service(s, role, port) for role, port in s.ports.all().items()
                           if not (portal_http_service and role == "portal")),
                     stale="has an internal_port on which nothing listens")
    vm = Array((Entry(Table((Key("memory", units.fly_memory(s.vm_memory_mb), "keep", "vm_memory_mb", memory_check,
                                 same_memory, aliases=(("memory_mb", units.parse_memory_mb),)),
                             Key("cpu_kind", s.vm_cpu_kind, "keep", "vm_cpu_kind"),
                             Key("cpus", s.vm_cpus, "keep", "vm_cpus", positive_int_check))),
                      label="[[vm]]", missing="fly.toml has no [[vm]], so Fly gives the machine 256 MB",
                      severity="warning"),))
    reboot = "a world whose VM exits (or that Erlang's heart kills) must be booted again"
    restart = Array((Entry(Table((Key("policy", RESTART_POLICY, severity="warning", why=reboot),)),
                           label="[[restart]]", missing=f"fly.toml sets no [[restart]] policy: machines `fly deploy` "
                           f"makes restart on failure by default (init says so explicitly); {reboot}",
                           severity="info"),))
    portal = (("http_service", http_service(s)),) if portal_http_service else ()
    return Table(root, tables=(("build", build), ("env", env), ("deploy", deploy), *portal),
                 arrays=(("services", services), ("vm", vm), ("restart", restart)))


@dataclass(frozen=True)
class Kept:
    """A value of the checkout's kept although its setting (not given) says otherwise."""
    path: str
    value: Any
    setting_env: str
    setting_value: Any
    changed: bool = field(default=False)   # the setting was given: the file's value was replaced

    def say(self) -> str:
        if self.changed:
            return f"{self.path} {self.value!r} → {self.setting_value!r} ({self.setting_env})"
        return (f"{self.path} {self.value!r} kept ({self.setting_env} is not set; its default is "
                f"{self.setting_value!r}: set it to change this)")
