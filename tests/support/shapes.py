"""Checkout shapes our users have, built into temporary folders for the story tests.

- `real_repository(dest)`: the real Bezgelor repository (../shared/checkouts/bezgelor-b92790f.tar.gz,
  beside this project's clone), unpacked and committed with git. `REAL_MISSING` says why it cannot be
  used when the tarball is absent (tests skip with that reason).
- `after_fly_launch(root)`: what `fly launch` (superfly/flyctl's scanner and its Phoenix templates) and
  a user who then added the game ports leave behind: fly.toml with `[http_service]` (auto-stop "stop",
  no machine kept running, `[http_service.concurrency]`), TCP `[[services]]` without checks, an `[env]`
  of the user's own plus flyctl's IPv6 keys, comments, `[[vm]] memory = "4GiB"`; flyctl's Phoenix
  Dockerfile and .dockerignore; a release in mix.exs named after the portal app with its own
  `rel_templates_path`. Our own text, shaped like flyctl's (scanner/phoenix.go,
  scanner/templates/phoenix/, internal/command/launch/, internal/appconfig/serde.go).
- `maintainers_checkout(dest)`: the real repository after its maintainers set up Fly themselves (release
  `bezgelor_portal` with its own templates path, overlays and seeding migrate, `[http_service]`, region lax;
  built in tests/support/shape_maintainers.py).
- `phx_new_umbrella(dest, name)`: what `mix phx.new NAME --umbrella` (Phoenix 1.8,
  installer/templates/phx_umbrella + phx_web + phx_ecto) generates, with three small TCP game apps
  (auth/realm/world) added. Written by the generator below, not copied from Phoenix.

The session fixtures build each shape once; a test that changes one works on a `copy_shape` of it.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.umbrella import copy_fixture, git_init, make_portal_release_variant

PROJECT = Path(__file__).resolve().parents[2]
SHARED = PROJECT.parent / "shared"
REAL_TARBALL = SHARED / "checkouts" / "bezgelor-b92790f.tar.gz"
REAL_MISSING = (f"the real Bezgelor repository is not here ({REAL_TARBALL} is absent: CI puts a copy of "
                "shared/ beside the clone); the story on the real checkout cannot run")


def real_repository(dest: Path) -> Path:
    """Unpack the real repository under `dest` and commit it (it ships without .git)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(REAL_TARBALL) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: no absolute paths or links out of dest
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)  # noqa: S202 - our own shared tarball
    root = dest / "bezgelor"
    git_init(root, tag=None)
    return root


def copy_shape(src: Path, dest: Path) -> Path:
    """A private copy of a built shape (git history included)."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


def commit_all(root: Path, message: str) -> None:
    env = {"GIT_AUTHOR_NAME": "Fixture", "GIT_AUTHOR_EMAIL": "fixture@example.com",
           "GIT_COMMITTER_NAME": "Fixture", "GIT_COMMITTER_EMAIL": "fixture@example.com",
           "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root)}
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, env=env, check=True, capture_output=True)


# ---------------------------------------------------------------------------------------------
# After `fly launch`

FLY_LAUNCH_TOML = """\
# fly.toml app configuration file generated for {app} on 2025-12-23T09:41:07Z
#
# See https://fly.io/docs/reference/configuration/ for information about how to use this file.
#

app = '{app}'
primary_region = 'sjc'
swap_size_mb = 512

[build]

[deploy]
  release_command = '/app/bin/migrate'

[env]
  # Where the game client is sent after each step of the login (our own keys)
  AUTH_HOST = '{app}.fly.dev'
  REALM_HOST = '{app}.fly.dev'
  WORLD_HOST = '{app}.fly.dev'
  PHX_HOST = '{app}.fly.dev'
  ECTO_IPV6 = 'true'
  ERL_AFLAGS = '-proto_dist inet6_tcp'

[http_service]
  internal_port = {portal_port}
  force_https = true
  auto_stop_machines = 'stop'
  auto_start_machines = true
  min_machines_running = 0
  processes = ['app']

  [http_service.concurrency]
    type = 'connections'
    hard_limit = 1000
    soft_limit = 1000

# The game servers speak raw TCP on their own ports (added by hand after fly launch).
[[services]]
  protocol = 'tcp'
  internal_port = {auth_port}

  [[services.ports]]
    port = {auth_port}

[[services]]
  protocol = 'tcp'
  internal_port = {realm_port}

  [[services.ports]]
    port = {realm_port}

[[services]]
  protocol = 'tcp'
  internal_port = {world_port}

  [[services.ports]]
    port = {world_port}

[[vm]]
  memory = '4GiB' # the game data needs it
  cpu_kind = 'shared'
  cpus = 2
