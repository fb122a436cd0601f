"""fly.toml as data: one spec, written by init into the user's file (or an empty one) and read back by verify.

Each story starts from a small Bezgelor-shaped umbrella (test_init_infra.make_umbrella) and a fly.toml the way
users have one: none, the one `fly launch` writes, one with values of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomlkit

from bezgelor_tasks import settings_checks, settings_load, units
from bezgelor_tasks.areas import fly_toml
from bezgelor_tasks.areas.dockerfile import dockerfile_change
from bezgelor_tasks.areas.dockerfile_facts import parse_dockerfile
from bezgelor_tasks.areas.docs import docs_changes
from bezgelor_tasks.checkout.discover import Checkout
from bezgelor_tasks.checks.context import CheckContext
from bezgelor_tasks.files import apply_changes
from bezgelor_tasks.run import Executor
from tests.test_init_infra import make_umbrella, open_checkout


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    return open_checkout(make_umbrella(tmp_path / "bezgelor"))


def data(text: str) -> dict[str, Any]:
    return tomlkit.parse(text).unwrap()


def by_port(text: str) -> dict[int, dict[str, Any]]:
    return {svc["internal_port"]: svc for svc in data(text)["services"]}


def verify(co: Checkout) -> list[Any]:
    return fly_toml.check(CheckContext(co))


USER_FLY_TOML = '''# my notes about this app
app = "old-name"
primary_region = "lax"   # our database is in lax
swap_size_mb = 512   # my own key
kill_timeout = "30s"

[env]
  MY_FLAG = "1"

[[services]]
  internal_port = 6600
  protocol = "tcp"
  auto_stop_machines = "stop"

  [[services.ports]]
    port = 6600
    handlers = []
'''


def test_the_users_comments_keys_and_values_survive_and_ours_are_fixed(checkout: Checkout) -> None:
    checkout.path("fly.toml").write_text(USER_FLY_TOML)
    change = fly_toml.fly_toml_change(checkout)
    assert change.mode == "patch"
    assert "# my notes about this app" in change.new and "# my own key" in change.new
    assert "# our database is in lax" in change.new
    new = data(change.new)
    assert new["swap_size_mb"] == 512 and new["env"]["MY_FLAG"] == "1"
    # values the checkout already has are kept while no setting says otherwise, and init says so
    assert new["primary_region"] == "lax" and new["kill_timeout"] == "30s"
    assert any("primary_region 'lax' kept (BEZGELOR_FLY_REGION is not set; its default is 'sjc'" in n
               for n in change.notes)
    assert new["kill_signal"] == "SIGTERM" and new["restart"] == [{"policy": "on-failure"}]
    services = by_port(change.new)
    assert sorted(services) == [4000, 6600, 23115, 24000]      # the user's 6600 service was updated in place
    assert new["services"][0]["internal_port"] == 6600
    assert {s["auto_stop_machines"] for s in services.values()} == {"off"}
    assert {s["min_machines_running"] for s in services.values()} == {1}
    apply_changes([change], executor=Executor())
    assert not fly_toml.fly_toml_change(checkout).changed       # a second run changes nothing
    assert verify(checkout) == []
    # the checkout's region is the one everything else uses: the database the docs create is in lax too
    again = open_checkout(checkout.root)
    assert again.settings.region == "lax" and again.configured.region == "sjc"
    deployment = docs_changes(again)[0].new
    assert "fly postgres create --name bezgelor-db --region lax" in deployment and "sjc" not in deployment


def test_a_region_setting_that_was_given_wins_and_init_says_so(tmp_path: Path) -> None:
    root = make_umbrella(tmp_path / "b")
    (root / "fly.toml").write_text(USER_FLY_TOML)
    before = open_checkout(root)
    assert any(f.id == "flytoml.primary-region" for f in verify(open_checkout(root, region="ams"))) is True
    assert all(f.id != "flytoml.primary-region" for f in verify(before))   # not given: lax is the user's choice
    change = fly_toml.fly_toml_change(open_checkout(root, region="ams"))
    assert data(change.new)["primary_region"] == "ams"
    assert any("primary_region 'lax' → 'ams' (BEZGELOR_FLY_REGION)" in n for n in change.notes) and change.show_diff


def test_a_fresh_file_is_the_spec_applied_to_an_empty_document(checkout: Checkout) -> None:
    text = fly_toml.fly_toml_change(checkout).new
    s = checkout.settings
    services = by_port(text)
    portal = services[s.portal_port]
    assert {(p["port"], tuple(p["handlers"]), p.get("force_https", False)) for p in portal["ports"]} == {
        (80, ("http",), True), (443, ("tls", "http"), False)}
    (check,) = portal["http_checks"]
    assert check["path"] == s.health_paths[0] and check["headers"] == {"X-Forwarded-Proto": "https"}
    durations = [check[k] for k in ("interval", "timeout", "grace_period")]
    for port in s.ports.game().values():
        assert services[port]["ports"] == [{"port": port, "handlers": []}]
        durations += [services[port]["tcp_checks"][0][k] for k in ("interval", "timeout", "grace_period")]
    assert all(units.duration_seconds(d) for d in durations)   # strings Fly reads, never bare integers
    doc = data(text)
    assert doc["deploy"]["release_command"] == "/app/bin/migrate" and doc["deploy"]["strategy"] == "rolling"
    assert doc["env"]["PHX_HOST"] == "bezgelor.fly.dev" and doc["build"]["args"]["APP_VERSION"] == "0.3.1"
    assert units.parse_memory_mb(doc["vm"][0]["memory"]) == s.vm_memory_mb and doc["vm"][0]["cpus"] == s.vm_cpus
    assert doc["restart"] == [{"policy": "on-failure"}]
    assert "60 seconds" in text and "# bezgelor-tasks service: world" in text
    apply_changes([fly_toml.fly_toml_change(checkout)], executor=Executor())
    assert verify(checkout) == []


def test_with_managed_postgres_the_release_command_migrates_on_the_direct_url(tmp_path: Path) -> None:
    root = make_umbrella(tmp_path / "b")
    flex, mpg = open_checkout(root), open_checkout(root, pg_flavor="mpg")
    apply_changes([fly_toml.fly_toml_change(mpg)], executor=Executor())
    assert data((root / "fly.toml").read_text())["deploy"]["release_command"] == \
        "/bin/sh -lc 'DATABASE_URL=$DIRECT_DATABASE_URL /app/bin/migrate'"
    assert verify(mpg) == []                                   # init's own file, under mpg: nothing to say
    (finding,) = verify(flex)
    assert finding.id == "flytoml.release-command" and "DIRECT" not in finding.fix


def test_changing_a_port_moves_dockerfile_and_fly_toml_together(tmp_path: Path) -> None:
    root = make_umbrella(tmp_path / "b")
    first = open_checkout(root)
    apply_changes([dockerfile_change(first), fly_toml.fly_toml_change(first)], executor=Executor())
    moved = open_checkout(root, auth_port=6700, portal_port=4100)
    assert {f.id for f in verify(moved)} >= {"flytoml.internal-port", "flytoml.port"}
    apply_changes([dockerfile_change(moved), fly_toml.fly_toml_change(moved)], executor=Executor())
    assert parse_dockerfile((root / "Dockerfile").read_text()).exposed_ports == {4100, 6700, 23115, 24000}
    text = (root / "fly.toml").read_text()
    services = by_port(text)
    assert sorted(services) == [4100, 6700, 23115, 24000]
    assert [p["port"] for p in services[6700]["ports"]] == [6700]          # the stale 6600 is gone
    assert data(text)["env"]["PORT"] == "4100" and verify(moved) == []


FLY_LAUNCH_HTTP = """\
app = "bezgelor"
primary_region = "sjc"

