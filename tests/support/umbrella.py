"""Fixtures: Bezgelor-shaped umbrella checkouts in tmp_path (see tests/conftest.py).

- `bezgelor_checkout`: a copy of tests/fixtures/bezgelor (the realistic umbrella: Phoenix deps in
  mix.lock, the seed's broken prod.exs, a runtime.exs and router with content of their own), as a
  git repository with one commit tagged v0.1.0.
- `make_portal_release_variant(root)`: turns such a copy into one whose mix.exs already defines a
  release named after the portal (`bezgelor_portal`, with `rel_templates_path: "rel/portal"`).
- `write_nodeps_umbrella(root)` / `nodeps_checkout`: an umbrella with the same eleven apps and NO hex
  deps at all, so `MIX_ENV=prod mix release` builds offline with Debian's Elixir. Phoenix and Ecto
  are unavailable here, so the fixture carries tiny fixture-only libraries of its own inside its
  apps (a `controller` macro with `json/2`/`put_status/2`, a router DSL, an `Ecto.Migrator` that
  records what it was asked to do). They are part of the fixture, not stand-ins for our code.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "bezgelor"

APPS = ("bezgelor_api", "bezgelor_auth", "bezgelor_core", "bezgelor_crypto", "bezgelor_data", "bezgelor_db",
        "bezgelor_dev", "bezgelor_portal", "bezgelor_protocol", "bezgelor_realm", "bezgelor_world")


def git_init(root: Path, tag: str | None = "v0.1.0") -> None:
    """One commit (and a tag) so `git describe` gives versions."""
    env = {"GIT_AUTHOR_NAME": "Fixture", "GIT_AUTHOR_EMAIL": "fixture@example.com",
           "GIT_COMMITTER_NAME": "Fixture", "GIT_COMMITTER_EMAIL": "fixture@example.com",
           "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root)}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "Fixture umbrella")
    if tag:
        git("tag", tag)


def copy_fixture(dest: Path) -> Path:
    shutil.copytree(FIXTURE, dest)
    return dest


@pytest.fixture
def bezgelor_checkout(tmp_path: Path) -> Path:
    """A fresh copy of the Bezgelor-shaped fixture umbrella, as a git repo tagged v0.1.0."""
    root = copy_fixture(tmp_path / "bezgelor")
    git_init(root)
    return root


PORTAL_RELEASE = '''
  defp releases do
    [
      bezgelor_portal: [
        applications: [bezgelor_portal: :permanent, bezgelor_db: :permanent],
        include_executables_for: [:unix],
        rel_templates_path: "rel/portal"
      ]
    ]
  end
'''


def write_release_module(root: Path, db_app: str = "bezgelor_db") -> Path:
    """The release module `inv init` writes (status/0, rollback_to/1, which `inv db.status` and `inv db.rollback`
    call), for the small checkouts of the db tasks' tests that skip init."""
    from bezgelor_tasks.checkout.discover import camelize
    from bezgelor_tasks.files import with_marker
    from bezgelor_tasks.release_image import db_release_module_file
    from bezgelor_tasks.render import render

    path = root / db_release_module_file(db_app)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(with_marker(render("elixir/release.ex", db_module=camelize(db_app), db_app=db_app)))
    return path


def make_portal_release_variant(root: Path) -> Path:
    """mix.exs already has `releases: releases()` with one release named after the portal app."""
    mix = root / "mix.exs"
    text = mix.read_text()
    text = text.replace("      deps: deps(),\n", "      deps: deps(),\n      releases: releases(),\n", 1)
    head, _, _ = text.rstrip().rpartition("end")
    mix.write_text(head.rstrip() + "\n" + PORTAL_RELEASE + "end\n")
    return root


# ---------------------------------------------------------------------------------------------------
# The no-deps umbrella: builds a real release offline.

_APP_DEPS = {
    "bezgelor_core": [],
    "bezgelor_crypto": ["bezgelor_core"],
    "bezgelor_data": ["bezgelor_core"],
    "bezgelor_db": ["bezgelor_core"],
    "bezgelor_protocol": ["bezgelor_core", "bezgelor_crypto"],
    "bezgelor_auth": ["bezgelor_protocol", "bezgelor_db"],
    "bezgelor_realm": ["bezgelor_protocol", "bezgelor_db"],
    "bezgelor_world": ["bezgelor_protocol", "bezgelor_db", "bezgelor_data"],
    "bezgelor_api": ["bezgelor_db"],
    "bezgelor_portal": ["bezgelor_db", "bezgelor_api"],
    "bezgelor_dev": ["bezgelor_world"],
}