"""

# flyctl's scanner/templates/phoenix/Dockerfile, the one `fly launch` leaves when `mix phx.gen.release
# --docker` cannot run (it refuses umbrellas): a single-app layout (priv, assets, lib at the root).
FLY_LAUNCH_DOCKERFILE = """\
# Builder and runner images from Docker Hub (Debian rather than Alpine, for DNS in production).
#
#   - https://hub.docker.com/r/hexpm/elixir/tags - the build image
#   - https://hub.docker.com/_/debian?tab=tags - the release image
#
ARG BUILDER_IMAGE="hexpm/elixir:1.12.3-erlang-24.1.4-debian-bullseye-20210902-slim"
ARG RUNNER_IMAGE="debian:bullseye-20210902-slim"

FROM ${BUILDER_IMAGE} as builder

# build dependencies
RUN apt-get update -y && apt-get install -y build-essential git \\
  && apt-get clean && rm -f /var/lib/apt/lists/*_*

WORKDIR /app

RUN mix local.hex --force && \\
  mix local.rebar --force

ENV MIX_ENV="prod"

COPY mix.exs mix.lock ./
RUN mix deps.get --only $MIX_ENV
RUN mkdir config

# compile-time config before the deps, so a config change recompiles them
COPY config/config.exs config/${MIX_ENV}.exs config/
RUN mix deps.compile

COPY priv priv
COPY assets assets

# esbuild assets (Phoenix 1.6 and later)
RUN mix assets.deploy

COPY lib lib
RUN mix compile

# runtime.exs changes need no recompilation
COPY config/runtime.exs config/

COPY rel rel
RUN mix release

# the final image holds only the release and what it needs at runtime
FROM ${RUNNER_IMAGE}

RUN apt-get update -y && apt-get install -y libstdc++6 openssl libncurses5 locales \\
  && apt-get clean && rm -f /var/lib/apt/lists/*_*

RUN sed -i '/en_US.UTF-8/s/^# //g' /etc/locale.gen && locale-gen

ENV LANG en_US.UTF-8
ENV LANGUAGE en_US:en
ENV LC_ALL en_US.UTF-8

WORKDIR "/app"
RUN chown nobody /app

COPY --from=builder --chown=nobody:root /app/_build/prod/rel ./

USER nobody

# the release folder is named after the application, which this file does not know
RUN set -eux; \\
  ln -nfs /app/$(basename *)/bin/$(basename *) /app/entry

CMD /app/entry start
"""

FLY_LAUNCH_DOCKERIGNORE = "fly.toml\nassets/node_modules/\ndeps/\n"

# flyctl's PhoenixCallback writes rel/env.sh.eex; with its own rel_templates_path the release reads it
# from there.
FLY_LAUNCH_ENV_SH = """\
#!/bin/sh
if [ -n "$FLY_APP_NAME" ]; then
  export DNS_CLUSTER_QUERY="${FLY_APP_NAME}.internal"
  export RELEASE_NODE="${FLY_APP_NAME}-${FLY_IMAGE_REF##*-}@${FLY_PRIVATE_IP}"
  # distributed Erlang over IPv6 (Fly's private network)
  export ERL_AFLAGS="-proto_dist inet6_tcp"
  export ECTO_IPV6="true"
fi

export RELEASE_DISTRIBUTION="name"
export RELEASE_NODE=${RELEASE_NODE:-<%= @release.name %>@$(hostname)}
"""


def after_fly_launch(root: Path, *, app: str = "bezgelor", ports: tuple[int, int, int, int] = (4000, 6600, 23115, 24000)
                     ) -> Path:
    """Turn a checkout into one that went through `fly launch` (and got its game ports by hand)."""
    portal, auth, realm, world = ports
    (root / "fly.toml").write_text(FLY_LAUNCH_TOML.format(app=app, portal_port=portal, auth_port=auth,
                                                          realm_port=realm, world_port=world))
    (root / "Dockerfile").write_text(FLY_LAUNCH_DOCKERFILE)
    (root / ".dockerignore").write_text(FLY_LAUNCH_DOCKERIGNORE)
    make_portal_release_variant(root)
    env_sh = root / "rel" / "portal" / "env.sh.eex"
    env_sh.parent.mkdir(parents=True, exist_ok=True)
    env_sh.write_text(FLY_LAUNCH_ENV_SH)
    env_sh.chmod(0o755)
    return root


def fly_launch_checkout(dest: Path) -> Path:
    """The real repository after `fly launch`, or our fixture umbrella when the tarball is absent."""
    root = real_repository(dest) if REAL_TARBALL.is_file() else copy_fixture(dest / "bezgelor")
    if not (root / ".git").is_dir():
        git_init(root, tag=None)
    after_fly_launch(root)
    commit_all(root, "fly launch")
    return root


# ---------------------------------------------------------------------------------------------
# `mix phx.new NAME --umbrella` (Phoenix 1.8), plus three game apps

def _camel(app: str) -> str:
    return "".join(p.capitalize() for p in app.split("_"))


def _child_mix_exs(app: str, deps: str, *, extra: str = "", mod: bool = True) -> str:
    application = (f"      mod: {{{_camel(app)}.Application, []}},\n" if mod else "")
    return f"""\
defmodule {_camel(app)}.MixProject do
  use Mix.Project

  def project do
    [
      app: :{app},
      version: "0.1.0",
      build_path: "../../_build",
      config_path: "../../config/config.exs",
      deps_path: "../../deps",
      lockfile: "../../mix.lock",
      elixir: "~> 1.17",
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      aliases: aliases(),
      deps: deps(){extra}
    ]
  end

  # Run "mix help compile.app" to learn about applications.
  def application do
    [
{application}      extra_applications: [:logger, :runtime_tools]
    ]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  defp deps do
    [
{deps}
    ]
  end

  defp aliases do
    [
      setup: ["deps.get"]
    ]
  end
end
"""


def _root_files(name: str) -> dict[str, str]:
    mod, web, web_mod = _camel(name), f"{name}_web", f"{_camel(name)}Web"
    return {
        "mix.exs": f"""\
defmodule {mod}.Umbrella.MixProject do
  use Mix.Project

  def project do
    [
      apps_path: "apps",
      version: "0.1.0",
      start_permanent: Mix.env() == :prod,
      deps: deps(),
      aliases: aliases(),
      listeners: [Phoenix.CodeReloader]
    ]
  end

  def cli do
    [
      preferred_envs: [precommit: :test]
    ]
  end

  # Dependencies listed here are available only for this project and cannot be
  # reached from the applications inside apps/.
  defp deps do
    [
      # Required to run "mix format" on ~H/.heex files from the umbrella root
      {{:phoenix_live_view, ">= 0.0.0"}}
    ]
  end

  # Aliases of the umbrella root (not of the apps inside apps/).
  defp aliases do
    [
      # run `mix setup` in all child apps
      setup: ["cmd mix setup"],
      precommit: ["compile --warnings-as-errors", "deps.unlock --unused", "format", "test"]
    ]
  end
end
""",
        ".formatter.exs": """\
[
  inputs: ["mix.exs", "config/*.exs"],
  subdirectories: ["apps/*"]
]
""",
        ".gitignore": """\
# Mix and build artifacts
/_build/
/cover/
/deps/
/doc/
erl_crash.dump
*.ez
# Static assets built by `mix assets.deploy`
/apps/*/priv/static/assets/
/apps/*/priv/static/cache_manifest.json
""",
        "README.md": f"# {mod}.Umbrella\n\nGenerated by `mix phx.new {name} --umbrella`, with game servers added.\n",
        # config.exs: the umbrella's header, then each app's block (the generator appends them), then the
        # umbrella's extra config with import_config at the bottom.
        "config/config.exs": f"""\
# Configuration of the umbrella and **all applications** and their dependencies, with the
# help of the Config module. All apps of an umbrella share it.
import Config

# Configure LiveView
config :phoenix_live_view,
  # the attribute set on all root tags. Used for Phoenix.LiveView.ColocatedCSS.
  root_tag_attribute: "phx-r"

# Configure Mix tasks and generators
config :{name},
  ecto_repos: [{mod}.Repo]

# Configure the mailer (local adapter in development; configure another in runtime.exs)
config :{name}, {mod}.Mailer, adapter: Swoosh.Adapters.Local

config :{web},
  ecto_repos: [{mod}.Repo],
  generators: [context_app: :{name}]

# Configures the endpoint
config :{web}, {web_mod}.Endpoint,
  url: [host: "localhost"],
  adapter: Bandit.PhoenixAdapter,
  render_errors: [
    formats: [html: {web_mod}.ErrorHTML, json: {web_mod}.ErrorJSON],
    layout: false
  ],
  pubsub_server: {mod}.PubSub,
  live_view: [signing_salt: "Zq3ufl7A"]

# Configure esbuild (the version is required)
config :esbuild,
  version: "0.25.4",
  {web}: [
    args:
      ~w(js/app.js --bundle --target=es2022 --outdir=../priv/static/assets/js --external:/fonts/* --external:/images/*),
    cd: Path.expand("../apps/{web}/assets", __DIR__),
    env: %{{"NODE_PATH" => [Path.expand("../deps", __DIR__), Mix.Project.build_path()]}}
  ]

# Configure tailwind (the version is required)
config :tailwind,
  version: "4.1.7",
  {web}: [
    args: ~w(
      --input=assets/css/app.css
      --output=priv/static/assets/css/app.css
    ),
    cd: Path.expand("../apps/{web}", __DIR__)
  ]

# The game servers: one TCP port each (runtime.exs reads them from the environment too)
config :{name}_auth, port: 6600
config :{name}_realm, port: 23115
config :{name}_world, port: 24000, public_address: System.get_env("WORLD_PUBLIC_ADDRESS", "127.0.0.1")

# Elixir's Logger
config :logger, :default_formatter,
  format: "$time $metadata[$level] $message\\n",
  metadata: [:request_id]

# Jason for JSON in Phoenix
config :phoenix, :json_library, Jason

# Import environment specific config. This must remain at the bottom
# of this file so it overrides the configuration defined above.
import_config "#{{config_env()}}.exs"
""",
        "config/dev.exs": f"""\
import Config

# Configure your database
config :{name}, {mod}.Repo,
  username: "postgres",
  password: "postgres",
  hostname: "localhost",
  database: "{name}_dev",
  stacktrace: true,
  show_sensitive_data_on_connection_error: true,
  pool_size: 10

# Development endpoint: no caching, debugging and code reloading, watchers for the assets.
config :{web}, {web_mod}.Endpoint,
  http: [ip: {{127, 0, 0, 1}}],
  check_origin: false,
  code_reloader: true,
  debug_errors: true,
  secret_key_base: "dev-only-secret-key-base-of-at-least-sixty-four-bytes-for-the-cookie-signer",
  watchers: [
    esbuild: {{Esbuild, :install_and_run, [:{web}, ~w(--sourcemap=inline --watch)]}},
    tailwind: {{Tailwind, :install_and_run, [:{web}, ~w(--watch)]}}
  ]

# Enable dev routes for dashboard and mailbox
config :{web}, dev_routes: true

# Do not include metadata nor timestamps in development logs
config :logger, :default_formatter, format: "[$level] $message\\n"

# Initialize plugs at runtime for faster development compilation
config :phoenix, :plug_init_mode, :runtime

config :phoenix_live_view,
  debug_heex_annotations: true,
  debug_attributes: true,
  enable_expensive_runtime_checks: true

# Swoosh's API client is only needed by production adapters.
config :swoosh, :api_client, false

config :phoenix, :stacktrace_depth, 20
""",
        "config/test.exs": f"""\
import Config

# MIX_TEST_PARTITION partitions the test database in CI (see `mix help test`).
config :{name}, {mod}.Repo,
  username: "postgres",
  password: "postgres",
  hostname: "localhost",
  database: "{name}_test#{{System.get_env("MIX_TEST_PARTITION")}}",
  pool: Ecto.Adapters.SQL.Sandbox,
  pool_size: System.schedulers_online() * 2

config :{web}, {web_mod}.Endpoint,
  http: [ip: {{127, 0, 0, 1}}, port: 4002],
  secret_key_base: "test-only-secret-key-base-of-at-least-sixty-four-bytes-for-the-cookie-signer",
  server: false

config :{name}, {mod}.Mailer, adapter: Swoosh.Adapters.Test
config :swoosh, :api_client, false
config :logger, level: :warning
config :phoenix, :plug_init_mode, :runtime
config :phoenix_live_view, enable_expensive_runtime_checks: true
""",
        "config/prod.exs": f"""\
import Config

# The cache manifest of digested static files, written by `mix phx.digest`
# (part of `mix assets.deploy`) before the server starts.
config :{web}, {web_mod}.Endpoint,
  url: [host: "example.com", port: 80],
  cache_static_manifest: "priv/static/cache_manifest.json"

# Force using SSL in production. This also sets the "strict-security-transport" header,
# known as HSTS. If you have a health check endpoint, you may want to exclude it below.
# Note `:force_ssl` is required to be set at compile-time.
config :{web}, {web_mod}.Endpoint,
  force_ssl: [
    rewrite_on: [:x_forwarded_proto],
    exclude: [
      # paths: ["/health"],
      hosts: ["localhost", "127.0.0.1"]
    ]
  ]

# Configure Swoosh API Client
config :swoosh, :api_client, Swoosh.ApiClient.Req

# Disable Swoosh Local Memory Storage
config :swoosh, local: false

# Do not print debug messages in production
config :logger, level: :info

# Runtime production configuration, including reading
# of environment variables, is done on config/runtime.exs.
""",
        "config/runtime.exs": f"""\
import Config

# config/runtime.exs runs for every environment, releases included, after compilation and
# before the system starts: production settings and secrets come from the environment here.

config :{web}, {web_mod}.Endpoint,
  http: [port: String.to_integer(System.get_env("PORT", "4000"))]

# The game servers' ports (the client connects to these)
config :{name}_auth, port: String.to_integer(System.get_env("AUTH_PORT", "6600"))
config :{name}_realm, port: String.to_integer(System.get_env("REALM_PORT", "23115"))
config :{name}_world, port: String.to_integer(System.get_env("WORLD_PORT", "24000"))

if config_env() == :dev do
  # Reload browser tabs when matching files change. (The generator adds the `E` regex modifier only
  # when it runs on Elixir >= 1.19.3; this shape is what an older Elixir generates.)
  config :{web}, {web_mod}.Endpoint,
    live_reload: [
      web_console_logger: true,
      patterns: [
        ~r"priv/static/(?!uploads/).*\\.(js|css|png|jpeg|jpg|gif|svg)$",
        ~r"priv/gettext/.*\\.po$",
        ~r"lib/{web}/router\\.ex$",
        ~r"lib/{web}/(controllers|live|components)/.*\\.(ex|heex)$"
      ]
    ]
end

if config_env() == :prod do
  database_url =
    System.get_env("DATABASE_URL") ||
      raise \"\"\"
      environment variable DATABASE_URL is missing.
      For example: ecto://USER:PASS@HOST/DATABASE
      \"\"\"

  maybe_ipv6 = if System.get_env("ECTO_IPV6") in ~w(true 1), do: [:inet6], else: []

  config :{name}, {mod}.Repo,
    # ssl: true,
    url: database_url,
    pool_size: String.to_integer(System.get_env("POOL_SIZE") || "10"),
    socket_options: maybe_ipv6

  # The secret key base signs and encrypts cookies; dev and test have their own.
  secret_key_base =
    System.get_env("SECRET_KEY_BASE") ||
      raise \"\"\"
      environment variable SECRET_KEY_BASE is missing.
      You can generate one by calling: mix phx.gen.secret
      \"\"\"

  config :{web}, {web_mod}.Endpoint,
    http: [
      # Enable IPv6 and bind on all interfaces.
      ip: {{0, 0, 0, 0, 0, 0, 0, 0}}
    ],
    secret_key_base: secret_key_base

  config :{name}, :dns_cluster_query, System.get_env("DNS_CLUSTER_QUERY")

  # ## Using releases
  #
  # A release starts the endpoint only with:
  #
  #     config :{web}, {web_mod}.Endpoint, server: true
end
""",
    }


def _core_app(name: str) -> dict[str, str]:
    mod = _camel(name)
    deps = """\
      {:dns_cluster, "~> 0.2.0"},
      {:phoenix_pubsub, "~> 2.1"},
      {:ecto_sql, "~> 3.13"},
      {:postgrex, ">= 0.0.0"},
      {:jason, "~> 1.2"},
      {:swoosh, "~> 1.16"},
      {:req, "~> 0.5"}"""
    d = f"apps/{name}"
    return {
        f"{d}/mix.exs": _child_mix_exs(name, deps),
        f"{d}/lib/{name}.ex": f"""\
defmodule {mod} do
  @moduledoc \"\"\"
  {mod} keeps the contexts that define your domain and business logic.
  \"\"\"
end
""",
        f"{d}/lib/{name}/application.ex": f"""\
defmodule {mod}.Application do
  @moduledoc false

  use Application

  @impl true
  def start(_type, _args) do
    children = [
      {mod}.Repo,
      {{DNSCluster, query: Application.get_env(:{name}, :dns_cluster_query) || :ignore}},
      {{Phoenix.PubSub, name: {mod}.PubSub}}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: {mod}.Supervisor)
  end
end
""",
        f"{d}/lib/{name}/repo.ex": f"""\
defmodule {mod}.Repo do
  use Ecto.Repo,
    otp_app: :{name},
    adapter: Ecto.Adapters.Postgres
end
""",
        f"{d}/lib/{name}/mailer.ex": f"""\
defmodule {mod}.Mailer do
  use Swoosh.Mailer, otp_app: :{name}
end
""",
        f"{d}/priv/repo/migrations/.formatter.exs": "[\n  import_deps: [:ecto_sql],\n  inputs: [\"*.exs\"]\n]\n",
        f"{d}/priv/repo/seeds.exs": f"# Script for populating the database: mix run priv/repo/seeds.exs\n#\n"
                                    f"#     {mod}.Repo.insert!(%{mod}.SomeSchema{{}})\n",
        f"{d}/test/test_helper.exs": f"ExUnit.start()\nEcto.Adapters.SQL.Sandbox.mode({mod}.Repo, :manual)\n",
    }


def _web_app(name: str) -> dict[str, str]:
    mod, web, web_mod = _camel(name), f"{name}_web", f"{_camel(name)}Web"
    deps = f"""\
      {{:phoenix, "~> 1.8.3"}},
      {{:phoenix_ecto, "~> 4.5"}},
      {{:phoenix_html, "~> 4.1"}},
      {{:phoenix_live_reload, "~> 1.2", only: :dev}},
      {{:phoenix_live_view, "~> 1.1.0"}},
      {{:lazy_html, ">= 0.1.0", only: :test}},
      {{:phoenix_live_dashboard, "~> 0.8.3"}},
      {{:esbuild, "~> 0.10", runtime: Mix.env() == :dev}},
      {{:tailwind, "~> 0.3", runtime: Mix.env() == :dev}},
      {{:telemetry_metrics, "~> 1.0"}},
      {{:telemetry_poller, "~> 1.0"}},
      {{:gettext, "~> 0.26"}},
      {{:{name}, in_umbrella: true}},
      {{:jason, "~> 1.2"}},
      {{:bandit, "~> 1.5"}}"""
    mix = _child_mix_exs(web, deps, extra=",\n      compilers: [:phoenix_live_view] ++ Mix.compilers(),\n"
                         "      listeners: [Phoenix.CodeReloader]")
    mix = mix.replace('      setup: ["deps.get"]', f"""\
      setup: ["deps.get", "assets.setup", "assets.build"],
      test: ["ecto.create --quiet", "ecto.migrate --quiet", "test"],
      "assets.setup": ["tailwind.install --if-missing", "esbuild.install --if-missing"],
      "assets.build": ["compile", "tailwind {web}", "esbuild {web}"],
      "assets.deploy": [
        "tailwind {web} --minify",
        "esbuild {web} --minify",
        "phx.digest"
      ]""")
    d, lib = f"apps/{web}", f"apps/{web}/lib/{web}"
    return {
        f"{d}/mix.exs": mix,
        f"{d}/lib/{web}.ex": f"""\
defmodule {web_mod} do
  @moduledoc \"\"\"
  The entrypoint for defining your web interface: `use {web_mod}, :controller`, `:router` ...
  \"\"\"

  def static_paths, do: ~w(assets fonts images favicon.ico robots.txt)

  def router do
    quote do
      use Phoenix.Router, helpers: false

      import Plug.Conn
      import Phoenix.Controller
      import Phoenix.LiveView.Router
    end
  end

  def controller do
    quote do
      use Phoenix.Controller, formats: [:html, :json]

      import Plug.Conn

      unquote(verified_routes())
    end
  end

  def verified_routes do
    quote do
      use Phoenix.VerifiedRoutes,
        endpoint: {web_mod}.Endpoint,
        router: {web_mod}.Router,
        statics: {web_mod}.static_paths()
    end
  end

  @doc \"\"\"
  When used, dispatch to the appropriate controller/live_view/etc.
  \"\"\"
  defmacro __using__(which) when is_atom(which) do
    apply(__MODULE__, which, [])
  end
end
""",
        f"{lib}/application.ex": f"""\
defmodule {web_mod}.Application do
  @moduledoc false

  use Application

  @impl true
  def start(_type, _args) do
    children = [
      {web_mod}.Telemetry,
      # Start to serve requests, typically the last entry
      {web_mod}.Endpoint
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: {web_mod}.Supervisor)
  end

  # Tell Phoenix to update the endpoint configuration whenever the application is updated.
  @impl true
  def config_change(changed, _new, removed) do
    {web_mod}.Endpoint.config_change(changed, removed)
    :ok
  end
end
""",
        f"{lib}/endpoint.ex": f"""\
defmodule {web_mod}.Endpoint do
  use Phoenix.Endpoint, otp_app: :{web}

  # The session is stored in a signed cookie.
  @session_options [
    store: :cookie,
    key: "_{web}_key",
    signing_salt: "Hk2P0n9s",
    same_site: "Lax"
  ]

  socket "/live", Phoenix.LiveView.Socket,
    websocket: [connect_info: [session: @session_options]],
    longpoll: [connect_info: [session: @session_options]]

  # Static files from priv/static ("gzip" once `phx.digest` has compressed them).
  plug Plug.Static,
    at: "/",
    from: :{web},
    gzip: not code_reloading?,
    only: {web_mod}.static_paths(),
    raise_on_missing_only: code_reloading?

  if code_reloading? do
    socket "/phoenix/live_reload/socket", Phoenix.LiveReloader.Socket
    plug Phoenix.LiveReloader
    plug Phoenix.CodeReloader
    plug Phoenix.Ecto.CheckRepoStatus, otp_app: :{web}
  end

  plug Phoenix.LiveDashboard.RequestLogger,
    param_key: "request_logger",
    cookie_key: "request_logger"

  plug Plug.RequestId
  plug Plug.Telemetry, event_prefix: [:phoenix, :endpoint]

  plug Plug.Parsers,
    parsers: [:urlencoded, :multipart, :json],
    pass: ["*/*"],
    json_decoder: Phoenix.json_library()

  plug Plug.MethodOverride
  plug Plug.Head
  plug Plug.Session, @session_options
  plug {web_mod}.Router