[http_service]
  internal_port = 4000
  force_https = true
  auto_stop_machines = "stop"
  auto_start_machines = true
  min_machines_running = 0
  processes = ["app"]

  [http_service.concurrency]
    type = "connections"
    hard_limit = 1000
    soft_limit = 1000

[[vm]]
  memory = "4GiB"
  cpu_kind = "shared"
  cpus = 2
"""


def test_http_service_is_the_portals_service_kept_in_its_form_and_made_always_on(checkout: Checkout) -> None:
    checkout.path("fly.toml").write_text(FLY_LAUNCH_HTTP)
    found = verify(checkout)
    assert not any("internal_port 4000" in f.message and "no service" in f.message for f in found)
    stop = next(f for f in found if f.id == "flytoml.auto-stop-machines")
    assert stop.severity == "error" and stop.message.startswith("[http_service] auto_stop_machines = 'stop'")
    assert any(f.id == "flytoml.checks-missing" and "[http_service] has no HTTP check of /health" in f.message
               for f in found)
    change = fly_toml.fly_toml_change(checkout)
    assert change.mode == "patch" and not change.show_diff      # patched in place, nothing of theirs removed
    new = data(change.new)
    http = new["http_service"]
    assert http["internal_port"] == 4000 and http["auto_stop_machines"] == "off" and http["min_machines_running"] == 1
    assert http["concurrency"] == {"type": "connections", "hard_limit": 1000, "soft_limit": 1000}   # theirs
    assert http["processes"] == ["app"] and http["force_https"] is True
    (check,) = http["checks"]
    assert check["path"] == "/health" and check["headers"] == {"X-Forwarded-Proto": "https"}
    assert sorted(by_port(change.new)) == [6600, 23115, 24000]   # no second portal service
    assert new["vm"][0]["memory"] == "4GiB"                      # 4096 MB in the user's spelling: left alone
    apply_changes([change], executor=Executor())
    assert not fly_toml.fly_toml_change(checkout).changed and verify(checkout) == []


def test_an_http_service_beside_the_portals_services_is_one_too_many(checkout: Checkout) -> None:
    apply_changes([fly_toml.fly_toml_change(checkout)], executor=Executor())
    with checkout.path("fly.toml").open("a") as fh:
        fh.write('\n[http_service]\n  internal_port = 4000\n  auto_stop_machines = "stop"\n')
    (twice,) = [f for f in verify(checkout) if f.id == "flytoml.http-service-twice"]
    assert twice.severity == "error" and "removes [http_service]" in twice.fix
    change = fly_toml.fly_toml_change(checkout)
    assert "http_service" not in data(change.new) and change.show_diff
    assert any(n.startswith("removed [http_service]") for n in change.notes)


def test_an_always_on_http_service_with_its_check_is_clean(checkout: Checkout) -> None:
    always_on = FLY_LAUNCH_HTTP.replace('"stop"', '"off"').replace("min_machines_running = 0",
                                                                    "min_machines_running = 1").replace(
        "[[vm]]", '[[http_service.checks]]\n  path = "/health"\n  grace_period = "60s"\n  timeout = 5000000000\n'
        '  [http_service.checks.headers]\n    X-Forwarded-Proto = "https"\n\n[[vm]]')
    apply_changes([fly_toml.fly_toml_change(checkout)], executor=Executor())
    doc = tomlkit.parse(checkout.path("fly.toml").read_text())
    del doc["services"][0]                                     # the portal's [[services]] ...
    doc["http_service"] = tomlkit.parse(always_on)["http_service"]   # ... as `fly launch` writes it, always on
    checkout.path("fly.toml").write_text(tomlkit.dumps(doc))
    found = verify(checkout)                                   # a bare number is nanoseconds under [http_service]
    assert [(f.id, f.severity) for f in found] == [("flytoml.timeout", "error")] and "bare number" in found[0].message
    checkout.path("fly.toml").write_text(checkout.path("fly.toml").read_text().replace("5000000000", '"5s"'))
    assert [f.id for f in verify(checkout) if f.severity != "info"] == []


def test_a_multi_line_string_of_the_users_is_never_changed(checkout: Checkout) -> None:
    text = FLY_LAUNCH_HTTP.replace('[[vm]]', '[experimental]\n  notes = """\n\n[not a table]\n\n"""\n\n[[vm]]')
    checkout.path("fly.toml").write_text(text)
    assert data(fly_toml.fly_toml_change(checkout).new)["experimental"]["notes"] == "\n[not a table]\n\n"


def test_init_says_so_when_fly_toml_names_another_app_than_the_settings(checkout: Checkout) -> None:
    checkout.path("fly.toml").write_text(FLY_LAUNCH_HTTP.replace('app = "bezgelor"', 'app = "bezgelor-xyz"'))
    change = fly_toml.fly_toml_change(checkout)
    assert any("app 'bezgelor-xyz' → 'bezgelor'" in n and "BEZGELOR_FLY_APP=bezgelor-xyz" in n for n in change.notes)


def test_memory_lots_is_named_as_a_bad_value_with_the_forms_fly_accepts(checkout: Checkout) -> None:
    apply_changes([fly_toml.fly_toml_change(checkout)], executor=Executor())
    path = checkout.path("fly.toml")
    path.write_text(path.read_text().replace('memory = "4gb"', 'memory = "lots"'))
    (finding,) = verify(checkout)
    assert finding.severity == "error" and finding.id == "flytoml.memory"
    assert "memory = 'lots' is not a memory size Fly reads" in finding.message and '"4GiB"' in finding.message
    assert path.read_text().splitlines()[finding.line - 1].strip() == 'memory = "lots"'
    assert fly_toml.memory_check(CheckContext(checkout)) == []            # not a second finding about it
    assert data(fly_toml.fly_toml_change(checkout).new)["vm"][0]["memory"] == "4gb"   # init writes a size


def test_a_fly_toml_that_is_not_toml_is_one_finding_and_nothing_else_reads_it(checkout: Checkout) -> None:
    from bezgelor_tasks.checks import verify as verify_all

    apply_changes([fly_toml.fly_toml_change(checkout)], executor=Executor())
    checkout.path("fly.toml").write_text('app = "bezgelor"\n[[services]\ninternal_port = 4000\n')
    about = [f for f in verify_all(checkout).findings if f.file == "fly.toml"]
    assert [(f.id, f.line) for f in about] == [("flytoml.syntax", 2)], about
    assert "flytoml, memory" in about[0].message                 # the areas that read it were skipped
    assert fly_toml.check(CheckContext(checkout)) == [] and CheckContext(checkout).fly_toml is None


def test_one_memory_parser_reads_every_spelling_fly_accepts() -> None:
    for value in ("4GiB", "4gb", "4g", "4 GB", "4096", "4096mb", "4096MiB", 4096):
        assert units.parse_memory_mb(value) == 4096, value
    assert units.parse_memory_mb("512m") == 512 and units.parse_memory_mb("1.5gb") == 1536
    assert units.parse_memory_mb("lots") is None and units.parse_memory_mb(True) is None


def test_one_duration_parser_reads_flys_durations_and_our_settings() -> None:
    assert [units.duration_seconds(v) for v in ("10s", "1m30s", "500ms", "1h", "0")] == [10, 90, 0.5, 3600, 0]
    assert units.duration_seconds("90") is None and units.duration_seconds(15000) is None   # Go wants a unit
    assert units.parse_duration("90") == 90 and units.fly_duration(60) == "60s"


def test_a_kill_timeout_above_flys_limit_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from bezgelor_tasks.errors import UserError

    with pytest.raises(UserError, match=r"BEZGELOR_KILL_TIMEOUT=301 .*300"):
        settings_checks.validate(settings_load.load(root=tmp_path, environ={"BEZGELOR_KILL_TIMEOUT": "301"}))