_ROOT_MIX = '''defmodule Bezgelor.MixProject do
  use Mix.Project

  def project do
    [
      apps_path: "apps",
      version: "0.1.0",
      start_permanent: Mix.env() == :prod,
      deps: deps(),
      listeners: [Phoenix.CodeReloader]
    ]
  end

  # No hex deps: this fixture builds offline.
  defp deps do
    []
  end
end
'''

_APP_MIX = '''defmodule {mod}.MixProject do
  use Mix.Project

  def project do
    [
      app: :{app},
      version: "0.1.0",
      build_path: "../../_build",
      config_path: "../../config/config.exs",
      deps_path: "../../deps",
      lockfile: "../../mix.lock",
      start_permanent: Mix.env() == :prod,
      deps: deps()
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end

  defp deps do
    [{deps}]
  end
end
'''

_CONFIG = '''import Config

config :bezgelor_db, ecto_repos: [BezgelorDb.Repo]

config :bezgelor_portal, BezgelorPortal.Vault,
  ciphers: [
    default: {Cloak.Ciphers.AES.GCM, tag: "AES.GCM.V1",
      key: Base.decode64!(System.get_env("CLOAK_KEY", "3Jnb0hZiHIzHTOih7t2cTEPEpY98Tu1wvQkPfq/XwqE="))}
  ]

import_config "#{config_env()}.exs"
'''

_PROD = '''import Config

config :bezgelor_portal, BezgelorPortalWeb.Endpoint,
  cache_static_manifest: "priv/static/cache_manifest.json"

config :bezgelor_portal, BezgelorPortalWeb.Endpoint,
  force_ssl: [rewrite_on: [:x_forwarded_proto]],
  exclude: [
    # paths: ["/health"],
    hosts: ["localhost", "127.0.0.1"]
  ]

config :logger, level: :info
'''

_RUNTIME = '''import Config

config :bezgelor_world,
  tick_rate: String.to_integer(System.get_env("WORLD_TICK_RATE", "20"))

if config_env() == :prod do
  host = System.get_env("PHX_HOST") || "bezgelor.example.com"

  config :bezgelor_portal, BezgelorPortalWeb.Endpoint,
    url: [host: host, port: 443, scheme: "https"]
end
'''

# Fixture-only libraries (this umbrella has no Phoenix and no Ecto).
_MIGRATOR = '''defmodule Ecto.Migrator do
  @moduledoc "Fixture-only migrator: records each call on stdout and in $FIXTURE_MIGRATOR_LOG."

  def with_repo(repo, fun, _opts \\\\ []) do
    record("with_repo #{inspect(repo)}")
    {:ok, fun.(repo), []}
  end

  def run(repo, direction, opts) do
    record("run #{inspect(repo)} #{direction} #{inspect(opts)}")
    []
  end

  def migrations(repo) do
    record("migrations #{inspect(repo)}")
    [{:up, 20240101000000, "create_accounts"}, {:down, 20240115120000, "create \\"quoted\\" chars"}]
  end

  defp record(line) do
    IO.puts("FIXTURE_MIGRATOR " <> line)

    case System.get_env("FIXTURE_MIGRATOR_LOG") do
      nil -> :ok
      path -> File.write!(path, line <> "\\n", [:append])
    end
  end
end
'''

_REPO = '''defmodule BezgelorDb.Repo do
  @moduledoc "Fixture-only repo: answers SELECT 1."
  def query(_sql, _params \\\\ [], _opts \\\\ []) do
    # FIXTURE_DB_SLEEP_MS makes the database hang, to exercise the health check's timeout.
    case System.get_env("FIXTURE_DB_SLEEP_MS") do
      nil -> :ok
      ms -> Process.sleep(String.to_integer(ms))
    end

    {:ok, %{rows: [[1]]}}
  end
end
'''

