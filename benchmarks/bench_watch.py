"""Benchmark: the game-level probe and the watcher's footprint, against real loopback servers.

Prints:
1. one probe pass (/health + a ServerHello read on each of the three game ports, side by side) against the raw
   probes one after another (a plain GET of /health and a TCP connect to each port — what the old deploy gate
   did): the ratio of their wall times, median of many passes;
2. the watcher (`inv watch`, a real process) at a compressed interval for a while: its resident memory, and its
   CPU time per cycle (its own and its children's: the heartbeat and the probes run in-process, flyctl only
   when something is wrong or every ten minutes for the IPv4), extrapolated to one hour at a 30 s interval —
   plus its idle CPU between cycles — as a share of one core; and its RSS against a bare Python's.
   Goals: under 60 MB and under 1% of a shared core.

Run: python benchmarks/bench_watch.py [--passes 200] [--seconds 60] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.flyctl_fake.commands.common import new_app  # noqa: E402
from tests.fakes.flyctl_fake.commands.ips import add_ip  # noqa: E402
from tests.support.fakefly import FakeFly  # noqa: E402
from tests.support.servers import GameServers  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def raw_probes(servers: GameServers) -> None:
    with urllib.request.urlopen(servers.health_url, timeout=5) as response:  # noqa: S310 (loopback)
        response.read()
    for port in servers.ports.values():
        socket.create_connection((servers.host, port), timeout=5).close()


def bench_probe(passes: int) -> tuple[float, float]:
    from bezgelor_tasks import settings_load
    from bezgelor_tasks.probe import probe_pass

    servers = GameServers()
    servers.set_behavior("healthy")
    try:
        os.environ.update(servers.env())
        s = settings_load.load(str(REPO))
        ours, raw = [], []
        for _ in range(passes):  # in turns, so both see the same machine load
            began = time.perf_counter()
            result = probe_pass(s, servers.host)
            ours.append(time.perf_counter() - began)
            if not result.ok:
                sys.exit(f"the probe failed on healthy servers: {result.summary()}")
            began = time.perf_counter()
            raw_probes(servers)
            raw.append(time.perf_counter() - began)
        return statistics.median(ours), statistics.median(raw)
    finally:
        servers.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and its waited-for children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def heartbeat_server() -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/ping"


def bench_watcher(seconds: float, interval: float, tmp: Path) -> dict[str, float]:
    servers = GameServers()
    servers.set_behavior("healthy")
    fake = FakeFly(tmp / "fly")
    fake.update(lambda s: add_ip(new_app(s, "bezgelor", "personal"), "v4", "127.0.0.1"))
    beat, url = heartbeat_server()
    root = tmp / "checkout"
    root.mkdir()
    env = {**os.environ, **fake.env(), **servers.env(), "BEZGELOR_HEARTBEAT_URL": url,
           "BEZGELOR_WATCH_INTERVAL": str(interval), "NO_COLOR": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("BEZGELOR_") or k in servers.env() or k in (
        "BEZGELOR_HEARTBEAT_URL", "BEZGELOR_WATCH_INTERVAL")}
    log = open(tmp / "watch.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(REPO), "watch", "--root", str(root)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while (tmp / "watch.log").read_text().count("\nwatch ") < 3:  # started, first cycles done
            time.sleep(0.05)
        cycles0, cpu0, began = (tmp / "watch.log").read_text().count("\nwatch "), cpu_seconds(proc.pid), time.time()
        peak = 0.0
        while time.time() - began < seconds:
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.25)
        cycles = (tmp / "watch.log").read_text().count("\nwatch ") - cycles0
        cpu = cpu_seconds(proc.pid) - cpu0
        elapsed = time.time() - began
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        beat.shutdown()
        servers.close()
    bare = subprocess.run([sys.executable, "-c", "print([l.split()[1] for l in open('/proc/self/status') "
                           "if l.startswith('VmRSS:')][0])"], capture_output=True, text=True)
    # Between cycles the watcher blocks on an Event (no polling): its CPU is the cycles'. Every ten minutes it
    # also reads the app's IPv4 with flyctl (here the fake flyctl, a Python process: an upper bound).
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["fly", "ips", "list", "--json", "-a", "bezgelor"], env={**os.environ, **fake.env()},
                   capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    flyctl_call = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    per_cycle = cpu / max(cycles, 1)
    per_hour_30s = per_cycle * 120 + flyctl_call * 6
    return {"cycles": cycles, "cpu_per_cycle_ms": per_cycle * 1000, "rss_peak_mb": peak, "elapsed": elapsed,
            "bare_python_mb": int(bare.stdout.strip()) / 1024, "cpu_hour_30s_s": per_hour_30s,
            "core_share_30s_pct": per_hour_30s / 3600 * 100, "flyctl_call_ms": flyctl_call * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    ours, raw = bench_probe(args.passes)
    print(f"probe pass (health + 3 ServerHello reads, side by side) vs raw probes (GET + 3 TCP connects, in turn), "
          f"median of {args.passes}:")
    print(f"  ours {ours * 1000:.2f} ms, raw {raw * 1000:.2f} ms, ratio {ours / raw:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        w = bench_watcher(args.seconds, args.interval, Path(tmp))
    print(f"watcher at a {args.interval}s interval for {args.seconds:.0f}s ({w['cycles']:.0f} cycles):")
    print(f"  RSS peak {w['rss_peak_mb']:.1f} MB (bare python {w['bare_python_mb']:.1f} MB, ratio "
          f"{w['rss_peak_mb'] / w['bare_python_mb']:.1f}); goal < 60 MB")
    print(f"  CPU {w['cpu_per_cycle_ms']:.1f} ms per cycle (+ {w['flyctl_call_ms']:.0f} ms per flyctl IPv4 read, 6 an "
          f"hour) -> at a 30 s interval {w['cpu_hour_30s_s']:.1f} s an hour = {w['core_share_30s_pct']:.3f}% of one "
          "core; goal < 1%")


if __name__ == "__main__":
    main()
