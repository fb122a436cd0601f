"""Verify on the real Bezgelor repository after `inv init`, against one bare Elixir start.

    python benchmarks/bench_verify_real.py [--runs 15]

Verify asks Elixir everything (syntax, env reads, config calls, three Config.Reader evaluations,
mix.lock, mix.exs requirements) through one judge process, so its cost should stay within twice
`elixir -e 'IO.puts 1'`. The two run side by side: each round times one verify and then one bare Elixir
start, so both see the same load (the machine is shared), and the ratio is taken round by round. Verify is
timed as CI's `nox -s verify` runs it (`python -m bezgelor_tasks verify`: the judge starts before Invoke loads)
and as `inv verify` (the judge starts once Invoke has loaded our tasks, ~0.09 s later). Prints
the median ratio with its quartiles and range, `inv --list` (Python and Invoke's start-up) for scale, and
how many Elixir processes one verify started. Never asserted. Needs ../shared/checkouts/ (skips with a
message without it).

The library and its dependencies are byte-compiled first, as .ci/bootstrap installs them: `inv` never writes
.pyc files itself (Invoke turns that off), so without them every run would compile them again (~0.2 s).
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


def seconds(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env)
    took = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return took


def side_by_side(commands: dict[str, Sequence[str]], runs: int) -> dict[str, list[float]]:
    """Each command once per round, round after round (after one untimed round: caches, page cache)."""
    for argv in commands.values():
        seconds(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(seconds(argv))
    return times


def spread(values: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return f"{median:5.2f}x (quartiles {q1:.2f}-{q3:.2f}, range {min(values):.2f}-{max(values):.2f})"


def counting_elixir(bin_dir: Path, log: Path) -> dict[str, str]:
    """A PATH whose `elixir` logs each start, then runs the real one."""
    real = shutil.which("elixir")
    assert real
    shim = bin_dir / "elixir"
    shim.write_text(f'#!/bin/sh\necho start >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def byte_compile() -> None:
    """What .ci/bootstrap does at install (uv sync --compile-bytecode, compileall of the project)."""
    import sysconfig

    folders = [sysconfig.get_paths()["purelib"], str(REPO / "bezgelor_tasks")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    if not TARBALL.is_file() or not shutil.which("elixir"):
        print(f"skipped: needs {TARBALL} and Elixir")
        return
    byte_compile()
    with tempfile.TemporaryDirectory(prefix="bench-verify-real-") as tmp:
        with tarfile.open(TARBALL) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / "bezgelor"
        subprocess.run([*INV, "init", "--root", str(root)], check=True, capture_output=True)
        log = Path(tmp) / "elixir-starts"
        (Path(tmp) / "bin").mkdir()
        subprocess.run([*INV, "verify", "--root", str(root)], capture_output=True,
                       env=counting_elixir(Path(tmp) / "bin", log))
        starts = len(log.read_text().splitlines()) if log.exists() else 0
        times = side_by_side({"verify": (sys.executable, "-m", "bezgelor_tasks", "verify", "--root", str(root)),
                              "inv verify": (*INV, "verify", "--root", str(root)),
                              "elixir": ("elixir", "-e", "IO.puts 1"),
                              "list": (*INV, "--list")}, args.runs)
    verify, bare, listing = times["verify"], times["elixir"], times["list"]
    print(f"verify (python -m bezgelor_tasks, as nox -s verify) / elixir start: "
          f"{spread([v / b for v, b in zip(verify, bare, strict=True)])}  (goal <= 2x)")
    print(f"inv verify / elixir start:                                          "
          f"{spread([v / b for v, b in zip(times['inv verify'], bare, strict=True)])}")
    print(f"inv --list (Python and Invoke's start-up) / elixir start:          "
          f"{spread([v / b for v, b in zip(listing, bare, strict=True)])}")
    print(f"medians: verify {statistics.median(verify):.3f}s, elixir {statistics.median(bare):.3f}s, "
          f"inv --list {statistics.median(listing):.3f}s")
    print(f"Elixir processes one verify started:                                {starts}")
    print(f"({args.runs} rounds, each: verify, inv verify, a bare Elixir start, inv --list)")


if __name__ == "__main__":
    main()
