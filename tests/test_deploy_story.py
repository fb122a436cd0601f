"""The deploy story as a user lives it: `inv deploy.full` against the fake flyctl and real loopback servers.

A fresh account gets an app, a database, an IPv4, secrets, a release and a healthy report; running it
again changes nothing; a bad release is rolled back; the plan can be seen without changing anything.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.support.deployrun import (
    SECRET_SHAPES,
    Ran,
    commit_all,
    deployable_checkout,  # noqa: F401 (fixture)
    git,
    inv,
)

APP, DB = "bezgelor", "bezgelor-db"
CHANGING = {"apps create", "postgres create", "postgres attach", "ips allocate-v4", "secrets import", "deploy",
            "secrets unset", "secrets set"}


def deploy(co: Path, *extra: str) -> Ran:
    return inv("deploy.full", "--root", str(co), "--yes", *extra)


def changing_calls(fake_fly, since: int = 0) -> list[list[str]]:  # noqa: ANN001
    return [c["argv"] for c in fake_fly.calls()[since:] if c["cmd"] in CHANGING]


def test_deploy_full_on_a_fresh_account_creates_everything_and_reports_healthy(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    ran = deploy(deployable_checkout)
    assert ran.returncode == 0, ran.output

    state = fake_fly.state()
    assert {APP, DB} <= set(state["apps"])
    assert any(ip["Type"] == "v4" for ip in state["apps"][APP]["ips"])
    wanted = {"SECRET_KEY_BASE", "CLOAK_KEY", "DATABASE_URL", "WORLD_PUBLIC_ADDRESS"}
    assert wanted <= set(state["apps"][APP]["secrets"])
    assert fake_fly.secret_digest(APP, "WORLD_PUBLIC_ADDRESS") == fake_fly.digest_of("127.0.0.1")
    live = fake_fly.live_release(APP)
    assert live is not None and live["status"] == "complete" and live["image_ref"].endswith(":v0.1.0")

    # The image was built with the version while the database was provisioned, then deployed by image.
    builds = [a for a in fake_fly.argvs("deploy") if "--build-only" in a]
    assert len(builds) == 1 and "APP_VERSION=v0.1.0" in builds[0] and "v0.1.0" in builds[0]
    assert [a for a in fake_fly.argvs("deploy") if "--image" in a][0][-1] == "--yes"

    # The summary names the version, the image, the URL, the IPv4 and the game ports, and each step's time.
    for text in ("v0.1.0", "registry.fly.io/bezgelor:v0.1.0", "https://bezgelor.fly.dev", "127.0.0.1",
                 f"world {game_servers.ports['world']}", "health", "database"):
        assert text in ran.stdout, text

    # The database password: kept 0600 under .bezgelor/, never printed, said where it is.
    password_file = deployable_checkout / ".bezgelor" / f"{DB}.password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = next(line.split("=", 1)[1] for line in password_file.read_text().splitlines()
                    if line.startswith("PASSWORD="))
    assert password not in ran.output
    assert str(password_file) in ran.output
    assert ".bezgelor" not in git(deployable_checkout, "status", "--porcelain")  # it stays out of git


def test_running_deploy_full_again_changes_nothing(deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    assert deploy(deployable_checkout).returncode == 0
    digests = {n: fake_fly.secret_digest(APP, n) for n in ("SECRET_KEY_BASE", "CLOAK_KEY")}
    releases = len(fake_fly.releases(APP))
    before = len(fake_fly.calls())

    again = deploy(deployable_checkout)

    assert again.returncode == 0, again.output
    assert changing_calls(fake_fly, before) == []
    assert len(fake_fly.releases(APP)) == releases
    assert {n: fake_fly.secret_digest(APP, n) for n in digests} == digests
    assert again.output.count("already done") >= 6


def test_no_secret_value_appears_in_argv_journal_or_output(deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    ran = deploy(deployable_checkout)
    assert ran.returncode == 0, ran.output
    password_file = deployable_checkout / ".bezgelor" / f"{DB}.password"
    secrets = [line.split("=", 1)[1] for line in password_file.read_text().splitlines()
               if line.startswith(("PASSWORD=", "CONNECTION_STRING="))]
    journal = (deployable_checkout / ".bezgelor" / "journal.jsonl").read_text()
    argvs = json.dumps(fake_fly.argvs())
    for where, text in (("output", ran.output), ("journal", journal), ("argv", argvs)):
        for value in secrets:
            assert value not in text, f"a database secret leaked into the {where}"
        for shape in SECRET_SHAPES:
            assert not shape.search(text), f"something shaped like a generated secret is in the {where}"
    imports = fake_fly.calls("secrets import")
    assert len(imports) == 1 and imports[0]["stdin_len"] > 0, "all secrets go in one import, on stdin"


def test_a_deploy_whose_machines_fail_their_checks_is_rolled_back_to_the_previous_healthy_image(
        deployable_checkout: Path, fake_fly, game_servers, monkeypatch) -> None:  # noqa: ANN001, F811
    monkeypatch.setenv("BEZGELOR_HEALTH_TIMEOUT", "2")
    assert deploy(deployable_checkout).returncode == 0
    (deployable_checkout / "CHANGELOG.md").write_text("v0.2.0\n")
    commit_all(deployable_checkout, "v0.2.0", tag="v0.2.0")
    fake_fly.set_image_behavior("v0.2.0", "503")

    ran = deploy(deployable_checkout, "--skip-backup")  # the backup before v0.2.0 has its own test

    assert ran.returncode != 0
    assert "Step `deploy`" in ran.stderr and "Rolled back to release v1" in ran.stderr
    live = fake_fly.live_release(APP)
    assert live["image_ref"].endswith(":v0.1.0") and live["status"] == "complete"
    assert game_servers.behavior == "healthy"
    assert not (deployable_checkout / ".bezgelor" / f"deploy-{APP}.lock").exists()


def test_dry_run_prints_every_steps_argv_and_changes_nothing(deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    ran = inv("deploy.full", "--root", str(deployable_checkout), "--dry-run")
    assert ran.returncode == 0, ran.output
    for shown in ("fly apps create bezgelor --org personal --yes",
                  "fly postgres create --name bezgelor-db --region sjc --org personal --initial-cluster-size 1",
                  "fly postgres attach bezgelor-db -a bezgelor --yes", "fly ips allocate-v4 -a bezgelor --yes",
                  "fly secrets import -a bezgelor --stage < (stdin)",
                  "--build-arg APP_VERSION=v0.1.0 --image-label v0.1.0",
                  "--label org.bezgelor.migrations.newest=20240302093000", "--build-only --push",
                  "cannot be undone"):
        assert shown in ran.stdout, shown
    assert changing_calls(fake_fly) == []
    assert fake_fly.state()["apps"] == {}
    assert not (deployable_checkout / ".bezgelor").exists()


def test_json_plan_lists_each_step_with_its_argv(deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    ran = inv("deploy.full", "--root", str(deployable_checkout), "--dry-run", "--json")
    assert ran.returncode == 0, ran.output
    plan = json.loads(ran.stdout)
    steps = {s["name"]: s for s in plan["steps"]}
    assert list(steps) == ["preflight", "app", "machines", "build", "database", "ipv4", "secrets", "drain", "backup",
                           "deploy", "health"]
    assert "drain" in steps["backup"]["after"]  # the backup is taken once the players are gone
    assert steps["ipv4"]["argv"] == [["fly", "ips", "allocate-v4", "-a", "bezgelor", "--yes"]]
    assert steps["secrets"]["commands"][0]["stdin"] == "(secret)"
    assert plan["dry_run"] is True and plan["version"] == "v0.1.0"


def test_json_result_reports_the_deploy(deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    ran = deploy(deployable_checkout, "--json")
    assert ran.returncode == 0, ran.output
    result = json.loads(ran.stdout)
    assert result["ok"] is True and result["ipv4"] == "127.0.0.1" and result["release_version"] == 1
    assert result["image"].endswith(":v0.1.0")
    assert all("argv" in s and "seconds" in s for s in result["steps"])


def test_without_yes_and_without_a_terminal_deploy_full_asks_and_changes_nothing(
        deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    ran = inv("deploy.full", "--root", str(deployable_checkout))
    assert ran.returncode != 0
    assert "--yes" in ran.stderr
    assert changing_calls(fake_fly) == []


def test_deploy_status_shows_app_machines_release_and_health(deployable_checkout: Path, fake_fly, game_servers) -> None:  # noqa: ANN001, F811
    assert deploy(deployable_checkout).returncode == 0
    ran = inv("deploy.status", "--root", str(deployable_checkout), "--json")
    assert ran.returncode == 0, ran.output
    status = json.loads(ran.stdout)
    assert status["app"]["name"] == APP and status["release"]["version"] == 1
    assert status["machines"] and status["machines"][0]["checks"][0]["status"] == "passing"
    assert status["health"]["ok"] is True


def test_a_release_fly_accepts_but_whose_health_gate_fails_is_rolled_back(
        deployable_checkout: Path, fake_fly, game_servers, monkeypatch) -> None:  # noqa: ANN001, F811
    """Fly's own checks pass, but the public /health says the database is down: the gate catches it."""
    import threading
    import time

    monkeypatch.setenv("BEZGELOR_HEALTH_TIMEOUT", "2")
    assert deploy(deployable_checkout).returncode == 0
    commit_all(deployable_checkout, "v0.2.0", tag="v0.2.0")
    game_servers.set_behavior("503")
    stop = threading.Event()

    def heal_after_rollback() -> None:  # the previous image, once live again, answers healthy
        while not stop.is_set():
            if len(fake_fly.releases(APP)) >= 3:
                game_servers.set_behavior(None)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=heal_after_rollback, daemon=True)
    watcher.start()
    try:
        ran = deploy(deployable_checkout, "--skip-backup")  # the backup before v0.2.0 has its own test
    finally:
        stop.set()
        watcher.join()

    assert ran.returncode != 0
    assert "Step `health`" in ran.stderr and "Rolled back to release v1" in ran.stderr
    versions = [(r["version"], r["status"], r["image_ref"].rsplit(":", 1)[1]) for r in fake_fly.releases(APP)]
    assert versions == [(1, "complete", "v0.1.0"), (2, "complete", "v0.2.0"), (3, "complete", "v0.1.0")]
    assert fake_fly.live_release(APP)["image_ref"].endswith(":v0.1.0")
