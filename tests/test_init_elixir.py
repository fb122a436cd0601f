"""`inv init`, Elixir side: mix.exs, prod.exs, runtime.exs, the router, our Elixir sources, overlays.

Every generated or patched file is judged by real Elixir (syntax, and Config.Reader for configs);
the slow test builds a real release of a no-deps umbrella and runs bin/migrate inside it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from bezgelor_tasks import elixir, elixir_source, files, settings_load
from bezgelor_tasks.areas import framework, overlays, registry
from bezgelor_tasks.areas import release as release_mod
from bezgelor_tasks.areas.health import controller_change as health_controller_change
from bezgelor_tasks.areas.health import router_change
from bezgelor_tasks.areas.mix_exs import mix_exs_change
from bezgelor_tasks.areas.prod_exs import prod_exs_change
from bezgelor_tasks.areas.runtime_exs import REQUIRED_ENV, runtime_exs_change
from bezgelor_tasks.backup.scratch import free_port
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Executor
from tests.support.umbrella import make_portal_release_variant

# Below Elixir 1.15 an umbrella root runs no child app's alias, so init adds the umbrella's own.
OLD_ELIXIR = {"elixir_version": "1.14.5"}


def overlay_changes(co: Checkout) -> list[files.FileChange]:
    return overlays.changes(co)


def release_module_change(co: Checkout) -> files.FileChange:
    return next(c for c in overlays.owned(co) if c.rel.endswith("release.ex"))


def release_of(root: Path, **overrides: object) -> release_mod.Release:
    return release_mod.of(open_checkout(root, **overrides))


def game_ports_in_controller(root: Path) -> dict[str, int]:
    [module] = elixir_source.modules(root / CONTROLLER) or []
    return module.attributes["game_ports"][0]

pytestmark = pytest.mark.elixir

ALL_APPS_BUT_DEV = ("bezgelor_api", "bezgelor_auth", "bezgelor_core", "bezgelor_crypto", "bezgelor_data",
                    "bezgelor_db", "bezgelor_portal", "bezgelor_protocol", "bezgelor_realm", "bezgelor_world")


def open_checkout(root: Path, **overrides: object) -> Checkout:
    return Checkout.open(settings_load.load(root, **overrides))


def apply(generator, root: Path, **overrides: object) -> list[files.FileChange]:
    """Apply a generator's change(s) to the checkout, then check a second run changes nothing."""
    changes = generator(open_checkout(root, **overrides))
    changes = changes if isinstance(changes, list) else [changes]
    files.apply_changes(changes, executor=Executor())
    again = generator(open_checkout(root, **overrides))
    again = again if isinstance(again, list) else [again]
    assert [c.rel for c in again if c.changed] == [], "a second run must change nothing"
    return changes


def assert_parses(root: Path, *rels: str) -> None:
    assert elixir.parse_files([root / r for r in rels], root) == []


def prod_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"SECRET_KEY_BASE": "s" * 64, "CLOAK_KEY": base64.b64encode(b"k" * 32).decode(),
              "DATABASE_URL": "ecto://postgres:pw@bezgelor-db.flycast:5432/bezgelor",
              "WORLD_PUBLIC_ADDRESS": "203.0.113.7"}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


# --- mix.exs ---------------------------------------------------------------------------------------

def test_init_adds_the_bezgelor_release_and_asset_aliases_to_mix_exs_keeping_the_users_lines(bezgelor_checkout):
    before = (bezgelor_checkout / "mix.exs").read_text()
    [change] = apply(mix_exs_change, bezgelor_checkout, **OLD_ELIXIR)
    text = (bezgelor_checkout / "mix.exs").read_text()
    assert_parses(bezgelor_checkout, "mix.exs")
    for kept in ("      # Phoenix 1.8 code reloader runs as a Mix listener\n", "listeners: [Phoenix.CodeReloader]",
                 '{:credo, "~> 1.7", only: [:dev, :test], runtime: false}', "# Run \"mix help deps\" for examples"):
        assert kept in before and kept in text
    assert "releases: releases()" in text and "aliases: aliases()" in text
    assert '"assets.setup": ["cmd --app bezgelor_portal mix assets.setup"]' in text
    assert '"assets.deploy": ["cmd --app bezgelor_portal mix assets.deploy"]' in text
    release = release_of(bezgelor_checkout)
    assert release.name == "bezgelor" and tuple(release.applications or ()) == ALL_APPS_BUT_DEV
    assert set((release.applications or {}).values()) == {":permanent"}
    assert release.include_executables_for == ("unix",)
    assert release.overlays == ("rel/overlays",) and not release.explicit_overlays
    assert "overlay:" not in text  # not a Mix option: it would be ignored silently
    assert any("added the release bezgelor" in n for n in change.notes)


