"""fly.toml: patched in place with tomlkit, so the user's comments and keys we do not own survive.

We own: app, primary_region, kill_signal, kill_timeout, [build] dockerfile and args.APP_VERSION,
[env] PHX_HOST/PHX_SERVER/PORT, [deploy] release_command/release_command_timeout/strategy/wait_timeout,
the four [[services]] (found by our role comment, else by internal_port, so a re-run updates them in
place) and the first [[vm]]. An [http_service] (what `fly launch` writes) is converted into the
portal's [[services]] (its concurrency and force_https kept). Everything comes from Settings; a
second run on our own output changes nothing.

`read_fly_toml` reads a fly.toml back for verify, with the line of each service where it can be found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import ParseError
from tomlkit.items import AoT, Comment, Table

from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.files import FileChange, read_text
from bezgelor_tasks.pg_flavor import release_command
from bezgelor_tasks.settings import Settings

FLY_TOML = "fly.toml"
ROLE_MARK = "bezgelor-tasks service:"
HEADER_MARK = "bezgelor-tasks keeps this file in step"
# Fly clamps check durations to 1s..60s (a longer grace_period acts as 60s). Longer boots (game data
# loading) are covered by `fly deploy`'s wait_timeout and by `inv deploy.full`'s own health gate.
FLY_MAX_CHECK_DURATION_S = 60
# Fly's default concurrency limit is 25 connections per machine: far too few for a game server on a
# single machine. We set a higher one only where the user has none.
GAME_CONCURRENCY = {"type": "connections", "soft_limit": 800, "hard_limit": 1000}
PORTAL_CONCURRENCY = {"type": "requests", "soft_limit": 200, "hard_limit": 250}
RELEASE_COMMAND_TIMEOUT = "10m"
# Fly stops a machine with SIGINT and 5 s by default; the BEAM shuts down cleanly on SIGTERM (flyctl's
# Phoenix scanner writes the same). kill_timeout comes from BEZGELOR_KILL_TIMEOUT (Fly allows ≤ 300 s).
KILL_SIGNAL = "SIGTERM"
FLY_MAX_KILL_TIMEOUT_S = 300

HEADER = f"""\
# fly.toml for Bezgelor: the portal (HTTP) and the auth, realm and world game servers (raw TCP), all on
# one machine. {HEADER_MARK}
# with the BEZGELOR_* settings (`inv init`): it sets app, region, build, env, deploy, the four
# [[services]] and [[vm]], and keeps your comments and any other keys.
# Change ports, sizes and names in .env, not here, so the Dockerfile and verify follow.
#
# Fly's proxy closes a TCP connection that has been idle for 60 seconds, on every service: game clients
# (or the servers) must send something more often than that, or players are disconnected.
# The game ports need a dedicated IPv4 (`fly ips allocate-v4 --yes`): a shared IPv4 routes by domain
# name and so serves only HTTP and TLS.
# Every service has auto_stop_machines = "off": the four share this machine, so stopping it while the
# portal is idle would stop the game servers too.
# [deploy] strategy is "rolling": "bluegreen" would run a second game world against the same database
# while the new machine warms up. `inv deploy.full` gates on /health and the game ports itself and rolls
# back to the last healthy image when they fail.

"""


def duration(seconds: int | float) -> str:
    """Fly durations are strings ("10s"): a bare integer means milliseconds (or nanoseconds)."""
    return f"{int(seconds)}s"


def check_grace_period_s(settings: Settings) -> int:
    return max(1, min(settings.health_grace_period_s, FLY_MAX_CHECK_DURATION_S))


def vm_memory_value(mb: int) -> str | int:
    """"4gb" when it is a whole number of GB, else the MB as an integer (both are what Fly accepts)."""
    return f"{mb // 1024}gb" if mb % 1024 == 0 else mb


# Fly reads [[vm]] memory the way flyctl does (helpers.ParseSize with go-units' RAMInBytes): a bare
# integer (or digit string) is MB; otherwise a number with an optional k/m/g/t/p unit, an optional
# "i" and an optional "b", any case, binary multiples ("4gb" == "4GiB" == "4g" == 4096 MB).
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s?([kmgtp])?i?b?\s*", re.I)
_MEMORY_MB_PER_UNIT = {"": None, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 ** 2, "p": 1024 ** 3}


def parse_memory_mb(value: Any) -> int | None:
    """MB from a [[vm]] memory (or memory_mb) value: 4096, "4096", "4096mb", "4gb", "4GiB", "4 GB".

    The one parser of Fly memory sizes: init uses it to leave an equal value alone, verify to read it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    if value.strip().isdigit():
        return int(value.strip())
    m = _MEMORY.fullmatch(value)
    if not m:
        return None
    number, unit = float(m.group(1)), (m.group(2) or "").lower()
    # go-units: a number without a unit is bytes (only the all-digits form above means MB).
    per = _MEMORY_MB_PER_UNIT[unit]
    return int(number / (1024 * 1024)) if per is None else int(number * per)


