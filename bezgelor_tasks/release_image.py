"""Where things live in the release image the Dockerfile builds: the one source of `/app/bin/migrate`,
`/app/bin/server` and `/app/bin/<release>` for fly.toml, the docs, the deploy and the remote console, and of
the database calls made inside it (`/app/bin/<release> eval '<Db>.Release.status()'`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bezgelor_tasks.settings import Settings

APP_DIR = "/app"             # WORKDIR of both stages: the release is copied to /app


def bin_path(script: str) -> str:
    """A script of the release (an overlay such as migrate, or the release's own script)."""
    return f"{APP_DIR}/bin/{script}"


MIGRATE = bin_path("migrate")     # the release's bin/migrate: the release command (it migrates, whatever it is given)
SERVER = bin_path("server")       # rel/overlays/bin/server: the image's CMD


def built_release(release: str) -> str:
    """Where `mix release <release>` leaves the release in the builder stage."""
    return f"{APP_DIR}/_build/prod/rel/{release}"


def release_eval(release: str, expr: str) -> str:
    """The `-C` string of `fly ssh console` that evaluates `expr` in a fresh VM of the release (no running node
    needed): `/app/bin/<release> eval "<expr>"`, the expression one word for the machine's word splitter (its
    double quotes escaped; the line readable in the docs inside `-C '...'`)."""
    if any(c in expr for c in "'$`\n\\") or not expr.strip():
        raise ValueError(f"an eval expression must be one line without single quotes, $, ` or \\: {expr!r}")
    quoted = expr.replace('"', '\\"')
    return f'{bin_path(release)} eval "{quoted}"'


def db_release_module(db_otp_app: str) -> str:
    """The release module init writes (templates/elixir/release.ex: migrate/0, status/0, rollback_to/1), in the
    app that owns the repo: `inv db.status` and `inv db.rollback` call it by name, never through bin/migrate (a
    checkout's own bin/migrate may migrate, and seed, whatever it is asked)."""
    from bezgelor_tasks.checkout.discover import camelize

    return f"{camelize(db_otp_app)}.Release"


def db_release_module_file(db_otp_app: str) -> str:
    """Where that module lives in the checkout (Mix's convention for its name)."""
    return f"apps/{db_otp_app}/lib/{db_otp_app}/release.ex"


def db_release_module_text(root: Path, db_otp_app: str) -> str | None:
    """The text of the file where our release module lives (None: there is none); whose it is, its marker says
    (`files.has_marker`): the one reading of that file for init, verify and the db tasks."""
    from bezgelor_tasks.files import read_text

    return read_text(root / db_release_module_file(db_otp_app))


def db_release_call(settings: Settings, call: str) -> str:
    """`/app/bin/<release> eval '<Db>.Release.<call>'`: a function of our release module, run in the release
    the image has (`status()`, `rollback_to("VERSION")`)."""
    return release_eval(settings.release_name, f"{db_release_module(settings.db_otp_app)}.{call}")
