"""Where things live in the release image the Dockerfile builds: the one source of `/app/bin/migrate`,
`/app/bin/server` and `/app/bin/<release>` for fly.toml, the docs, the deploy and the remote console."""

from __future__ import annotations

APP_DIR = "/app"             # WORKDIR of both stages: the release is copied to /app


def bin_path(script: str) -> str:
    """A script of the release (an overlay such as migrate, or the release's own script)."""
    return f"{APP_DIR}/bin/{script}"


MIGRATE = bin_path("migrate")     # rel/overlays/bin/migrate: the release command
SERVER = bin_path("server")       # rel/overlays/bin/server: the image's CMD


def built_release(release: str) -> str:
    """Where `mix release <release>` leaves the release in the builder stage."""
    return f"{APP_DIR}/_build/prod/rel/{release}"