end
""",
        f"{lib}/router.ex": f"""\
defmodule {web_mod}.Router do
  use {web_mod}, :router

  pipeline :browser do
    plug :accepts, ["html"]
    plug :fetch_session
    plug :fetch_live_flash
    plug :put_root_layout, html: {{{web_mod}.Layouts, :root}}
    plug :protect_from_forgery
    plug :put_secure_browser_headers
  end

  pipeline :api do
    plug :accepts, ["json"]
  end

  scope "/", {web_mod} do
    pipe_through :browser

    get "/", PageController, :home
  end

  # Other scopes may use custom stacks.
  # scope "/api", {web_mod} do
  #   pipe_through :api
  # end

  # LiveDashboard and the Swoosh mailbox preview in development
  if Application.compile_env(:{web}, :dev_routes) do
    import Phoenix.LiveDashboard.Router

    scope "/dev" do
      pipe_through :browser

      live_dashboard "/dashboard", metrics: {web_mod}.Telemetry
      forward "/mailbox", Plug.Swoosh.MailboxPreview
    end
  end
end
""",
        f"{lib}/telemetry.ex": f"""\
defmodule {web_mod}.Telemetry do
  use Supervisor
  import Telemetry.Metrics

  def start_link(arg), do: Supervisor.start_link(__MODULE__, arg, name: __MODULE__)

  @impl true
  def init(_arg) do
    children = [{{:telemetry_poller, measurements: [], period: 10_000}}]
    Supervisor.init(children, strategy: :one_for_one)
  end

  def metrics do
    [
      summary("phoenix.endpoint.stop.duration", unit: {{:native, :millisecond}}),
      summary("{name}.repo.query.total_time", unit: {{:native, :millisecond}}),
      summary("vm.memory.total", unit: {{:byte, :kilobyte}})
    ]
  end
