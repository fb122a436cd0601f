"""The secrets deploy.full makes and the password it keeps: right lengths, never shown, stored 0600."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import pytest

from bezgelor_tasks import settings_load
from bezgelor_tasks.deploy import secretgen, state
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.redact import redact
from bezgelor_tasks.run import Executor

POSTGRES_CREATE_OUTPUT = """Creating postgres cluster bezgelor-db in organization personal
Provisioning 1 of 1 machines with image flyio/postgres-flex:16
==> Monitoring health checks

Postgres cluster bezgelor-db created
  Username:    postgres
  Password:    Zq8vT3kLm2Pw9xYa
  Hostname:    bezgelor-db.internal
  Proxy port:  5432
  Connection string: postgres://postgres:Zq8vT3kLm2Pw9xYa@bezgelor-db.flycast:5432

Save your credentials in a secure place -- you won't be able to see them again!
"""


def test_generated_secrets_have_the_right_shape_and_are_never_shown() -> None:
    key_base, cloak = secretgen.secret_key_base(), secretgen.cloak_key()
    assert len(key_base) >= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", key_base)
    assert len(base64.b64decode(cloak, validate=True)) == 32
    assert secretgen.secret_key_base() != key_base, "random every time"
    assert redact(f"SECRET {key_base} and {cloak}") == "SECRET *** and ***"


def test_the_postgres_password_is_kept_0600_under_bezgelor_and_masked(tmp_path: Path) -> None:
    s = settings_load.load(tmp_path)
    creds = state.extract_credentials(POSTGRES_CREATE_OUTPUT)
    assert creds["password"] == "Zq8vT3kLm2Pw9xYa" and creds["username"] == "postgres"
    assert "Zq8vT3kLm2Pw9xYa" not in redact(POSTGRES_CREATE_OUTPUT)
    assert "fly postgres attach" in redact("fly postgres attach"), "the user name is not a secret"

    path = state.save_credentials(s, creds, Executor())

    assert path == tmp_path / ".bezgelor" / "bezgelor-db.password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert (path.parent / ".gitignore").read_text().splitlines()[-1] == "*"
    assert state.read_credentials(s)["password"] == "Zq8vT3kLm2Pw9xYa"
    assert "postgres://postgres:Zq8vT3kLm2Pw9xYa@" in state.read_credentials(s)["connection_string"]


def test_an_output_without_a_password_is_a_clear_error_naming_where_to_put_it(tmp_path: Path) -> None:
    s = settings_load.load(tmp_path)
    with pytest.raises(UserError, match=r"bezgelor-db\.password as a line PASSWORD="):
        state.save_credentials(s, state.extract_credentials("Postgres cluster bezgelor-db created\n"), Executor())
