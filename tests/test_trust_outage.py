"""An outage is not a bad release: with nothing new to deploy and the live release failing its health (the
database is down, /health answers 503), `deploy.full` deploys nothing, rolls nothing back, journals no verdict
against the release it did not deploy, and ends non-zero with a diagnosis: what fails, what runs, since when,
what to read next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.trustworld import APP, run_task, two_healthy_releases  # noqa: F401 (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.elixir, pytest.mark.slow]


def test_a_rerun_during_an_outage_diagnoses_it_and_rolls_nothing_back(two_healthy_releases: Path, fake_fly,  # noqa: ANN001, F811
                                                                      game_servers, monkeypatch) -> None:  # noqa: ANN001
    root = two_healthy_releases
    monkeypatch.setenv("BEZGELOR_HEALTH_TIMEOUT", "1")
    game_servers.set_behavior("503")  # the database is down: /health says 503, database "error"
    deploys = len(fake_fly.calls("deploy"))

    ran = run_task("deploy.full", "--yes")

    assert ran.code != 0
    assert len(fake_fly.calls("deploy")) == deploys                     # no `fly deploy`, no rollback
    assert fake_fly.live_release(APP)["version"] == 2
    error = ran.stderr[ran.stderr.index("error: "):]
    headline = error.splitlines()[0]
    assert "not healthy" in headline and "deployed nothing" in headline and len(headline) <= 130
    assert "failing: database: error" in error                           # which probe fails
    assert "running: release v2 (registry.fly.io/bezgelor:v0.2.0)" in error  # the release that runs
    assert "last healthy: 20" in error                                   # since when, as far as we know
    assert error.splitlines()[-1].startswith("Fix: read `inv logs")      # what to read next
    assert "inv deploy.status" in error
    assert "rollback     none: this run deployed nothing" in ran.stdout   # the summary says what happened
    assert "Roll-back not done" not in ran.output and "rolled back to" not in ran.output.lower()

    journal = [json.loads(x) for x in (root / ".bezgelor" / "journal.jsonl").read_text().splitlines()]
    last = journal[-1]
    assert last["event"] == "deploy-end" and last["ok"] is False and "release_version" not in last
    assert last["running_release"] == 2 and last["diagnosis"]["failing"]["database"] == "error"

    game_servers.set_behavior(None)  # the database is back
    listed = run_task("rollback.list", "--json")
    rows = {r["version"]: r for r in json.loads(listed.stdout)}
    assert rows[2]["health"] == "healthy" and rows[2]["current"]        # no verdict against v2
    assert rows[1]["offered"]
