"""Finding a pg_dump that can dump the server: the places packagers put it, newest first."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bezgelor_tasks.backup import clients, commands
from bezgelor_tasks.errors import UserError

REAL = clients.newest(need=("pg_dump",)) if clients.installed() else None
needs_client = pytest.mark.skipif(REAL is None, reason="no PostgreSQL client installed")


def _install(where: Path, source: Path) -> Path:
    where.mkdir(parents=True)
    for tool in ("pg_dump", "pg_restore", "psql"):
        shutil.copy(source / tool, where / tool)
    return where


@needs_client
def test_homebrew_pgdg_rpm_and_a_configured_directory_are_found_and_the_newest_wins(tmp_path):
    assert REAL is not None
    brew = _install(tmp_path / "opt/homebrew/opt/postgresql@17/bin", REAL.bindir)   # major from the keg's name
    rpm = _install(tmp_path / "usr/pgsql-16/bin", REAL.bindir)
    custom = _install(tmp_path / "custom/bin", REAL.bindir)                            # major from the binary
    search = clients.search_path(str(custom), os.pathsep.join(
        [str(tmp_path / "opt/homebrew/opt/postgresql@*/bin"), str(tmp_path / "usr/pgsql-*/bin")]), with_path=False)
    found = {c.bindir: c.major for c in clients.installed(search)}
    assert found == {brew: 17, rpm: 16, custom: REAL.major}
    assert clients.require(15, search).bindir == brew, "the newest client ≥ the server"
    assert clients.require(None, search).major == 17
    with pytest.raises(UserError, match="PostgreSQL 18"):
        clients.require(18, search)


def test_the_install_hint_names_the_package_for_this_os():
    debian = {"ID": "debian", "VERSION_ID": "12"}
    assert "postgresql-client-17" in clients.install_hint(17, system="linux", release=debian)
    assert "brew install postgresql@17" in clients.install_hint(17, system="darwin")
    assert "dnf install -y postgresql17" in clients.install_hint(17, system="linux", release={"ID": "rocky",
                                                                                              "ID_LIKE": "rhel"})
    assert "BEZGELOR_PG_BINDIR" in clients.install_hint(17, system="linux", release={"ID": "gentoo"})


def test_zstd_from_16_gzip_before():
    assert commands.compression(clients.Client(17, Path("/x"))) == "zstd:1"
    assert commands.compression(clients.Client(15, Path("/x"))) == "1"
