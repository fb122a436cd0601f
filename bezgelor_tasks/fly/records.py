"""flyctl's JSON as small typed records.

flyctl's key casing differs between commands (PascalCase for fly-go structs, snake_case for
machines, lowercase for secrets) and has changed before, so every parser lowercases keys and
ignores the ones it does not know. Output that is not what we expect is a `UserError` naming the
command, never a KeyError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.redact import redact

T = TypeVar("T")

MIGRATIONS_MARKER = "BEZGELOR_MIGRATIONS"
ROLLBACK_MARKER = "BEZGELOR_ROLLBACK"


def lower_keys(value: Any) -> Any:
    """The same JSON with every object key lowercased (recursively)."""
    if isinstance(value, dict):
        return {str(k).lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def _excerpt(text: str) -> str:
    one_line = " ".join(text.split())
    return redact(one_line[:160] + ("..." if len(one_line) > 160 else "")) or "(nothing)"


def _not_expected(command: str, text: str, what: str = "something that is not JSON") -> UserError:
    return UserError(
        f"`{command}` printed {what}: {_excerpt(text)}",
        fix="update flyctl (`fly version upgrade`) and retry; if it persists, report the output above.")


def load_json(text: str, command: str) -> Any:
    """JSON from a command's stdout, keys lowercased. Tolerates notices printed before the JSON."""
    stripped = text.strip()
    try:
        return lower_keys(json.loads(stripped))
    except (json.JSONDecodeError, ValueError):
        pass
    # flyctl sometimes prints a notice line before the document: start at the first `[` or `{` line.
    lines = stripped.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("[", "{")):
            try:
                return lower_keys(json.loads("\n".join(lines[i:])))
            except (json.JSONDecodeError, ValueError):
                break
    raise _not_expected(command, text)