end
""",
        f"{lib}/controllers/page_controller.ex": f"""\
defmodule {web_mod}.PageController do
  use {web_mod}, :controller

  def home(conn, _params) do
    render(conn, :home)
  end
end
""",
        f"{lib}/controllers/error_json.ex": f"""\
defmodule {web_mod}.ErrorJSON do
  @moduledoc \"\"\"
  Invoked by the endpoint on JSON errors.
  \"\"\"

  def render(template, _assigns) do
    %{{errors: %{{detail: Phoenix.Controller.status_message_from_template(template)}}}}
  end
end
""",
        f"{d}/assets/js/app.js": "// The portal's JavaScript entry point (esbuild bundles it).\n"
                                 "import \"phoenix_html\"\nimport {Socket} from \"phoenix\"\n"
                                 "import {LiveSocket} from \"phoenix_live_view\"\nimport topbar from "
                                 "\"../vendor/topbar\"\n",
        f"{d}/assets/css/app.css": "@import \"tailwindcss\" source(none);\n@source \"../css\";\n"
                                   "@source \"../js\";\n@source \"../../lib/" + web + "\";\n",
        f"{d}/assets/vendor/topbar.js": "/* topbar: a tiny progress bar (vendored). */\nexport default {};\n",
        f"{d}/priv/static/robots.txt": "# See https://www.robotstxt.org/robotstxt.html\n",
        f"{d}/test/test_helper.exs": f"ExUnit.start()\nEcto.Adapters.SQL.Sandbox.mode({mod}.Repo, :manual)\n",
    }


def _game_app(name: str, role: str) -> dict[str, str]:
    app = f"{name}_{role}"
    mod = _camel(app)
    d = f"apps/{app}"
    return {
        f"{d}/mix.exs": _child_mix_exs(app, f"      {{:{name}, in_umbrella: true}}"),
        f"{d}/lib/{app}.ex": f"defmodule {mod} do\n  @moduledoc \"The {role} game server.\"\nend\n",
        f"{d}/lib/{app}/application.ex": f"""\
