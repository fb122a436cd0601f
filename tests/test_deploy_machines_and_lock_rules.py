"""The rules behind one machine per world and the lock kept on Fly, on their own (no flyctl needed)."""

from __future__ import annotations

import time

from bezgelor_tasks.deploy import fly_lock, machines
from bezgelor_tasks.fly.records import AppStatus, Check, Machine, Secret
from bezgelor_tasks.fly.secret_commands import SECRET_NAME_RE
from bezgelor_tasks.settings_load import load

PASS = (Check("servicecheck-00-http-4000", "passing", ""),)
FAIL = (Check("servicecheck-00-http-4000", "critical", ""),)


def machine(mid: str, *, state: str = "started", checks: tuple[Check, ...] = PASS, release: int = 2,
            created: str = "2026-12-01T00:00:00Z", standby_for: tuple[str, ...] = ()) -> Machine:
    return Machine(mid, state, "fra", f"registry.fly.io/bz:v{release}", release, checks, created, "app", standby_for)


def status(*ms: Machine) -> AppStatus:
    return AppStatus("bz", "deployed", "bz.fly.dev", 2, ms)


def test_the_machine_to_keep_is_started_healthy_on_the_newest_release_and_the_oldest() -> None:
    older = machine("a1", created="2026-11-01T00:00:00Z")
    newer = machine("b2", created="2026-12-01T00:00:00Z")
    assert machines.assess(status(newer, older)).keep == older
    failing = machine("c3", checks=FAIL, created="2026-10-01T00:00:00Z")
    assert machines.assess(status(failing, newer)).keep == newer
    standby = machine("d4", created="2026-01-01T00:00:00Z", standby_for=("b2",))
    assert machines.assess(status(standby, newer)).keep == newer
    stale = machine("e5", release=1, created="2026-01-01T00:00:00Z")
    assert machines.assess(status(stale, newer)).keep == newer


def test_the_way_back_to_one_machine_is_a_destroy_per_extra_machine() -> None:
    settings = load(None, environ={"BEZGELOR_FLY_APP": "bz"})
    count = machines.assess(status(machine("a1", created="1"), machine("b2", created="2"), machine("c3", created="3")))
    assert not count.ok and count.keep is not None and count.keep.id == "a1"
    assert [c.argv[1:] for c in count.commands(settings)] == [
        ("machine", "destroy", "b2", "--force", "-a", "bz"), ("machine", "destroy", "c3", "--force", "-a", "bz")]
    assert "3 separate game worlds" in count.problem(settings) and "Keep a1" in count.problem(settings)
    assert machines.assess(status(machine("a1"))).ok and machines.assess(status()).ok


def test_what_runs_is_the_serving_machines_image_only_with_passing_checks_for_a_label() -> None:
    failed = status(machine("a1", checks=FAIL, release=3))
    assert machines.serving(failed) is not None and machines.serving(failed).release_version == 3  # type: ignore[union-attr]
    assert machines.runs_label(failed, "v3") is None  # not "already deployed": its checks fail
    assert machines.runs_label(status(machine("a1", release=3)), "v3") is not None


def test_a_lock_name_carries_holder_host_time_and_message_and_is_a_valid_secret_name() -> None:
    holder = fly_lock.FlyHolder("octocat-ci", "runner-" + "x" * 40, 1796170000.0, "rollback",
                                "deploy v1.2.3-45-gdeadbee-dirty-20261201 " + "long " * 20, "a1b2c3")
    name = fly_lock.encode(holder)
    assert SECRET_NAME_RE.match(name) and name.startswith(fly_lock.PREFIX) and len(name) < 260
    back = fly_lock.decode(name)
    assert back is not None
    assert (back.user, back.purpose, back.started, back.nonce) == ("octocat-ci", "rollback", 1796170000.0, "a1b2c3")
    assert back.host == holder.host[:32] and back.message == holder.message[:40]
    assert fly_lock.decode("DATABASE_URL") is None
    assert fly_lock.decode(fly_lock.PREFIX + "NOT_BASE32_!") is not None  # unreadable, still counted as held


def test_only_lock_names_count_and_the_oldest_comes_first() -> None:
    now = time.time()
    a = fly_lock.encode(fly_lock.FlyHolder("a", "h", now - 5, "deploy", "", "n1"))
    b = fly_lock.encode(fly_lock.FlyHolder("b", "h", now - 50, "deploy", "", "n2"))
    found = fly_lock.holders([Secret(a, "d", "Staged"), Secret("CLOAK_KEY", "d", "Deployed"), Secret(b, "d", "Staged")])
    assert [h.user for h in found] == ["b", "a"]
    assert "deploy by b@h since" in found[0].describe()