def _obj(data: Any, command: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _not_expected(command, json.dumps(data), "JSON that is not an object")
    return data


def _list(data: Any, command: str) -> list[Any]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise _not_expected(command, json.dumps(data), "JSON that is not a list")
    return data


def _str(d: dict[str, Any], *keys: str) -> str:
    for k in keys:
        v = d.get(k)
        if v is not None and v != "":
            return str(v)
    return ""


def _int(d: dict[str, Any], *keys: str) -> int | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            return v
        if isinstance(v, str) and v.strip().lstrip("v").isdigit():
            return int(v.strip().lstrip("v"))
    return None


def _each(items: list[Any], command: str, build: Callable[[dict[str, Any]], T]) -> list[T]:
    return [build(_obj(item, command)) for item in items]


# --- records ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Version:
    version: str


@dataclass(frozen=True)
class WhoAmI:
    email: str


@dataclass(frozen=True)
class App:
    name: str
    status: str
    deployed: bool
    hostname: str
    org: str


@dataclass(frozen=True)
class IP:
    address: str
    type: str
    region: str

    @property
    def is_dedicated_v4(self) -> bool:
        return self.type == "v4"


@dataclass(frozen=True)
class Secret:
    name: str
    digest: str
    status: str


@dataclass(frozen=True)
class Release:
    version: int | None
    status: str
    image_ref: str
    created_at: str
    stable: bool
    description: str
    user: str = ""  # who made it (User.Email)
    reason: str = ""


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    output: str

    @property
    def passing(self) -> bool:
        return self.status == "passing"


@dataclass(frozen=True)
class Machine:
    id: str
    state: str
    region: str
    image_ref: str
    release_version: int | None
    checks: tuple[Check, ...]
    created_at: str = ""
    process_group: str = ""
    standby_for: tuple[str, ...] = ()  # a standby machine (config.standbys) starts only when these fail

    @property
    def checks_passing(self) -> bool:
        """Every check passes (a machine without checks counts as passing: nothing says otherwise)."""
        return all(c.passing for c in self.checks)


@dataclass(frozen=True)
class AppStatus:
    name: str
    status: str
    hostname: str
    version: int | None
    machines: tuple[Machine, ...]


@dataclass(frozen=True)
class ReleaseJson:
    id: str
    version: int | None
    image_ref: str


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    status: str  # "up" or "down"


@dataclass(frozen=True)
class RepoMigrations:
    repo: str
    migrations: tuple[Migration, ...]


@dataclass(frozen=True)
class MigrationStatus:
    repos: tuple[RepoMigrations, ...]

    @property
    def pending(self) -> list[Migration]:
        return [m for r in self.repos for m in r.migrations if m.status != "up"]

    @property
    def applied(self) -> list[Migration]:
        return [m for r in self.repos for m in r.migrations if m.status == "up"]

    @property
    def latest_applied(self) -> int | None:
        versions = [m.version for m in self.applied]
        return max(versions) if versions else None

    def as_json(self) -> dict[str, Any]:
        return {"repos": [{"repo": r.repo, "migrations": [
            {"version": m.version, "name": m.name, "status": m.status} for m in r.migrations]} for r in self.repos]}


# --- parsers ----------------------------------------------------------------------------------------

def parse_version(text: str) -> Version:
    cmd = "fly version --json"
    d = _obj(load_json(text, cmd), cmd)
    if not _str(d, "version"):
        raise _not_expected(cmd, text, "JSON without a Version")
    return Version(_str(d, "version"))


def parse_whoami(text: str) -> WhoAmI:
    cmd = "fly auth whoami --json"
    d = _obj(load_json(text, cmd), cmd)
    return WhoAmI(_str(d, "email"))


def _app(d: dict[str, Any]) -> App:
    org = d.get("organization")
    org_slug = _str(org, "slug", "name") if isinstance(org, dict) else str(org or "")
    return App(name=_str(d, "name"), status=_str(d, "status"), deployed=bool(d.get("deployed")),
               hostname=_str(d, "hostname"), org=org_slug)


def parse_apps(text: str) -> list[App]:
    cmd = "fly apps list --json"
    return _each(_list(load_json(text, cmd), cmd), cmd, _app)


def parse_ips(text: str) -> list[IP]:
    cmd = "fly ips list --json"
    return _each(_list(load_json(text, cmd), cmd), cmd,
                 lambda d: IP(address=_str(d, "address"), type=_str(d, "type"), region=_str(d, "region")))


def parse_secrets(text: str) -> list[Secret]:
    cmd = "fly secrets list --json"
    return _each(_list(load_json(text, cmd), cmd), cmd,
                 lambda d: Secret(name=_str(d, "name"), digest=_str(d, "digest"), status=_str(d, "status")))


def _release(d: dict[str, Any]) -> Release:
    return Release(version=_int(d, "version"), status=_str(d, "status"),
                   image_ref=_str(d, "imageref", "image_ref"), created_at=_str(d, "createdat", "created_at"),
                   stable=bool(d.get("stable")), description=_str(d, "description", "reason"),
                   user=_str(who, "email", "name") if isinstance(who := d.get("user"), dict) else str(who or ""),
                   reason=_str(d, "reason"))


def parse_releases(text: str) -> list[Release]:
    cmd = "fly releases --image --json"
    return _each(_list(load_json(text, cmd), cmd), cmd, _release)


def image_ref_text(value: Any) -> str:
    """An image reference as one string: machines give `{registry, repository, tag, digest}`."""
    if isinstance(value, dict):
        registry, repo, tag = _str(value, "registry"), _str(value, "repository"), _str(value, "tag")
        ref = "/".join(p for p in (registry, repo) if p)
        if tag:
            ref += f":{tag}"
        digest = _str(value, "digest")
        return ref or digest
    return "" if value is None else str(value)


def _machine(d: dict[str, Any]) -> Machine:
    config = d.get("config")
    config = config if isinstance(config, dict) else {}
    metadata = config.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    checks = tuple(Check(name=_str(c, "name"), status=_str(c, "status"), output=_str(c, "output"))
                   for c in (d.get("checks") or []) if isinstance(c, dict))
    standbys = config.get("standbys")
    return Machine(id=_str(d, "id"), state=_str(d, "state"), region=_str(d, "region"),
                   image_ref=image_ref_text(d.get("image_ref", d.get("imageref"))),
                   release_version=_int(metadata, "fly_release_version"), checks=checks,
                   created_at=_str(d, "created_at", "createdat"),
                   process_group=_str(metadata, "fly_process_group"),
                   standby_for=tuple(str(x) for x in standbys) if isinstance(standbys, list) else ())


def parse_status(text: str) -> AppStatus:
    cmd = "fly status --json"
    d = _obj(load_json(text, cmd), cmd)
    machines = tuple(_each(_list(d.get("machines"), cmd), cmd, _machine))
    return AppStatus(name=_str(d, "name"), status=_str(d, "status"), hostname=_str(d, "hostname"),
                     version=_int(d, "version"), machines=machines)


def parse_release_json(text: str) -> ReleaseJson | None:
    """The `{"id","version","image_ref"}` line `fly deploy` prints with FLY_EMIT_RELEASE_JSON=1 (last wins)."""
    found: ReleaseJson | None = None
    for line in text.splitlines():
        line = line.strip()
        if not (line.startswith("{") and line.endswith("}")):
            continue
        try:
            d = lower_keys(json.loads(line))
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(d, dict) and ("image_ref" in d or "imageref" in d):
            found = ReleaseJson(id=_str(d, "id"), version=_int(d, "version"),
                                image_ref=image_ref_text(d.get("image_ref", d.get("imageref"))))
    return found


_MIGRATIONS_LINE = re.compile(rf"^\s*{MIGRATIONS_MARKER}\s+(.*)$", re.M)


def parse_migration_status(text: str, remote: str = "status()") -> MigrationStatus:
    """What our release module's status/0 printed (`remote`: the command that ran, for messages)."""
    cmd = f"fly ssh console -C {remote!r}"
    matches = list(_MIGRATIONS_LINE.finditer(text))
    match = matches[-1] if matches else None
    if match is None:
        undefined = "UndefinedFunctionError" in text or "is not available" in text
        raise UserError(
            f"`{cmd}` printed no {MIGRATIONS_MARKER} line" + (" (the running release has no such module: it was "
                                                              "built before `inv init` added it)" if undefined else "")
            + f": {_excerpt(text)}",
            fix="deploy a release built after `inv init` (its release module has status/0), then retry.")
    data = _obj(load_json(match.group(1), cmd), cmd)
    repos = []
    for r in _list(data.get("repos"), cmd):
        r = _obj(r, cmd)
        migrations = []
        for m in _list(r.get("migrations"), cmd):
            m = _obj(m, cmd)
            version = _int(m, "version")
            if version is None:
                raise _not_expected(cmd, json.dumps(m), "a migration without a version")
            migrations.append(Migration(version=version, name=_str(m, "name"), status=_str(m, "status").lower()))
        ordered = tuple(sorted(migrations, key=lambda x: x.version))
        repos.append(RepoMigrations(repo=_str(r, "repo"), migrations=ordered))
    return MigrationStatus(tuple(repos))


def rollback_confirmed(text: str, version: int) -> bool:
    """True when the migrate script printed `BEZGELOR_ROLLBACK ok <version>`."""
    return re.search(rf"^\s*{ROLLBACK_MARKER}\s+ok\s+{version}\b", text, re.M) is not None


_PASSWORD_LINE = re.compile(r"^\s*Password:\s*(\S+)", re.M | re.I)
_CONNECTION_STRING = re.compile(r"\bpostgres(?:ql)?://[^\s:/@]+:([^@\s]+)@\S+", re.I)


def postgres_credentials(text: str) -> tuple[str | None, str | None]:
    """(password, connection string) from `fly postgres create`'s output, either possibly None."""
    password_match = _PASSWORD_LINE.search(text)
    url_match = _CONNECTION_STRING.search(text)
    password = password_match.group(1) if password_match else (url_match.group(1) if url_match else None)
    return password, (url_match.group(0) if url_match else None)
