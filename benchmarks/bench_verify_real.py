"""`inv verify` on the real Bezgelor repository after `inv init`, against one bare Elixir start.

    python benchmarks/bench_verify_real.py [--runs 5]

Verify asks Elixir everything (syntax, env reads, config calls, three Config.Reader evaluations,
mix.lock, mix.exs requirements) through one judge process, so its cost should stay within about twice
`elixir -e 'IO.puts 1'`. Also prints how many Elixir processes one verify started. Ratios of medians,
in one run; never asserted. Needs ../shared/checkouts/ (skips with a message without it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARBALL = REPO.parent / "shared" / "checkouts" / "bezgelor-b92790f.tar.gz"
INV = (sys.executable, "-m", "invoke", "--search-root", str(REPO))


def median_seconds(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(list(argv), capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - started)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return statistics.median(times)


def counting_elixir(bin_dir: Path, log: Path) -> dict[str, str]:
    """A PATH whose `elixir` logs each start, then runs the real one."""
    real = shutil.which("elixir")
    assert real
    shim = bin_dir / "elixir"
    shim.write_text(f'#!/bin/sh\necho start >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not TARBALL.is_file() or not shutil.which("elixir"):
        print(f"skipped: needs {TARBALL} and Elixir")
        return
    with tempfile.TemporaryDirectory(prefix="bench-verify-real-") as tmp:
        with tarfile.open(TARBALL) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / "bezgelor"
        subprocess.run([*INV, "init", "--root", str(root)], check=True, capture_output=True)
        log = Path(tmp) / "elixir-starts"
        (Path(tmp) / "bin").mkdir()
        env = counting_elixir(Path(tmp) / "bin", log)
        subprocess.run([*INV, "verify", "--root", str(root)], capture_output=True, env=env)
        starts = len(log.read_text().splitlines()) if log.exists() else 0
        verify = median_seconds((*INV, "verify", "--root", str(root)), args.runs)
        bare = median_seconds(("elixir", "-e", "IO.puts 1"), args.runs)
        inv_list = median_seconds((*INV, "--list"), args.runs)
    print(f"inv verify (real repository, after init) / elixir -e 'IO.puts 1':  {verify / bare:5.2f}x  (goal <= 2x)")
    print(f"inv verify - inv --list (verify's own work) / elixir start:          {(verify - inv_list) / bare:5.2f}x")
    print(f"Elixir processes one verify started:                                {starts}")
    print(f"(median of {args.runs} runs each)")


if __name__ == "__main__":
    main()