def test_with_elixir_1_15_or_later_in_the_image_the_umbrella_needs_no_asset_aliases(bezgelor_checkout):
    """Since 1.15 `mix assets.deploy` at an umbrella root runs the alias the portal app defines."""
    [change] = apply(mix_exs_change, bezgelor_checkout, elixir_version="1.19.5")
    assert "assets.deploy" not in change.new and "aliases: aliases()" not in change.new


def test_init_adds_only_the_missing_entries_to_existing_umbrella_aliases(bezgelor_checkout):
    mix = bezgelor_checkout / "mix.exs"
    text = mix.read_text().replace("      deps: deps(),\n", "      deps: deps(),\n      aliases: aliases(),\n")
    text = text.rstrip()[: -len("end")] + (
        '\n  defp aliases do\n    [\n      setup: ["cmd mix setup"],\n'
        '      "assets.setup": ["cmd --app bezgelor_portal mix assets.setup --if-missing"]\n    ]\n  end\nend\n')
    mix.write_text(text)
    apply(mix_exs_change, bezgelor_checkout, **OLD_ELIXIR)
    new = mix.read_text()
    assert_parses(bezgelor_checkout, "mix.exs")
    assert new.count("aliases: aliases()") == 1
    assert new.count('"assets.setup"') == 1 and "--if-missing" in new
    assert '"assets.deploy": ["cmd --app bezgelor_portal mix assets.deploy"]' in new
    assert 'setup: ["cmd mix setup"]' in new


def test_a_release_named_after_the_portal_is_kept_under_its_name_with_its_options_merged(bezgelor_checkout):
    make_portal_release_variant(bezgelor_checkout)
    before = (bezgelor_checkout / "mix.exs").read_text()
    [change] = apply(mix_exs_change, bezgelor_checkout)
    text = (bezgelor_checkout / "mix.exs").read_text()
    assert_parses(bezgelor_checkout, "mix.exs")
    release = release_of(bezgelor_checkout)
    assert release.name == "bezgelor_portal" and release.templates_path == "rel/portal"
    assert set(release.applications or ()) == set(ALL_APPS_BUT_DEV)
    assert release.overlays == ("rel/portal/overlays",)      # Mix's default for its templates path: no overlays:
    assert "overlays:" not in text and 'rel_templates_path: "rel/portal"' in text
    assert text.count("releases: releases()") == 1
    assert before.count("bezgelor_portal: [") == text.count("bezgelor_portal: [") == 1
    notes = " ".join(change.notes)
    assert "kept the release bezgelor_portal under its own name" in notes
    assert "added the umbrella app(s) bezgelor_api" in notes


def test_the_checkouts_release_name_is_the_one_every_area_uses(bezgelor_checkout):
    make_portal_release_variant(bezgelor_checkout)
    co = open_checkout(bezgelor_checkout, release_name="bzg")
    assert co.configured.release_name == "bzg" and co.settings.release_name == "bezgelor_portal"
    scripts = {c.rel: c.new for c in overlays.owned(co)}
    assert 'release="bezgelor_portal"' in scripts["rel/portal/overlays/bin/server"]
    from bezgelor_tasks.areas.dockerfile import dockerfile_change
    from bezgelor_tasks.game.portal import Portal
    from bezgelor_tasks.game.rpc import remote_command

    # every other task reads it back from the Dockerfile init writes from it, without asking Elixir
    files.apply_changes([dockerfile_change(co)], executor=Executor())
    loaded = settings_load.load(bezgelor_checkout, release_name="bzg")
    assert loaded.release_name == "bezgelor_portal" and loaded.as_configured().release_name == "bzg"
    drain = Portal(loaded, Executor(dry_run=True, echo=False))     # what the drain and `inv players` use
    assert remote_command(drain.settings, "1").startswith("/app/bin/bezgelor_portal rpc ")