defmodule {mod}.Application do
  @moduledoc false

  use Application

  @impl true
  def start(_type, _args) do
    port = Application.get_env(:{app}, :port)
    children = [{{{mod}.Listener, port}}]
    Supervisor.start_link(children, strategy: :one_for_one, name: {mod}.Supervisor)
  end
end
""",
        f"{d}/lib/{app}/listener.ex": f"""\
defmodule {mod}.Listener do
  @moduledoc "Accepts the game client's raw TCP connections on the {role} port."

  use Task, restart: :permanent
  require Logger

  def start_link(port), do: Task.start_link(__MODULE__, :listen, [port])

  def listen(port) do
    {{:ok, socket}} =
      :gen_tcp.listen(port, [:binary, packet: :raw, active: false, reuseaddr: true, ip: {{0, 0, 0, 0, 0, 0, 0, 0}}])

    Logger.info("{role} server listening on #{{port}}")
    accept(socket)
  end

  defp accept(socket) do
    {{:ok, client}} = :gen_tcp.accept(socket)
    {{:ok, pid}} = Task.start(fn -> serve(client) end)
    :ok = :gen_tcp.controlling_process(client, pid)
    accept(socket)
  end

  defp serve(client) do
    case :gen_tcp.recv(client, 0) do
      {{:ok, _packet}} -> serve(client)
      {{:error, _closed}} -> :ok
    end
  end
