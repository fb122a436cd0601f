"""The maintainers' own Fly setup: the real repository as it is after Bezgelor's maintainers deployed it to
Fly themselves (a later state of ../shared/checkouts/, built here; its session fixture is `maintainers_shape`
in shapes.py).

What they have, and what init must keep:
- a release named `bezgelor_portal` (not `bezgelor`) with `rel_templates_path: "apps/bezgelor_portal/rel"`
  and `steps`, listing every umbrella app but bezgelor_dev;
- their own `BezgelorPortal.Release.migrate`, which runs the migrations and then seeds the realm, the
  permissions and the roles (without the seeds, character creation fails on a fresh database);
- overlays in `apps/bezgelor_portal/rel/overlays` (bin/migrate calls that module, bin/server starts the
  release) and an env.sh.eex of their own there (distributed Erlang over IPv6);
- fly.toml with `[http_service]` on the portal's port, `primary_region = "lax"` (their database is there),
  TCP `[[services]]` for the game ports, `/app/bin/migrate` as the release command;
- their Dockerfile: Elixir 1.19 (so `mix assets.deploy` at the umbrella root runs the portal's alias),
  `COPY apps apps` (bezgelor_dev is compiled but not in the release), `mix release bezgelor_portal`;
- runtime.exs reading CLOAK_KEY and WORLD_PUBLIC_ADDRESS, with `socket_options: [:inet6]` on the Repo
  (their fix for `:nxdomain`), no TCP keepalive yet.
Our own text, shaped like Mix's and Phoenix's generators (mix release.init, mix phx.gen.release).
"""

from __future__ import annotations

import re
from pathlib import Path

RELEASE = "bezgelor_portal"
TEMPLATES = "apps/bezgelor_portal/rel"
REGION = "lax"
APPS = ("bezgelor_api", "bezgelor_auth", "bezgelor_core", "bezgelor_crypto", "bezgelor_data", "bezgelor_db",
        "bezgelor_portal", "bezgelor_protocol", "bezgelor_realm", "bezgelor_world")

RELEASES = """
  # Deployed on Fly.io (see fly.toml). bezgelor_dev is a development tool: never in the release.
  defp releases do
    [
      bezgelor_portal: [
        applications: [
{apps}
        ],
        include_executables_for: [:unix],
        rel_templates_path: "apps/bezgelor_portal/rel",
        steps: [:assemble]
      ]
    ]
  end
"""

RELEASE_MODULE = '''defmodule BezgelorPortal.Release do
  @moduledoc """
  Database tasks inside the release (no Mix there): `bin/migrate` runs `migrate/0` as Fly's release command.
  """

  @app :bezgelor_db

  @doc "Runs every pending migration, then the seeds a fresh database needs."
  def migrate do
    load_app()

    for repo <- repos() do
      {:ok, _, _} = Ecto.Migrator.with_repo(repo, &Ecto.Migrator.run(&1, :up, all: true))
    end

    seed()
  end

  # The realm, the permissions and the roles: without them character creation fails on a fresh database.
  # Each seed file is idempotent.
  def seed do
    load_app()

    for repo <- repos() do
      {:ok, _, _} =
        Ecto.Migrator.with_repo(repo, fn _repo ->
          for file <- ~w(realm.exs permissions.exs roles.exs) do
            path = Path.join([:code.priv_dir(@app), "repo", "seeds", file])
            if File.exists?(path), do: Code.eval_file(path)
          end
        end)
    end
  end

  def rollback(repo, version) do
    load_app()
    {:ok, _, _} = Ecto.Migrator.with_repo(repo, &Ecto.Migrator.run(&1, :down, to: version))
  end

  defp repos, do: Application.fetch_env!(@app, :ecto_repos)

  defp load_app do
    Application.ensure_all_started(:ssl)
    Application.load(@app)
  end
end
'''

MIGRATE = """#!/bin/sh
set -eu

cd -P -- "$(dirname -- "$0")"
exec ./bezgelor_portal eval BezgelorPortal.Release.migrate
"""

SERVER = """#!/bin/sh
set -eu

cd -P -- "$(dirname -- "$0")"
PHX_SERVER=true exec ./bezgelor_portal start
"""

ENV_SH = """#!/bin/sh
# Distributed Erlang over Fly's private network (IPv6 only)
if [ -n "${FLY_APP_NAME:-}" ]; then
  export ERL_AFLAGS="-proto_dist inet6_tcp"
  export RELEASE_DISTRIBUTION="name"
  export RELEASE_NODE="${FLY_APP_NAME}-${FLY_IMAGE_REF##*-}@${FLY_PRIVATE_IP}"
fi
"""