def test_a_dev_only_app_in_the_users_release_is_removed_and_the_rest_kept(bezgelor_checkout):
    make_portal_release_variant(bezgelor_checkout)
    mix = bezgelor_checkout / "mix.exs"
    mix.write_text(mix.read_text().replace("bezgelor_db: :permanent]", "bezgelor_db: :permanent, bezgelor_dev: :load]"))
    [change] = apply(mix_exs_change, bezgelor_checkout)
    release = release_of(bezgelor_checkout)
    assert set(release.applications or ()) == set(ALL_APPS_BUT_DEV)
    assert any("removed the dev-only app(s) bezgelor_dev" in n for n in change.notes)


def test_an_unparsable_mix_exs_is_refused_naming_the_file_and_line(bezgelor_checkout):
    mix = bezgelor_checkout / "mix.exs"
    lines = mix.read_text().splitlines(keepends=True)
    lines[6] = lines[6].replace("version:", "version: [")  # line 7: an unclosed bracket
    mix.write_text("".join(lines))
    with pytest.raises(UserError) as err:
        framework.refuse_broken(open_checkout(bezgelor_checkout), registry())
    assert "mix.exs:" in str(err.value) and "nothing was changed" in str(err.value)
    assert "line" in str(err.value)


def test_a_project_that_is_not_a_keyword_literal_is_refused_not_guessed(bezgelor_checkout):
    mix = bezgelor_checkout / "mix.exs"
    mix.write_text(mix.read_text().replace("  def project do\n    [", "  def project do\n    base() ++ [", 1)
                   .replace("defp deps do", "defp base, do: []\n\n  defp deps do"))
    with pytest.raises(UserError, match=r"mix\.exs:4: project/0 does not return a keyword list literal"):
        mix_exs_change(open_checkout(bezgelor_checkout))


# --- prod.exs --------------------------------------------------------------------------------------

def test_prod_exs_gets_exclude_inside_force_ssl_with_hsts_and_the_health_paths(bezgelor_checkout):
    apply(prod_exs_change, bezgelor_checkout)
    text = (bezgelor_checkout / "config/prod.exs").read_text()
    assert 'cache_static_manifest: "priv/static/cache_manifest.json"' in text
    assert "# Do not print debug messages in production" in text
    config = elixir.read_config(bezgelor_checkout / "config/prod.exs", "prod")
    endpoint = config[":bezgelor_portal"]["Elixir.BezgelorPortalWeb.Endpoint"]
    assert "exclude" not in endpoint  # no longer a stray endpoint option
    force_ssl = endpoint["force_ssl"]
    assert force_ssl["rewrite_on"] == [":x_forwarded_proto"]
    assert force_ssl["hsts"] == "true"
    assert force_ssl["exclude"]["hosts"] == ["localhost", "127.0.0.1"]
    assert force_ssl["exclude"]["paths"] == ["/health", "/api/health", "/livez"]
    assert config[":logger"]["level"] == ":info"


def test_with_plug_before_1_19_exclude_is_a_list_of_host_strings(bezgelor_checkout):
    lock = bezgelor_checkout / "mix.lock"
    lock.write_text(lock.read_text().replace(':plug, "1.19.1"', ':plug, "1.18.1"'))
    [change] = apply(prod_exs_change, bezgelor_checkout)
    force_ssl = elixir.read_config(bezgelor_checkout / "config/prod.exs")[":bezgelor_portal"][
        "Elixir.BezgelorPortalWeb.Endpoint"]["force_ssl"]
    assert force_ssl["exclude"] == ["localhost", "127.0.0.1"]
    assert any("X-Forwarded-Proto" in n for n in change.notes)


# --- router ----------------------------------------------------------------------------------------

ROUTER = "apps/bezgelor_portal/lib/bezgelor_portal_web/router.ex"


def test_health_routes_come_first_outside_every_pipeline_and_user_routes_stay(bezgelor_checkout):
    before = (bezgelor_checkout / ROUTER).read_text()
    apply(router_change, bezgelor_checkout)
    text = (bezgelor_checkout / ROUTER).read_text()
    assert_parses(bezgelor_checkout, ROUTER)
    assert before.replace(text, "") == "" or all(line in text for line in before.splitlines())
    health = text.index('get "/health", HealthController, :index')
    assert health < text.index('get "/", PageController, :home') < text.index('get "/realms", RealmController')
    assert 'get "/api/health", HealthController, :index' in text and 'get "/livez", HealthController, :liveness' in text
    health_scope = text[text.rfind("scope", 0, health):text.index("end", health)]
    assert "pipe_through" not in health_scope