end
""",
        f"{d}/test/test_helper.exs": "ExUnit.start()\n",
    }


# What `mix deps.get` pins for a Phoenix 1.8 umbrella (versions of late 2025; checksums left out).
PHX_LOCK = {
    "bandit": "1.8.0", "castore": "1.0.15", "db_connection": "2.8.1", "decimal": "2.3.0",
    "dns_cluster": "0.2.0", "ecto": "3.13.3", "ecto_sql": "3.13.2", "esbuild": "0.10.0",
    "gettext": "0.26.2", "jason": "1.4.4", "mime": "2.0.7", "phoenix": "1.8.3", "phoenix_ecto": "4.7.0",
    "phoenix_html": "4.3.0", "phoenix_live_dashboard": "0.8.7", "phoenix_live_view": "1.1.19",
    "phoenix_pubsub": "2.2.0", "plug": "1.19.1", "plug_crypto": "2.1.1", "postgrex": "0.21.1",
    "swoosh": "1.19.8", "tailwind": "0.4.1", "telemetry": "1.3.0", "telemetry_metrics": "1.1.0",
    "telemetry_poller": "1.3.0", "thousand_island": "1.4.2", "websock": "0.5.3",
}


def _mix_lock() -> str:
    lines = [f'  "{n}": {{:hex, :{n}, "{v}", "", [:mix], [], "hexpm", ""}},' for n, v in sorted(PHX_LOCK.items())]
    return "%{\n" + "\n".join(lines) + "\n}\n"


def phx_new_umbrella(dest: Path, name: str = "bezgelor") -> Path:
    """`mix phx.new NAME --umbrella` output (Phoenix 1.8: NAME and NAME_web apps, Ecto, LiveView,
    esbuild, tailwind, Swoosh) plus NAME_auth/realm/world game apps, committed with git. Its `.env`
    names the portal and the Repo's app for bezgelor-tasks (the documented way to point it at an
    umbrella whose apps are not Bezgelor's names)."""
    root = dest / f"{name}_umbrella"
    files = {**_root_files(name), **_core_app(name), **_web_app(name)}
    for role in ("auth", "realm", "world"):
        files.update(_game_app(name, role))
    files["mix.lock"] = _mix_lock()
    files[".env"] = (f"# bezgelor-tasks settings for this umbrella\nBEZGELOR_PORTAL_APP={name}_web\n"
                     f"BEZGELOR_DB_APP={name}\n")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git_init(root, tag=None)
    return root


