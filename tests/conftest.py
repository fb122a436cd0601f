"""Shared test setup. Area fixtures live in tests/support/*.py and are registered here."""

import pytest

pytest_plugins = [
    "tests.support.umbrella",   # Bezgelor-shaped fixture checkouts in tmp_path
    "tests.support.shapes",     # real checkout shapes (real repository, after fly launch, phx.new --umbrella)
    "tests.support.fakefly",    # the fake flyctl first on PATH, its state and its call log
    "tests.support.servers",    # real loopback servers playing /health and the game ports
    "tests.support.postgres",   # a real PostgreSQL cluster on loopback
    "tests.support.world",      # a real BEAM on loopback playing the game world (BezgelorWorld.Portal)
    "tests.support.s3",         # a real S3-compatible server (SeaweedFS) on loopback, one per run
    "tests.support.receivers",  # loopback receivers of alerts (HTTP webhooks, ntfy, SMTP) and heartbeats
    "tests.support.watching",   # a deployed app whose machine is a real BEAM world, and `inv watch` running
]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's .env or BEZGELOR_* settings, or a real flyctl token."""
    import os

    for key in list(os.environ):
        if key.startswith(("BEZGELOR_", "FLY_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    from bezgelor_tasks import redact

    redact.clear()
    yield