# --- our Elixir sources ----------------------------------------------------------------------------

CONTROLLER = "apps/bezgelor_portal/lib/bezgelor_portal_web/controllers/health_controller.ex"
RELEASE = "apps/bezgelor_db/lib/bezgelor_db/release.ex"


def test_the_health_controller_and_release_module_are_generated_from_settings(bezgelor_checkout):
    apply(health_controller_change, bezgelor_checkout, auth_port=7600)
    apply(release_module_change, bezgelor_checkout)
    assert_parses(bezgelor_checkout, CONTROLLER, RELEASE)
    controller = (bezgelor_checkout / CONTROLLER).read_text()
    assert game_ports_in_controller(bezgelor_checkout) == {"auth": 7600, "realm": 23115, "world": 24000}
    assert "Task.async_stream" in controller and "APP_VERSION" in controller
    release = (bezgelor_checkout / RELEASE).read_text()
    for fn in ("def migrate do", "def rollback(repo, version)", "def rollback_to(version)", "def status do"):
        assert fn in release


def test_a_hand_edited_health_controller_is_only_replaced_with_force(bezgelor_checkout):
    apply(health_controller_change, bezgelor_checkout)
    path = bezgelor_checkout / CONTROLLER
    path.write_text(path.read_text() + "# my change\n")
    change = health_controller_change(open_checkout(bezgelor_checkout))
    assert change.needs_force
    with pytest.raises(UserError, match="--force"):
        files.apply_changes([change], executor=Executor())


# --- runtime.exs -----------------------------------------------------------------------------------

RUNTIME = "config/runtime.exs"


def test_runtime_exs_requires_the_production_secrets_and_keeps_the_users_config(bezgelor_checkout, monkeypatch):
    assert REQUIRED_ENV == ("SECRET_KEY_BASE", "CLOAK_KEY", "DATABASE_URL", "WORLD_PUBLIC_ADDRESS")
    before = (bezgelor_checkout / RUNTIME).read_text()
    [change] = apply(runtime_exs_change, bezgelor_checkout)
    text = (bezgelor_checkout / RUNTIME).read_text()
    assert text.startswith(before.rstrip("\n"))  # the user's lines are all still there, untouched
    assert text.count('System.get_env("PHX_HOST")') == 1  # the user already reads it
    assert text.count('System.get_env("POOL_SIZE")') == 1
    assert "ssl: false" in text and "socket_options" in text and "sslmode=disable" in text  # Flex, on Fly
    env = prod_env(monkeypatch)
    config = elixir.read_config(bezgelor_checkout / RUNTIME, "prod")
    endpoint = config[":bezgelor_portal"]["Elixir.BezgelorPortalWeb.Endpoint"]
    assert endpoint["secret_key_base"] == env["SECRET_KEY_BASE"]
    assert endpoint["url"]["host"] == "bezgelor.example.com"
    assert endpoint["http"]["port"] == 4000
    repo = config[":bezgelor_db"]["Elixir.BezgelorDb.Repo"]
    assert repo["url"] == env["DATABASE_URL"] and repo["ssl"] == "false" and repo["pool_size"] == 10
    assert repo["socket_options"] == [":inet6", [":keepalive", "true"]]   # Fly's private network is IPv6 only
    assert (repo["queue_target"], repo["queue_interval"], repo["idle_interval"]) == (5000, 30000, 60000)
    world = config[":bezgelor_world"]
    assert world["public_address"] == "203.0.113.7" and world["tick_rate"] == 20
    assert "PHX_HOST" in " ".join(change.notes)


def test_a_missing_cloak_key_stops_production_boot_with_how_to_make_one(bezgelor_checkout, monkeypatch):
    apply(runtime_exs_change, bezgelor_checkout)
    prod_env(monkeypatch)
    monkeypatch.delenv("CLOAK_KEY")
    with pytest.raises(UserError) as err:
        elixir.read_config(bezgelor_checkout / RUNTIME, "prod")
    assert "environment variable CLOAK_KEY is missing" in str(err.value)
    assert "strong_rand_bytes(32)" in str(err.value)
    # dev is not affected: no production secret is needed there
    monkeypatch.delenv("SECRET_KEY_BASE")
    assert elixir.read_config(bezgelor_checkout / RUNTIME, "dev")[":bezgelor_world"]["tick_rate"] == 20