# ---------------------------------------------------------------------------------------------
# Session fixtures: each shape is built once; copy it before changing it.

@pytest.fixture(scope="session")
def real_shape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not REAL_TARBALL.is_file():
        pytest.skip(REAL_MISSING)
    return real_repository(tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="session")
def fly_launch_shape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fly_launch_checkout(tmp_path_factory.mktemp("fly-launch"))


@pytest.fixture(scope="session")
def phx_new_shape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phx_new_umbrella(tmp_path_factory.mktemp("phx-new"))


def maintainers_checkout(dest: Path) -> Path:
    """The real repository after its maintainers set up Fly themselves (tests/support/shape_maintainers.py),
    or our fixture umbrella so shaped when the tarball is absent."""
    from tests.support.shape_maintainers import after_maintainers_fly_setup

    root = real_repository(dest) if REAL_TARBALL.is_file() else copy_fixture(dest / "bezgelor")
    if not (root / ".git").is_dir():
        git_init(root, tag=None)
    after_maintainers_fly_setup(root)
    commit_all(root, "Deploy to Fly.io: release bezgelor_portal, seeding migrate, overlays, fly.toml")
    return root


@pytest.fixture(scope="session")
def maintainers_shape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return maintainers_checkout(tmp_path_factory.mktemp("maintainers"))
