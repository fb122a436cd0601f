"""Benchmark: `inv deploy.full` against the fake flyctl with realistic per-command latencies (scaled down).

Prints, as ratios:
1. wall time of the deploy / the sum of its step times (what running the plan's checklist one step
   after another would take): below 1 means the side-by-side steps (image build while the database
   and the IPv4 are provisioned) paid off.
2. health-gate detection latency: how long after the servers turn healthy the gate notices, divided
   by the poll interval (at most ~1 means it notices on the next poll).

Run: python benchmarks/bench_deploy.py [--scale 0.02]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.fakefly import BIN_DIR, FakeFly  # noqa: E402
from tests.support.servers import GameServers  # noqa: E402

# Seconds each command takes on real Fly.io (typical, from experience; order of magnitude is what counts).
REAL_LATENCY_S = {
    ("apps create", None): 5,
    ("postgres create", None): 120,
    ("postgres attach", None): 10,
    ("ips allocate-v4", None): 5,
    ("secrets import", None): 5,
    ("deploy", "--build-only"): 240,
    ("deploy", ("--image",)): 90,
    ("releases", None): 2,
    ("apps list", None): 2,
    ("ips list", None): 2,
    ("secrets list", None): 2,
}
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def run(argv: list[str], cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env={**os.environ, **GIT_ENV, **(env or {})}, capture_output=True,
                          text=True, check=False)


def inv(*args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "invoke", "-r", str(REPO), *args])


def prepare_checkout(tmp: Path) -> Path:
    co = tmp / "bezgelor"
    shutil.copytree(REPO / "tests" / "fixtures" / "bezgelor", co)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "fixture"]):
        run(["git", *args], cwd=co)
    init = inv("init", "--root", str(co))
    if init.returncode != 0:
        sys.exit(f"inv init failed:\n{init.stdout}{init.stderr}")
    for args in (["add", "-A"], ["commit", "-qm", "init"], ["tag", "v1.0.0"]):
        run(["git", *args], cwd=co)
    return co


def bench_deploy(scale: float, tmp: Path) -> dict[str, float]:
    fake = FakeFly(tmp / "fakefly")
    os.environ.update(fake.env())
    os.environ["PATH"] = f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}"
    servers = GameServers()
    os.environ.update(servers.env())
    try:
        co = prepare_checkout(tmp)
        for (cmd, match), seconds in REAL_LATENCY_S.items():
            fake.fault(cmd, "slow", latency=seconds * scale, match=list(match) if isinstance(match, tuple) else match)
        started = time.monotonic()
        ran = inv("deploy.full", "--root", str(co), "--yes", "--json")
        wall = time.monotonic() - started
        if ran.returncode != 0:
            sys.exit(f"deploy.full failed:\n{ran.stdout}{ran.stderr}")
        result = json.loads(ran.stdout)
    finally:
        servers.close()
    steps = {s["name"]: s["seconds"] for s in result["steps"]}
    return {"wall": wall, "pipeline": result["seconds"], "sequential": result["sequential_seconds"], **steps}


def bench_health_gate(interval: float, flips: int = 5) -> list[float]:
    from bezgelor_tasks import settings_load
    from bezgelor_tasks.health import health_gate
    from bezgelor_tasks.ui import UI

    servers = GameServers()
    try:
        os.environ.update(servers.env())
        os.environ["BEZGELOR_HEALTH_INTERVAL"] = str(interval)
        s = settings_load.load(str(REPO))
        ratios = []
        for i in range(flips):
            servers.set_behavior("down")
            turn_healthy_after = interval * (1.3 + 0.37 * i)  # not aligned with the polls
            flipped_at: list[float] = []

            def flip(flipped_at: list[float] = flipped_at) -> None:
                servers.set_behavior("healthy")
                flipped_at.append(time.monotonic())

            timer = threading.Timer(turn_healthy_after, flip)
            began = time.monotonic()
            timer.start()
            report = health_gate(s, UI(stream=open(os.devnull, "w")), servers.host, timeout=30)  # noqa: SIM115
            noticed = began + report.waited
            timer.join()
            if not report.ok:
                sys.exit(f"health gate did not see the servers turn healthy: {report.last_error}")
            ratios.append(max(0.0, noticed - flipped_at[0]) / interval)
        return ratios
    finally:
        servers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.02, help="fake latency = real latency x scale")
    parser.add_argument("--interval", type=float, default=0.5, help="health-gate poll interval (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        d = bench_deploy(args.scale, Path(tmp))
    print(f"deploy.full against the fake (real latencies x {args.scale}):")
    for name in ("preflight", "app", "machines", "build", "database", "ipv4", "secrets", "drain", "backup",
                 "deploy", "health"):
        print(f"  {name:<10} {d.get(name, 0.0):7.2f}s")
    print(f"  pipeline wall time        {d['pipeline']:7.2f}s (process: {d['wall']:.2f}s)")
    print(f"  steps one after another   {d['sequential']:7.2f}s")
    print(f"  ratio wall / sequential   {d['pipeline'] / d['sequential']:7.2f}  (< 1: side-by-side steps pay off)")
    ratios = bench_health_gate(args.interval)
    print(f"health gate, poll interval {args.interval}s, {len(ratios)} flips down -> healthy:")
    print(f"  detection latency / interval: mean {statistics.mean(ratios):.2f}, max {max(ratios):.2f}  "
          "(<= ~1: noticed on the next poll)")


if __name__ == "__main__":
    main()