def test_rerunning_init_rewrites_only_its_own_runtime_block(bezgelor_checkout):
    apply(runtime_exs_change, bezgelor_checkout)
    path = bezgelor_checkout / RUNTIME
    path.write_text(path.read_text() + '\nconfig :bezgelor_auth, banner: "welcome"\n')
    apply(runtime_exs_change, bezgelor_checkout, portal_port=4100)
    text = path.read_text()
    assert '"4100"' in text and '"4000"' not in text
    assert text.count("BEGIN bezgelor-tasks") == 1 and 'banner: "welcome"' in text


# --- overlays --------------------------------------------------------------------------------------

def test_overlay_scripts_are_installed_executable_naming_the_configured_release(bezgelor_checkout):
    apply(overlay_changes, bezgelor_checkout, release_name="bzg")
    for script in ("migrate", "server"):
        path = bezgelor_checkout / "rel/overlays/bin" / script
        assert os.access(path, os.X_OK)
        assert 'release="bzg"' in path.read_text()
    env_sh = (bezgelor_checkout / "rel/env.sh.eex").read_text()
    assert "-heart" in env_sh and 'HEART_BEAT_TIMEOUT="${HEART_BEAT_TIMEOUT:-60}"' in env_sh


def test_heart_joins_the_users_own_env_sh_and_a_rerun_rewrites_only_its_block(bezgelor_checkout):
    env_sh = bezgelor_checkout / "rel/env.sh.eex"
    env_sh.parent.mkdir(parents=True)
    env_sh.write_text('#!/bin/sh\nexport RELEASE_DISTRIBUTION="name"\n')
    apply(overlay_changes, bezgelor_checkout, heart_timeout_s=30)
    apply(overlay_changes, bezgelor_checkout, heart_timeout_s=45)
    text = env_sh.read_text()
    assert text.startswith('#!/bin/sh\nexport RELEASE_DISTRIBUTION="name"\n')
    assert text.count("-heart") == 1 and "HEART_BEAT_TIMEOUT:-45" in text
    if shutil.which("shellcheck"):
        proc = subprocess.run(["shellcheck", "-s", "sh", *(str(p) for p in (bezgelor_checkout / "rel/overlays/bin")
                                                             .iterdir())], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout


# --- a real release --------------------------------------------------------------------------------



@pytest.mark.slow
def test_after_init_a_real_release_builds_offline_and_bin_migrate_runs_inside_it(nodeps_checkout, monkeypatch,
                                                                                   tmp_path):
    root = nodeps_checkout
    ports = {"auth_port": free_port(), "realm_port": free_port(), "world_port": free_port()}
    for gen in (mix_exs_change, prod_exs_change, runtime_exs_change, router_change, health_controller_change,
                overlay_changes):
        apply(gen, root, **ports)
    # no hex, no network: a private MIX_HOME without Hex in it
    build_env = {**os.environ, "MIX_ENV": "prod", "HEX_OFFLINE": "1", "MIX_HOME": str(tmp_path / "mix_home")}
    build = subprocess.run(["mix", "release", "bezgelor"], cwd=root, env=build_env, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    rel = root / "_build/prod/rel/bezgelor"
    assert os.access(rel / "bin/migrate", os.X_OK) and os.access(rel / "bin/server", os.X_OK)

    log = tmp_path / "migrator.log"
    run_env = {**os.environ, **prod_env(monkeypatch), "FIXTURE_MIGRATOR_LOG": str(log)}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(rel / "bin/migrate"), *args], env={**run_env, **extra}, capture_output=True,
                              text=True, timeout=120)

    up = run()
    assert up.returncode == 0, up.stdout + up.stderr
    assert "run BezgelorDb.Repo up [all: true]" in log.read_text()

    status = run("status")
    assert status.returncode == 0, status.stderr
    [line] = [x for x in status.stdout.splitlines() if x.startswith("BEZGELOR_MIGRATIONS ")]
    data = json.loads(line.split(" ", 1)[1])
    assert data == {"repos": [{"repo": "BezgelorDb.Repo", "migrations": [
        {"version": 20240101000000, "name": "create_accounts", "status": "up"},
        {"version": 20240115120000, "name": 'create "quoted" chars', "status": "down"}]}]}

    back = run("rollback", "20240101000000")
    assert back.returncode == 0, back.stderr
    assert "BEZGELOR_ROLLBACK ok 20240101000000" in back.stdout
    assert "run BezgelorDb.Repo down [to: 20240101000000]" in log.read_text()
    assert run("rollback", "1; rm -rf /").returncode == 2

    # The health routes come first and the controller answers from the real release.
    routes = subprocess.run([str(rel / "bin/bezgelor"), "eval", "IO.inspect(BezgelorPortalWeb.Router.routes())"],
                            env=run_env, capture_output=True, text=True, timeout=120)
    assert routes.stdout.index('"/health"') < routes.stdout.index('"/realms"')

    probe = ('c = BezgelorPortalWeb.HealthController.index(%{}, %{}); b = c.resp_body; '
             'IO.puts("HEALTH #{c.status} #{b.status} " <> Enum.map_join(Enum.sort(b.services), ",", '
             'fn {k, v} -> "#{k}=#{v}" end) <> " version=#{b.version}")')

    def health(**extra: str) -> str:
        proc = subprocess.run([str(rel / "bin/bezgelor"), "eval", probe], env={**run_env, **extra},
                              capture_output=True, text=True, timeout=120)
        return next(x for x in proc.stdout.splitlines() if x.startswith("HEALTH"))

    listeners = []
    try:
        for key in ("auth_port", "realm_port", "world_port"):
            s = socket.socket()
            s.bind(("127.0.0.1", ports[key]))
            s.listen(8)
            listeners.append(s)
        assert health(APP_VERSION="v9.9.9") == \
            "HEALTH 200 healthy auth=ok,database=ok,realm=ok,world=ok version=v9.9.9"
        listeners.pop().close()  # the world server goes away
        assert health().startswith("HEALTH 503 degraded auth=ok,database=ok,realm=ok,world=error version=")
        assert "database=timeout" in health(FIXTURE_DB_SLEEP_MS="5000")
    finally:
        for s in listeners:
            s.close()

    assert_heart_kills_a_frozen_vm(rel, run_env)


