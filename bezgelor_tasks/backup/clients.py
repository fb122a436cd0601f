"""Which PostgreSQL client to use: pg_dump must be at least the server's major version; the newest is best.

Clients are looked for in BEZGELOR_PG_BINDIR, then the places packagers put them (Debian/Ubuntu
/usr/lib/postgresql/<N>/bin, Homebrew's postgresql@<N> and libpq kegs, the PGDG RPMs' /usr/pgsql-<N>/bin),
then PATH. The newest wins: pg_dump reads every older server, and its compression (zstd/lz4 from 16 on)
is the client's, not the server's. The major of a directory is read from its path when the packager
put it there, else from the `pg_dump (PostgreSQL) N.M` string compiled into the binary (no process
needed just to learn a version).
"""

from __future__ import annotations

import glob
import os
import platform
import re
import sys
from pathlib import Path

from bezgelor_tasks.backup.commands import Client
from bezgelor_tasks.errors import UserError

# Searched in this order (os.pathsep-separated globs); PATH comes after them.
STANDARD_DIRS = (
    "/usr/lib/postgresql/*/bin",            # Debian, Ubuntu (PGDG apt repository for newer majors)
    "/opt/homebrew/opt/postgresql@*/bin",   # Homebrew on Apple silicon
    "/usr/local/opt/postgresql@*/bin",      # Homebrew on Intel macOS, Linuxbrew
    "/opt/homebrew/opt/libpq/bin",          # Homebrew's client-only keg
    "/usr/local/opt/libpq/bin",
    "/usr/pgsql-*/bin",                     # PGDG RPMs (Fedora, RHEL, Rocky, Alma)
)
CLIENT_GLOB = os.pathsep.join(STANDARD_DIRS)
DUMP_TOOLS = ("pg_dump", "pg_restore", "psql")
_MAJOR_IN_PATH = re.compile(r"(?:/|postgresql@|pgsql-|postgresql-)(\d{1,2})(?:\.\d+)*(?:/bin)?/?$")
_MAJOR_IN_BINARY = re.compile(rb"pg_dump \(PostgreSQL\) (\d{1,2})(?:\.|beta|rc|devel)")