@dataclass(frozen=True)
class ServiceSpec:
    role: str          # portal | auth | realm | world
    port: int

    @property
    def is_portal(self) -> bool:
        return self.role == "portal"


def service_specs(settings: Settings) -> list[ServiceSpec]:
    return [ServiceSpec(role, port) for role, port in settings.ports.all().items()]


def app_version(co: Checkout) -> str:
    """The umbrella's `version:` from mix.exs (the image label when `fly deploy` is run by hand)."""
    mix = co.root / "mix.exs"
    m = re.search(r'version:\s*"([^"]+)"', mix.read_text(encoding="utf-8")) if mix.is_file() else None
    return m.group(1) if m else "0.0.0"


# ---------------------------------------------------------------------------------------------
# Small tomlkit helpers that change nothing when the value is already right (so re-runs keep the
# user's formatting and trailing comments).

def _plain(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


def _container(table: Any) -> Container:
    return table if isinstance(table, Container) else table.value


def _header_indent(table: Any) -> str | None:
    """The spaces before a table's header (None for the document itself)."""
    return table.trivia.indent.replace("\n", "") if isinstance(table, Table) else None


# Keys of a table are indented one step deeper than its header, as `fly launch` writes them. tomlkit
# prefixes the header's own indentation to what is appended to a table, so one step is enough.
STEP = "  "


def _new_table(parent: Any, *comments: str) -> Table:
    """A table we add, laid out like the rest of the file: its header one step deeper than its
    parent's (the document's own tables at the margin), comments like keys. `_tidy` adds the blank line."""
    table = tomlkit.table()
    header = _header_indent(parent)
    table.trivia.indent = "" if header is None else header + STEP
    for text in comments:
        note = tomlkit.comment(text)
        note.trivia.indent = STEP
        table.add(note)
    return table


def _tidy(text: str) -> str:
    """One blank line before each table header (unless a comment introduces it) and never two in a
    row: tables we added then read like the user's. Whitespace only: if the data would differ (a
    multi-line string), the text is returned as it was."""
    out: list[str] = []
    for line in text.split("\n"):
        blank = not line.strip()
        if blank and out and not out[-1].strip():
            continue
        if line.lstrip().startswith("[") and out and out[-1].strip() and not out[-1].lstrip().startswith("#"):
            out.append("")
        out.append(line)
    tidy = "\n".join(out)
    try:
        same = tomlkit.parse(tidy).unwrap() == tomlkit.parse(text).unwrap()
    except ParseError:
        same = False
    return tidy if same else text


def _add(table: Any, key: str, value: Any, comment: str | None = None) -> None:
    """Add a new key where a person would: right after the table's last plain value (not after trailing
    comments that introduce the next section), indented like its siblings. A sub-table placed there
    is still valid TOML: it only has to come before the next [[array]] header, which it does."""
    item = tomlkit.item(value)
    if comment:
        item.comment(comment)
    body = _container(table).body
    simple = [(k, v) for k, v in body if k is not None and not isinstance(v, (Table, AoT))]
    anchor = simple[-1] if simple else None
    if isinstance(item, AoT) or anchor is None:
        if not isinstance(item, (Table, AoT)):
            item.trivia.indent = STEP if isinstance(table, Table) else ""
        table[key] = item
        return
    if not isinstance(item, Table):
        item.trivia.indent = anchor[1].trivia.indent
    table[key] = item  # tomlkit's public API places a plain key before the table's sub-tables


def _set(table: Any, key: str, value: Any, comment: str | None = None) -> None:
    if key in table:
        if _plain(table[key]) == value and type(_plain(table[key])) is type(value):
            return
        table[key] = value
        return
    _add(table, key, value, comment)


def _table(parent: Any, key: str) -> Any:
    if key not in parent:
        _add(parent, key, _new_table(parent))
    item = parent[key]
    if not isinstance(item, dict):
        raise UserError(f"fly.toml has `{key}` as a value, not a table, so it cannot be patched.",
                        fix=f"make it a [{key}] table (or delete it) and run `inv init` again.")
    return item


def _aot(parent: Any, key: str) -> AoT:
    if key not in parent:
        parent[key] = tomlkit.aot()
    item = parent[key]
    if not isinstance(item, AoT):
        if isinstance(item, list) and not item:
            parent[key] = tomlkit.aot()
            return parent[key]
        raise UserError(f"fly.toml has `{key}` in a form this tool cannot patch (not [[{key}]] tables).",
                        fix=f"write it as [[{key}]] tables (or delete it) and run `inv init` again.")
    return item


def _role_of(table: Table) -> str | None:
    for key, item in table.value.body:
        if key is None and isinstance(item, Comment):
            text = item.as_string()
            if ROLE_MARK in text:
                return text.split(ROLE_MARK, 1)[1].strip().split()[0]
    return None


def _find_service(services: AoT, spec: ServiceSpec, taken: set[int]) -> Table | None:
    for i, svc in enumerate(services):
        if i not in taken and _role_of(svc) == spec.role:
            taken.add(i)
            return svc
    for i, svc in enumerate(services):
        if i not in taken and _role_of(svc) is None and _plain(svc.get("internal_port")) == spec.port:
            taken.add(i)
            return svc
    return None


def _new_service(doc: Any, spec: ServiceSpec) -> Table:
    about = ("Phoenix portal: HTTPS on 443, HTTP on 80 redirected to HTTPS." if spec.is_portal else
             f"{spec.role} game server: raw TCP on its own public port (needs a dedicated IPv4; idle "
             "connections close after 60 s).")
    return _new_table(doc, f"{ROLE_MARK} {spec.role}", about)


def _patch_service(svc: Table, spec: ServiceSpec, grace: int, force_https: bool | None = None) -> None:
    _set(svc, "internal_port", spec.port)
    _set(svc, "protocol", "tcp")
    _set(svc, "auto_stop_machines", "off")
    _set(svc, "auto_start_machines", True)
    _set(svc, "min_machines_running", 1)
    if "concurrency" not in svc:
        conc = _new_table(svc)
        for k, v in (PORTAL_CONCURRENCY if spec.is_portal else GAME_CONCURRENCY).items():
            _add(conc, k, v)
        _add(svc, "concurrency", conc)
    ports = _aot(svc, "ports")
    wanted: list[dict[str, Any]]
    if spec.is_portal:
        port80 = next((p for p in ports if _plain(p.get("port")) == 80), None)
        if force_https is None:  # a force_https already on port 80 is the user's choice: keep it
            force_https = bool(_plain(port80.get("force_https", True))) if port80 is not None else True
        wanted = [{"port": 80, "handlers": ["http"], "force_https": force_https},
                  {"port": 443, "handlers": ["tls", "http"]}]
    else:
        # The game client connects to the same port the server listens on; any other public port
        # of this service would be stale (from an earlier port setting), so the list is ours whole.
        wanted = [{"port": spec.port, "handlers": []}]
        stale = [i for i, p in enumerate(ports) if _plain(p.get("port")) != spec.port]
        for i in reversed(stale):
            del ports[i]
    for want in wanted:
        entry = next((p for p in ports if _plain(p.get("port")) == want["port"]), None)
        if entry is None:
            entry = _new_table(svc)
            ports.append(entry)
        for k, v in want.items():
            if k == "handlers":
                if _plain(entry.get("handlers")) != v:
                    arr = tomlkit.array()
                    arr.extend(v)
                    if "handlers" in entry:
                        entry["handlers"] = arr
                    else:
                        _add(entry, "handlers", arr)
            else:
                _set(entry, k, v)
    if spec.is_portal:
        checks = _aot(svc, "http_checks")
        check = next((c for c in checks if _plain(c.get("path")) == "/health"), None)
        if check is None:
            check = _new_table(svc, "Full readiness: database and the three game ports (503 if any is down).")
            checks.append(check)
        _set(check, "interval", "10s")
        _set(check, "timeout", "5s")
        _set(check, "grace_period", duration(grace))
        _set(check, "method", "GET")
        _set(check, "path", "/health")
        _set(check, "protocol", "http")
        headers = _table(check, "headers")
        # Fly's checks reach the machine over plain HTTP; force_ssl would answer 301 without this.
        _set(headers, "X-Forwarded-Proto", "https")
    else:
        checks = _aot(svc, "tcp_checks")
        if len(checks) == 0:
            checks.append(_new_table(svc))
        check = checks[0]
        _set(check, "interval", "15s")
        _set(check, "timeout", "2s")
        _set(check, "grace_period", duration(grace))


@dataclass(frozen=True)
class HttpService:
    """What an [http_service] table (as `fly launch` writes) held, taken out of the document."""
    line: int
    values: dict[str, Any]

    def explain(self, settings: Settings) -> str:
        kept = [k for k in ("concurrency", "force_https", "processes") if k in self.values]
        changed = []
        for key, ours in (("auto_stop_machines", "off"), ("min_machines_running", 1),
                          ("internal_port", settings.portal_port)):
            if key in self.values and self.values[key] != ours:
                changed.append(f"{key} {self.values[key]!r} → {ours!r}")
        return ("converted [http_service] (line " + str(self.line) + ", as `fly launch` writes it) into the "
                f"portal's [[services]] on port {settings.portal_port}"
                + (f", keeping its {', '.join(kept)}" if kept else "")
                + (f"; {', '.join(changed)}" if changed else "")
                + ": all four services share one machine, so an auto-stop of the portal would stop the game "
                "servers too, and game clients cannot wake a stopped machine")


def _take_http_service(doc: Any, text: str) -> HttpService | None:
    """Remove [http_service] from the document and return what it held (None when there is none)."""
    if "http_service" not in doc:
        return None
    http = doc["http_service"]
    if not isinstance(http, dict):
        raise UserError("fly.toml has `http_service` as a value, not a table, so it cannot be converted.",
                        fix="make it an [http_service] table (or delete it) and run `inv init` again.")
    values = http.unwrap() if hasattr(http, "unwrap") else dict(http)
    del doc["http_service"]
    return HttpService(find_line(text, r"^\s*\[http_service\]") or 0, values)


def _adopt_http_service(svc: Table, http: HttpService) -> None:
    """Carry what the [http_service] said about the portal onto its new [[services]] table."""
    conc = http.values.get("concurrency")
    if isinstance(conc, dict) and conc:
        table = _new_table(svc)
        for k, v in conc.items():
            _add(table, k, v)
        svc["concurrency"] = table          # replaces our default in place
    if isinstance(http.values.get("processes"), list):
        _add(svc, "processes", http.values["processes"])


def _toml_value(value: Any) -> str:
    return tomlkit.item(value).as_string()


def fresh_fly_toml(co: Checkout) -> str:
    """A new fly.toml laid out for people to read; `patch_fly_toml` of it changes nothing."""
    s = co.settings
    grace = duration(check_grace_period_s(s))
    services = []
    for spec in service_specs(s):
        conc = PORTAL_CONCURRENCY if spec.is_portal else GAME_CONCURRENCY
        conc_lines = "\n".join(f"    {k} = {_toml_value(v)}" for k, v in conc.items())
        if spec.is_portal:
            ports_and_checks = f"""\
  [[services.ports]]
    port = 80
    handlers = ["http"]
    force_https = true

  [[services.ports]]
    port = 443
    handlers = ["tls", "http"]

  [[services.http_checks]]
    # Full readiness: database and the three game ports (503 if any is down).
    interval = "10s"
    timeout = "5s"
    grace_period = "{grace}"
    method = "GET"
    path = "/health"
    protocol = "http"
    # Fly's checks reach the machine over plain HTTP; without this force_ssl would answer 301.
    [services.http_checks.headers]
      X-Forwarded-Proto = "https"
"""
            about = "# Phoenix portal: HTTPS on 443, HTTP on 80 redirected to HTTPS."
        else:
            ports_and_checks = f"""\
  [[services.ports]]
    port = {spec.port}
    handlers = []

  [[services.tcp_checks]]
    interval = "15s"
    timeout = "2s"
    grace_period = "{grace}"
"""
            about = (f"# {spec.role} game server: raw TCP on its own public port (needs a dedicated IPv4; "
                     "idle connections close after 60 s).")
        services.append(f"""\
[[services]]
  # {ROLE_MARK} {spec.role}
  {about}
  internal_port = {spec.port}
  protocol = "tcp"
  auto_stop_machines = "off"
  auto_start_machines = true
  min_machines_running = 1
  [services.concurrency]
{conc_lines}

{ports_and_checks}""")
    return HEADER + f"""\
app = {_toml_value(s.app)}
primary_region = {_toml_value(s.region)}
kill_signal = "{KILL_SIGNAL}"
kill_timeout = "{duration(s.kill_timeout_s)}"

[build]
  dockerfile = "Dockerfile"
  # `inv deploy.full` passes --build-arg APP_VERSION=<git describe>, which wins over this default.
  [build.args]
    APP_VERSION = {_toml_value(app_version(co))}

[env]
  PHX_HOST = {_toml_value(s.hostname)}
  PHX_SERVER = "true"
  PORT = "{s.portal_port}"
  # Fly's private network is IPv6 only: Phoenix's runtime.exs (and ours) read this for the Repo's sockets.
  ECTO_IPV6 = "true"

[deploy]
  release_command = {_toml_value(release_command(s.pg_flavor))}
  release_command_timeout = "{RELEASE_COMMAND_TIMEOUT}"
  strategy = "rolling" # not bluegreen: see the note at the top
  wait_timeout = "{duration(s.deploy_wait_timeout_s)}"

""" + "\n".join(services) + f"""
[[vm]]
  memory = {_toml_value(vm_memory_value(s.vm_memory_mb))}
  cpu_kind = {_toml_value(s.vm_cpu_kind)}
  cpus = {s.vm_cpus}
"""


def patch_fly_toml(text: str | None, co: Checkout) -> str:
    """The fly.toml text with our keys set from Settings (pure: text in, text out)."""
    s = co.settings
    grace = check_grace_period_s(s)
    if not text:
        text = fresh_fly_toml(co)
    try:
        doc = tomlkit.parse(text)
    except ParseError as e:
        raise UserError(f"fly.toml is not valid TOML (line {e.line}, column {e.col}): {e}.",
                        fix="fix that line (or move fly.toml aside to get a fresh one) and run `inv init` again.") \
            from None
    http = _take_http_service(doc, text)
    _set(doc, "app", s.app)
    _set(doc, "primary_region", s.region)
    _set(doc, "kill_signal", KILL_SIGNAL)
    _set(doc, "kill_timeout", duration(s.kill_timeout_s))

    build = _table(doc, "build")
    _set(build, "dockerfile", "Dockerfile")
    args = _table(build, "args")
    # `inv deploy.full` passes --build-arg APP_VERSION=<git describe>, which wins over this default.
    _set(args, "APP_VERSION", app_version(co))

    env = _table(doc, "env")
    _set(env, "PHX_HOST", s.hostname)
    _set(env, "PHX_SERVER", "true")
    _set(env, "PORT", str(s.portal_port))
    _set(env, "ECTO_IPV6", "true")

    deploy = _table(doc, "deploy")
    _set(deploy, "release_command", release_command(s.pg_flavor))
    _set(deploy, "release_command_timeout", RELEASE_COMMAND_TIMEOUT)
    _set(deploy, "strategy", "rolling", comment="not bluegreen: see the note at the top")
    _set(deploy, "wait_timeout", duration(s.deploy_wait_timeout_s))

    services = _aot(doc, "services")
    taken: set[int] = set()
    for spec in service_specs(s):
        svc = _find_service(services, spec, taken)
        adopt = None
        if svc is None:
            svc = _new_service(doc, spec)
            services.append(svc)
            taken.add(len(services) - 1)
            adopt = http if spec.is_portal else None
        _patch_service(svc, spec, grace, None if adopt is None else bool(adopt.values.get("force_https", True)))
        if adopt is not None:
            _adopt_http_service(svc, adopt)

    vms = _aot(doc, "vm")
    if len(vms) == 0:
        vms.append(_new_table(doc))
    vm = vms[0]
    # An equal size in another spelling ("4GiB", 4096) is the user's: only a different size is rewritten.
    key = "memory_mb" if "memory_mb" in vm and "memory" not in vm else "memory"
    if parse_memory_mb(_plain(vm.get(key))) != s.vm_memory_mb:
        _set(vm, key, s.vm_memory_mb if key == "memory_mb" else vm_memory_value(s.vm_memory_mb))
    _set(vm, "cpu_kind", s.vm_cpu_kind)
    _set(vm, "cpus", s.vm_cpus)

    out = tomlkit.dumps(doc)
    if out != text:
        out = _tidy(out)
    if HEADER_MARK not in out:
        out = HEADER + out.lstrip("\n")
    return out


def fly_toml_change(co: Checkout) -> FileChange:
    path = co.path(FLY_TOML)
    old = read_text(path)
    new = patch_fly_toml(old, co)
    why = ("Fly app config: four services always on, /health check with X-Forwarded-Proto, migrate on release"
           if old is None else "set app, services, checks and VM from settings (your comments and keys kept)")
    notes: tuple[str, ...] = ()
    if old:
        doc = tomlkit.parse(old)  # patch_fly_toml above has already named a bad line
        launched = _plain(doc.get("app"))
        http = _take_http_service(doc, old)
        if http is not None:
            notes += (http.explain(co.settings),)
        if isinstance(launched, str) and launched != co.settings.app:
            notes += (f"app {launched!r} → {co.settings.app!r} (BEZGELOR_FLY_APP): if {launched!r} is the app "
                      f"you launched, set BEZGELOR_FLY_APP={launched} in .env and run `inv init` again",)
    # Converting [http_service] rewrites a table the user has: show that diff even when applying.
    return FileChange(path, FLY_TOML, old, new, why, mode="patch", notes=notes, show_diff=bool(notes))


# ---------------------------------------------------------------------------------------------
# Reading fly.toml back (for verify).

def find_line(text: str, pattern: str, start: int = 1) -> int | None:
    """1-based line of the first match of `pattern` (a regex, MULTILINE) at or after line `start`."""
    rx = re.compile(pattern)
    for n, line in enumerate(text.splitlines(), 1):
        if n >= start and rx.search(line):
            return n
    return None


@dataclass(frozen=True)
class FlyService:
    index: int
    line: int | None                  # the line of its [[services]] header
    role: str | None                  # from our role comment, if present
    internal_port: int | None
    protocol: str | None
    auto_stop_machines: Any
    auto_start_machines: Any
    min_machines_running: Any
    ports: list[dict[str, Any]]
    http_checks: list[dict[str, Any]]
    tcp_checks: list[dict[str, Any]]
    raw: dict[str, Any]


@dataclass(frozen=True)
class FlyToml:
    text: str
    data: dict[str, Any]
    services: list[FlyService] = field(default_factory=list)

    def service_for_port(self, internal_port: int) -> FlyService | None:
        return next((s for s in self.services if s.internal_port == internal_port), None)

    def line_of(self, pattern: str) -> int | None:
        return find_line(self.text, pattern)

    @property
    def vm(self) -> dict[str, Any]:
        vms = self.data.get("vm") or []
        return vms[0] if isinstance(vms, list) and vms else (vms if isinstance(vms, dict) else {})

    @property
    def vm_memory_mb(self) -> int | None:
        vm = self.vm
        return parse_memory_mb(vm.get("memory", vm.get("memory_mb")))


def read_fly_toml(text: str) -> FlyToml:
    """Parse fly.toml into plain data plus its services with line numbers. Raises UserError on bad TOML."""
    try:
        doc = tomlkit.parse(text)
    except ParseError as e:
        raise UserError(f"fly.toml is not valid TOML (line {e.line}, column {e.col}): {e}.",
                        fix="fix that line and run again.") from None
    data = doc.unwrap()
    header_lines = [n for n, line in enumerate(text.splitlines(), 1) if re.match(r"^\s*\[\[services\]\]", line)]
    raw_services = data.get("services") or []
    tables = doc.get("services")
    services: list[FlyService] = []
    for i, svc in enumerate(raw_services if isinstance(raw_services, list) else []):
        role = _role_of(tables[i]) if isinstance(tables, AoT) else None
        services.append(FlyService(
            index=i, line=header_lines[i] if i < len(header_lines) else None, role=role,
            internal_port=svc.get("internal_port"), protocol=svc.get("protocol"),
            auto_stop_machines=svc.get("auto_stop_machines"), auto_start_machines=svc.get("auto_start_machines"),
            min_machines_running=svc.get("min_machines_running"), ports=list(svc.get("ports") or []),
            http_checks=list(svc.get("http_checks") or []), tcp_checks=list(svc.get("tcp_checks") or []),
            raw=svc))
    return FlyToml(text, data, services)