def _heart_of(pid: int) -> int | None:
    """The heart process watching VM `pid` (heart runs in a session of its own: `heart -pid <vm> -ht <s>`)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return next((int(line.split()[0]) for line in out.splitlines()
                 if line.split()[1:3] == ["heart", "-pid"] and line.split()[3:4] == [str(pid)]), None)


def assert_heart_kills_a_frozen_vm(rel: Path, env: dict[str, str]) -> None:
    """The started release runs Erlang's heart (from rel/env.sh.eex); a VM that stops answering is killed, so
    the machine's main process ends (and Fly's restart policy starts it again)."""
    import signal
    import time

    # `start` execs down to the VM itself: the process we start is the VM.
    vm = subprocess.Popen([str(rel / "bin/bezgelor"), "start"], start_new_session=True,
                          env={**env, "HEART_BEAT_TIMEOUT": "11", "RELEASE_DISTRIBUTION": "none"},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    heart = None
    try:
        deadline = time.monotonic() + 60
        while (heart := _heart_of(vm.pid)) is None and time.monotonic() < deadline and vm.poll() is None:
            time.sleep(0.2)
        assert heart is not None, "the started release runs no heart"
        os.kill(vm.pid, signal.SIGSTOP)                 # alive, answering nothing
        assert vm.wait(timeout=60) == -signal.SIGKILL   # heart killed it
    finally:
        for pid in (vm.pid, heart):
            try:
                os.kill(pid or vm.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        vm.wait()


# --- mix.exs shapes seen in the wild ----------------------------------------------------------------

MIX_SHAPES = {
    "non_ascii_comments_and_strings": '''defmodule B.MixProject do
  use Mix.Project

  # Überblick: « the umbrella » — offsets count characters, not bytes
  def project do
    [
      apps_path: "apps",
      description: "Bézgelor ✓",
      deps: [] # fin ✓
    ]
  end
end
''',
    "one_line_project": '''defmodule B.MixProject do
  use Mix.Project
  def project, do: [apps_path: "apps", version: "0.1.0", deps: deps()]
  defp deps, do: [{:phoenix, "~> 1.8"}] # a comment with ] and [ and "quotes"
end
''',
    "trailing_comma_and_comments": '''defmodule B.MixProject do
  use Mix.Project

  def project do
    [
      apps_path: "apps",
      # releases: old_releases(),   <- a commented-out key must not count
      version: "0.1.0",
      elixirc_options: [warnings_as_errors: true], # keep me
      deps: deps(),
    ]
  end

  defp deps do
    [
      {:ex_doc, "~> 0.34", only: :dev, runtime: false}
    ]
  end
end
''',
    "inline_releases_and_aliases": '''defmodule B.MixProject do
  use Mix.Project

  def project do
    [
      apps_path: "apps",
      releases: [bezgelor: [applications: [bezgelor_portal: :permanent], overlay: "rel/overlays"]],
      aliases: [test: "test --no-start"],
      deps: []
    ]
  end
end
''',
}


@pytest.mark.parametrize("shape", sorted(MIX_SHAPES))
def test_mix_exs_patching_handles_the_shapes_users_write(bezgelor_checkout, shape):
    (bezgelor_checkout / "mix.exs").write_text(MIX_SHAPES[shape])
    [change] = apply(mix_exs_change, bezgelor_checkout, **OLD_ELIXIR)
    text = (bezgelor_checkout / "mix.exs").read_text()
    assert_parses(bezgelor_checkout, "mix.exs")
    release = release_of(bezgelor_checkout)
    assert set(release.applications or ()) == set(ALL_APPS_BUT_DEV) and not release.ignored_keys
    assert text.count('"assets.deploy"') == 1
    for line in MIX_SHAPES[shape].splitlines():
        if "comment" in line or "keep me" in line:
            assert line.strip() in text
    assert shape != "inline_releases_and_aliases" or 'test: "test --no-start"' in text


def test_prod_exs_without_force_ssl_gets_one_and_a_plug_downgrade_rewrites_exclude(bezgelor_checkout):
    prod = bezgelor_checkout / "config/prod.exs"
    prod.write_text("import Config\n\nconfig :logger, level: :info\n")
    apply(prod_exs_change, bezgelor_checkout)
    force_ssl = elixir.read_config(prod)[":bezgelor_portal"]["Elixir.BezgelorPortalWeb.Endpoint"]["force_ssl"]
    assert force_ssl["exclude"]["paths"] == ["/health", "/api/health", "/livez"] and force_ssl["hsts"] == "true"
    lock = bezgelor_checkout / "mix.lock"
    lock.write_text(lock.read_text().replace(':plug, "1.19.1"', ':plug, "1.17.0"'))
    apply(prod_exs_change, bezgelor_checkout)
    force_ssl = elixir.read_config(prod)[":bezgelor_portal"]["Elixir.BezgelorPortalWeb.Endpoint"]["force_ssl"]
    assert force_ssl["exclude"] == ["localhost", "127.0.0.1"]


def test_every_elixir_generator_together_leaves_a_checkout_that_parses_and_is_stable(bezgelor_checkout):
    generators = (mix_exs_change, prod_exs_change, runtime_exs_change, router_change, health_controller_change,
                  overlay_changes)
    for gen in generators:
        apply(gen, bezgelor_checkout)
    sources = [p for p in bezgelor_checkout.rglob("*") if p.suffix in (".ex", ".exs")]
    assert elixir.parse_files(sources, bezgelor_checkout) == []
    for gen in generators:  # a second init after all of them: nothing to do
        out = gen(open_checkout(bezgelor_checkout))
        assert not any(c.changed for c in (out if isinstance(out, list) else [out]))


def test_a_runtime_block_without_its_end_marker_is_refused_with_the_line(bezgelor_checkout):
    apply(runtime_exs_change, bezgelor_checkout)
    path = bezgelor_checkout / RUNTIME
    path.write_text(path.read_text().replace("# END bezgelor-tasks\n", ""))
    with pytest.raises(UserError, match=r"config/runtime\.exs:\d+: the bezgelor-tasks block has no END marker"):
        runtime_exs_change(open_checkout(bezgelor_checkout))