_WEB = '''defmodule BezgelorPortalWeb do
  @moduledoc "Fixture-only web module: `controller` imports a tiny conn API, `router` a tiny DSL."

  def controller do
    quote do
      import BezgelorPortalWeb.FixtureConn
    end
  end

  def router do
    quote do
      use BezgelorPortalWeb.FixtureRouter
    end
  end

  defmacro __using__(which) when is_atom(which), do: apply(__MODULE__, which, [])
end

defmodule BezgelorPortalWeb.FixtureConn do
  @moduledoc "A conn is a map; json/2 stores the body, put_status/2 the status."
  def put_status(conn, status), do: Map.put(conn, :status, status)
  def json(conn, body), do: conn |> Map.put(:resp_body, body) |> Map.put_new(:status, 200)
end

defmodule BezgelorPortalWeb.FixtureRouter do
  @moduledoc "Records routes as {verb, path, controller, action}; scope/pipeline bodies are walked."
  defmacro __using__(_) do
    quote do
      import BezgelorPortalWeb.FixtureRouter
      Module.register_attribute(__MODULE__, :routes, accumulate: true)
      Module.put_attribute(__MODULE__, :scope_alias, nil)
      @before_compile BezgelorPortalWeb.FixtureRouter
    end
  end

  defmacro __before_compile__(_env) do
    quote do
      def routes, do: Enum.reverse(@routes)
    end
  end

  defmacro pipeline(_name, do: block), do: quote(do: (fn -> unquote(block) end))
  defmacro plug(_name, _opts \\\\ []), do: :ok
  defmacro pipe_through(_pipes), do: :ok

  defmacro scope(_path, alias_mod, do: block) do
    quote do
      Module.put_attribute(__MODULE__, :scope_alias, unquote(alias_mod))
      unquote(block)
      Module.put_attribute(__MODULE__, :scope_alias, nil)
    end
  end

  defmacro scope(_path, do: block), do: block

  defmacro get(path, controller, action), do: route(:get, path, controller, action)
  defmacro live(path, controller, action), do: route(:live, path, controller, action)

  defp route(verb, path, controller, action) do
    quote do
      mod = Module.concat(List.wrap(@scope_alias) ++ [unquote(controller)])
      @routes {unquote(verb), unquote(path), mod, unquote(action)}
    end
  end
end
'''

_ROUTER = '''defmodule BezgelorPortalWeb.Router do
  use BezgelorPortalWeb, :router

  pipeline :browser do
    plug :accepts, ["html"]
    plug :fetch_session
  end

  scope "/", BezgelorPortalWeb do
    pipe_through :browser

    get "/", PageController, :home
    live "/realms", RealmLive.Index, :index
  end
end
'''

_PAGE = '''defmodule BezgelorPortalWeb.PageController do
  use BezgelorPortalWeb, :controller

  def home(conn, _params), do: json(conn, %{page: "home"})
end
'''


def write_nodeps_umbrella(root: Path) -> Path:
    """Write the no-hex-deps umbrella at `root` (see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config").mkdir(exist_ok=True)
    (root / "mix.exs").write_text(_ROOT_MIX)
    (root / "config" / "config.exs").write_text(_CONFIG)
    for env in ("dev", "test"):
        (root / "config" / f"{env}.exs").write_text("import Config\n")
    (root / "config" / "prod.exs").write_text(_PROD)
    (root / "config" / "runtime.exs").write_text(_RUNTIME)
    for app in APPS:
        mod = "".join(p.capitalize() for p in app.split("_"))
        app_dir = root / "apps" / app
        (app_dir / "lib").mkdir(parents=True, exist_ok=True)
        deps = ", ".join(f"{{:{d}, in_umbrella: true}}" for d in _APP_DEPS[app])
        (app_dir / "mix.exs").write_text(_APP_MIX.format(mod=mod, app=app, deps=deps))
        (app_dir / "lib" / f"{app}.ex").write_text(f'defmodule {mod} do\n  @moduledoc "{app}"\nend\n')
    db = root / "apps" / "bezgelor_db"
    (db / "lib" / "bezgelor_db").mkdir(exist_ok=True)
    (db / "lib" / "bezgelor_db" / "repo.ex").write_text(_REPO)
    (db / "lib" / "fixture_ecto_migrator.ex").write_text(_MIGRATOR)
    migrations = db / "priv" / "repo" / "migrations"
    migrations.mkdir(parents=True, exist_ok=True)
    (migrations / "20240101000000_create_accounts.exs").write_text("# fixture migration\n")
    portal = root / "apps" / "bezgelor_portal" / "lib"
    (portal / "bezgelor_portal_web" / "controllers").mkdir(parents=True, exist_ok=True)
    (portal / "bezgelor_portal_web.ex").write_text(_WEB)
    (portal / "bezgelor_portal_web" / "router.ex").write_text(_ROUTER)
    (portal / "bezgelor_portal_web" / "controllers" / "page_controller.ex").write_text(_PAGE)
    data_priv = root / "apps" / "bezgelor_data" / "priv"
    data_priv.mkdir(parents=True, exist_ok=True)
    (data_priv / "zones.json").write_text('{"zones": []}\n')
    (root / ".gitignore").write_text("/_build/\n/deps/\n")
    return root


@pytest.fixture
def nodeps_checkout(tmp_path: Path) -> Path:
    """The no-deps umbrella (builds a real release offline), as a git repo tagged v0.1.0."""
    root = write_nodeps_umbrella(tmp_path / "nodeps")
    git_init(root)
    return root