def search_path(bindir: str = "", pattern: str = CLIENT_GLOB, *, with_path: bool = True) -> str:
    """The configured directory first, then `pattern`'s globs, then PATH's directories."""
    parts = [bindir] if bindir else []
    parts += [p for p in pattern.split(os.pathsep) if p]
    if with_path:
        parts += [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return os.pathsep.join(parts)


def default_search(bindir: str = "") -> str:
    """Where to look when the caller names nothing: `bindir`, the standard places, PATH."""
    return search_path(bindir)


def major_of(bindir: Path) -> int | None:
    """The major version of the pg_dump in `bindir`: from the (resolved) path, else from the binary."""
    exe = (bindir / "pg_dump").resolve()
    for where in (str(bindir), str(exe.parent)):
        if m := _MAJOR_IN_PATH.search(where.rstrip("/")):
            return int(m.group(1))
    try:
        with open(exe, "rb") as f:
            head = f.read(16 << 20)
    except OSError:
        return None
    found = _MAJOR_IN_BINARY.search(head)
    return int(found.group(1)) if found else None


def installed(pattern: str | None = None) -> list[Client]:
    """Every client with a pg_dump found through `pattern` (os.pathsep-separated globs; default: the
    standard places and PATH), newest first."""
    pattern = pattern or default_search()
    found: dict[Path, Client] = {}
    for entry in pattern.split(os.pathsep):
        for d in sorted(glob.glob(entry)) if entry else []:
            bindir = Path(d)
            exe = bindir / "pg_dump"
            if not exe.is_file() or "pg_wrapper" in str(exe.resolve()):
                continue  # Debian's /usr/bin wrapper: the real binaries are under /usr/lib/postgresql
            real = exe.resolve().parent
            if real in found:
                continue
            major = major_of(bindir)
            if major is not None:
                found[real] = Client(major, bindir)
    return sorted(found.values(), key=lambda c: c.major, reverse=True)


def newest(pattern: str | None = None, *, need: tuple[str, ...] = ("pg_dump",)) -> Client:
    pattern = pattern or default_search()
    for c in installed(pattern):
        if all((c.bindir / n).is_file() for n in need):
            return c
    raise UserError(f"No PostgreSQL client programs ({', '.join(need)}) were found (looked in "
                    f"{_shown(pattern)}).", fix=install_hint(None))


def server_major(version_num: str) -> int:
    """`SHOW server_version_num` → major: 150020 → 15, 90624 → 9 (9.6: any newer pg_dump reads it)."""
    if not version_num.strip().isdigit():
        raise UserError(f"The server's version number could not be read (psql said {version_num.strip()!r}).",
                        fix="run the same command again; if it repeats, report it with the output above.")
    return int(version_num.strip()) // 10000


def choose(server: int, available: list[Client], *, need: tuple[str, ...] = ("pg_dump",)) -> Client:
    """The newest client at least as new as the server; never an older pg_dump (it refuses newer servers)."""
    usable = sorted((c for c in available if c.major >= server and all((c.bindir / n).is_file() for n in need)),
                    key=lambda c: c.major, reverse=True)
    if usable:
        return usable[0]
    have = ", ".join(str(c.major) for c in available) or "none"
    raise UserError(
        f"The database server runs PostgreSQL {server}, but the newest pg_dump found here is older "
        f"(versions found: {have}); pg_dump refuses to dump a newer server, so no dump was started.",
        fix=install_hint(server) + " Or set BEZGELOR_PG_BINDIR to the directory of a newer pg_dump.")


def require(server: int | None, pattern: str | None = None) -> Client:
    """Before any tunnel opens: a usable client for a server of this major (any client when unknown)."""
    if server is None:
        return newest(pattern, need=DUMP_TOOLS)
    return choose(server, installed(pattern), need=DUMP_TOOLS)


def os_release() -> dict[str, str]:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return {}
    return {k: v.strip('"') for k, _, v in (line.partition("=") for line in text.splitlines()) if k}


def install_hint(major: int | None, *, system: str | None = None, release: dict[str, str] | None = None) -> str:
    """How to install the PostgreSQL `major` client on this OS (the newest when `major` is None)."""
    n = str(major or 17)
    system = system or sys.platform
    if system == "darwin":
        return f"install it with Homebrew: `brew install postgresql@{n}` (or `brew install libpq`)."
    rel = os_release() if release is None else release
    family = f"{rel.get('ID', '')} {rel.get('ID_LIKE', '')}"
    if re.search(r"\b(debian|ubuntu)\b", family):
        return (f"install it from the PostgreSQL apt repository: `sudo apt-get install -y postgresql-common && "
                f"sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh && "
                f"sudo apt-get install -y postgresql-client-{n}` (Debian 12 itself ships only version 15).")
    if re.search(r"\b(fedora|rhel|centos|rocky|almalinux)\b", family):
        return (f"install it from the PostgreSQL yum repository (https://www.postgresql.org/download/linux/redhat/): "
                f"`sudo dnf install -y postgresql{n}`; it lands in /usr/pgsql-{n}/bin.")
    if "alpine" in family:
        return f"install it: `apk add postgresql{n}-client`."
    return (f"install the PostgreSQL {n} client programs (pg_dump, pg_restore, psql; "
            f"https://www.postgresql.org/download/ — {platform.system() or 'this OS'}) and set BEZGELOR_PG_BINDIR "
            "to their directory.")


def with_server_programs(client: Client, pattern: str | None = None) -> Client:
    """A version that also has initdb/pg_ctl, at least `client.major` (the scratch cluster for restores)."""
    pattern = pattern or default_search()
    for c in sorted(installed(pattern), key=lambda c: c.major):
        if c.major >= client.major and (c.bindir / "initdb").is_file() and (c.bindir / "pg_ctl").is_file():
            return c
    raise UserError(
        f"Verifying a PostgreSQL {client.major} backup needs PostgreSQL {client.major} (or newer) server "
        f"programs (initdb, pg_ctl) to start a scratch cluster, and none were found (looked in {_shown(pattern)}).",
        fix=f"install them (`apt-get install postgresql-{client.major}`, or `brew install postgresql@{client.major}`),"
            " or verify with --tier standard.")


def _shown(pattern: str) -> str:
    parts = [p for p in pattern.split(os.pathsep) if p]
    return ", ".join(parts[:8]) + (" and PATH" if len(parts) > 8 else "")