FLY_TOML = """\
# fly.toml for Bezgelor (set up by hand, December 2025)
app = 'bezgelor'
primary_region = 'lax'
kill_signal = 'SIGTERM'
kill_timeout = '60s'

[build]

[deploy]
  release_command = '/app/bin/migrate'

[env]
  AUTH_HOST = 'bezgelor.fly.dev'
  REALM_HOST = 'bezgelor.fly.dev'
  WORLD_HOST = 'bezgelor.fly.dev'
  PHX_HOST = 'bezgelor.fly.dev'
  PORT = '4000'

[http_service]
  internal_port = 4000
  force_https = true
  auto_stop_machines = 'off'
  auto_start_machines = true
  min_machines_running = 1
  processes = ['app']

[[services]]
  protocol = 'tcp'
  internal_port = 6600
  auto_stop_machines = 'off'
  min_machines_running = 1

  [[services.ports]]
    port = 6600

  [[services.tcp_checks]]
    interval = '15s'
    timeout = '2s'
    grace_period = '60s'

[[services]]
  protocol = 'tcp'
  internal_port = 23115
  auto_stop_machines = 'off'
  min_machines_running = 1

  [[services.ports]]
    port = 23115

  [[services.tcp_checks]]
    interval = '15s'
    timeout = '2s'
    grace_period = '60s'

[[services]]
  protocol = 'tcp'
  internal_port = 24000
  auto_stop_machines = 'off'
  min_machines_running = 1

  [[services.ports]]
    port = 24000

  [[services.tcp_checks]]
    interval = '15s'
    timeout = '2s'
    grace_period = '60s'

[[vm]]
  memory = '4gb'
  cpu_kind = 'shared'
  cpus = 2
"""

DOCKERFILE = """\
ARG ELIXIR_VERSION=1.19.4
ARG OTP_VERSION=28.2
ARG DEBIAN_VERSION=bookworm-20251117-slim
ARG BUILDER_IMAGE="hexpm/elixir:${ELIXIR_VERSION}-erlang-${OTP_VERSION}-debian-${DEBIAN_VERSION}"
ARG RUNNER_IMAGE="debian:${DEBIAN_VERSION}"

FROM ${BUILDER_IMAGE} AS builder
RUN apt-get update -y && apt-get install -y build-essential git nodejs npm \\
  && apt-get clean && rm -f /var/lib/apt/lists/*_*
WORKDIR /app
RUN mix local.hex --force && mix local.rebar --force
ENV MIX_ENV="prod"

COPY mix.exs mix.lock ./
COPY config config
COPY apps apps
RUN mix deps.get --only $MIX_ENV && mix deps.compile
RUN npm ci --prefix apps/bezgelor_portal/assets
RUN mix assets.deploy
RUN mix compile
RUN mix release bezgelor_portal

FROM ${RUNNER_IMAGE}
RUN apt-get update -y && apt-get install -y libstdc++6 openssl libncurses6 locales ca-certificates \\
  && apt-get clean && rm -f /var/lib/apt/lists/*_*
WORKDIR /app
ENV MIX_ENV="prod"
COPY --from=builder --chown=nobody:root /app/_build/prod/rel/bezgelor_portal ./
USER nobody
EXPOSE 4000 6600 23115 24000
CMD ["/app/bin/server"]
"""

RUNTIME = """
# Fly.io (set up by hand): the secrets, and IPv6 for the database (Fly's private network has no IPv4)
if config_env() == :prod do
  cloak_key = System.get_env("CLOAK_KEY") || raise "CLOAK_KEY is missing"

  config :bezgelor_portal, BezgelorPortal.Vault,
    ciphers: [default: {Cloak.Ciphers.AES.GCM, tag: "AES.GCM.V1", key: Base.decode64!(cloak_key)}]

  world_public_address = System.get_env("WORLD_PUBLIC_ADDRESS") || raise "WORLD_PUBLIC_ADDRESS is missing"
  config :bezgelor_world, public_address: world_public_address

  config :bezgelor_db, BezgelorDb.Repo,
    socket_options: [:inet6]
end
"""


def _write(root: Path, rel: str, text: str, executable: bool = False) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if executable:
        path.chmod(0o755)


def after_maintainers_fly_setup(root: Path) -> Path:
    """Turn a checkout (the real repository, or our fixture umbrella) into the maintainers' own Fly setup."""
    mix = root / "mix.exs"
    text = mix.read_text()
    text = re.sub(r"(\n      listeners: \[Phoenix\.CodeReloader\])\n", r"\1,\n      releases: releases()\n", text,
                  count=1)
    apps = ",\n".join(f"          {app}: :permanent" for app in APPS)
    head, _, _ = text.rstrip().rpartition("end")
    mix.write_text(head.rstrip() + "\n" + RELEASES.format(apps=apps) + "end\n")
    _write(root, "apps/bezgelor_portal/lib/bezgelor_portal/release.ex", RELEASE_MODULE)
    _write(root, f"{TEMPLATES}/overlays/bin/migrate", MIGRATE, executable=True)
    _write(root, f"{TEMPLATES}/overlays/bin/server", SERVER, executable=True)
    _write(root, f"{TEMPLATES}/env.sh.eex", ENV_SH, executable=True)
    _write(root, "fly.toml", FLY_TOML)
    _write(root, "Dockerfile", DOCKERFILE)
    runtime = root / "config" / "runtime.exs"
    runtime.write_text(runtime.read_text().rstrip("\n") + "\n" + RUNTIME)
    return root
