"""The health gate passes only when /health says every service is ok and the game ports accept players."""

from __future__ import annotations

import io

from bezgelor_tasks import settings_load
from bezgelor_tasks.health import health_gate
from bezgelor_tasks.ui import UI


def _gate(tmp_path, timeout=3.0, expect_version=None):
    s = settings_load.load(tmp_path)
    out = io.StringIO()
    report = health_gate(s, UI(stream=out), "127.0.0.1", expect_version=expect_version, timeout=timeout)
    return report, out.getvalue()


def test_a_healthy_server_passes_the_gate_on_the_first_poll(tmp_path, game_servers):
    report, out = _gate(tmp_path)
    assert report.ok, report.summary()
    assert report.polls == 1
    assert {"health endpoint", "database", "auth", "realm", "world"} <= set(report.services)
    assert any(k.startswith("world hello 127.0.0.1:") for k in report.services)
    assert "all services ok" in out


def test_a_degraded_server_times_out_with_a_per_service_report(tmp_path, game_servers):
    game_servers.set_behavior("degraded")
    report, out = _gate(tmp_path, timeout=1.0)
    assert not report.ok
    assert report.failing["world"] == "error"
    world_hello = next(k for k in report.failing if k.startswith("world hello"))
    assert report.failing[world_hello] == "connection refused"
    assert "auth" not in report.failing
    assert "FAIL world: error" in report.lines()
    assert "waiting on" in out


def test_a_503_is_read_for_its_per_service_json(tmp_path, game_servers):
    game_servers.set_behavior("503")
    report, _ = _gate(tmp_path, timeout=0.5)
    assert not report.ok
    assert report.failing["database"] == "error"
    assert report.failing["health endpoint"].startswith("HTTP 503")


def test_an_html_page_instead_of_json_is_named_as_such(tmp_path, game_servers):
    game_servers.set_behavior("html")
    report, _ = _gate(tmp_path, timeout=0.5)
    assert not report.ok
    assert "HTML page" in report.services["health endpoint"]
    assert "force_ssl" in report.last_error


def test_a_server_that_never_answers_is_reported_as_a_timeout(tmp_path, game_servers):
    game_servers.set_behavior("timeout")
    report, _ = _gate(tmp_path, timeout=1.0)
    assert not report.ok
    assert "no answer" in report.services["health endpoint"]


def test_a_server_that_is_down_refuses_everything(tmp_path, game_servers):
    game_servers.set_behavior("down")
    report, _ = _gate(tmp_path, timeout=0.5)
    assert not report.ok
    assert all(v == "connection refused" for k, v in report.services.items() if " hello " in k)
    assert report.services["health endpoint"] != "ok"


def test_a_server_that_becomes_healthy_after_a_few_polls_passes(tmp_path, game_servers):
    game_servers.script(["down", "503", "degraded", "healthy"])
    report, _ = _gate(tmp_path, timeout=30)
    assert report.ok, report.summary()
    # /health and the game ports are probed side by side, and this fixture opens the ports when /health is
    # asked: the poll that first sees "healthy" may have greeted the ports a moment before they reopened.
    assert report.polls in (4, 5)


def test_the_gate_waits_for_the_expected_version(tmp_path, game_servers):
    game_servers.set_behavior("healthy", version="1.0.0")
    report, _ = _gate(tmp_path, timeout=0.5, expect_version="1.1.0")
    assert not report.ok
    assert report.failing["version"] == "running 1.0.0, expected 1.1.0"
    game_servers.set_behavior("healthy", version="1.1.0")
    report, _ = _gate(tmp_path, timeout=5, expect_version="1.1.0")
    assert report.ok


def test_nothing_listening_at_all_is_connection_refused(tmp_path, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("BEZGELOR_HEALTH_URL", f"http://127.0.0.1:{port}/health")
    monkeypatch.setenv("BEZGELOR_HEALTH_INTERVAL", "0.1")
    report, _ = _gate(tmp_path, timeout=0.3)
    assert not report.ok
    assert report.services["health endpoint"] == "connection refused"


def test_game_ports_that_accept_but_never_greet_fail_the_gate(tmp_path, game_servers):
    """A frozen world: the kernel still accepts connections (so a TCP connect passes), nothing answers."""
    import socket

    game_servers.mute()
    with socket.create_connection(("127.0.0.1", game_servers.ports["world"]), timeout=2):
        pass  # what the old gate checked: it passes
    report, _ = _gate(tmp_path, timeout=0.5)
    assert not report.ok
    hellos = {k: v for k, v in report.failing.items() if " hello " in k}
    assert len(hellos) == 3, report.failing
    assert all("no ServerHello within" in v for v in hellos.values()), hellos
    assert "health endpoint" not in report.failing
