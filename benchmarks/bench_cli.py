"""CLI start-up and `inv verify` cost, printed as ratios (median of N runs), never asserted.

    python benchmarks/bench_cli.py [--runs 7] [--files 1500]

- `bezgelor-tasks --list` against plain `inv --list` on an empty tasks.py (what our tasks add to Invoke's
  own start-up; goal <= 1.3x), and `inv --list` here against a bare `python -c pass`;
- `inv verify` on a generated checkout of about 1,500 files (the fixture after `inv init`, plus
  many .ex modules and game-data JSON under apps/) against `inv verify` on the plain fixture, and
  against one bare `elixir -e ''` (verify starts a few Elixir VMs: parse, Config.Reader).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "bezgelor"
INV = (sys.executable, "-m", "invoke", "--search-root", str(REPO))
BEZGELOR_TASKS = (sys.executable, "-m", "bezgelor_tasks")  # the console script's program, from this checkout


def median_seconds(argv: Sequence[str], runs: int, ok_codes: tuple[int, ...] = (0,),
                   cwd: Path | None = None) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd)
        times.append(time.perf_counter() - started)
        if proc.returncode not in ok_codes:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return statistics.median(times)


def interleaved_medians(runs_of: Sequence[tuple[Sequence[str], Path | None, tuple[int, ...]]],
                        runs: int) -> list[float]:
    """Median seconds of each (argv, cwd, ok exit codes), run in turns."""
    times: list[list[float]] = [[] for _ in runs_of]
    for _ in range(runs):
        for i, (argv, cwd, ok_codes) in enumerate(runs_of):
            started = time.perf_counter()
            proc = subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd)
            times[i].append(time.perf_counter() - started)
            if proc.returncode not in ok_codes:
                raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return [statistics.median(t) for t in times]


def make_checkout(dest: Path, extra_files: int) -> Path:
    shutil.copytree(FIXTURE, dest)
    subprocess.run([*INV, "init", "--root", str(dest)], check=True, capture_output=True)
    apps = sorted(p for p in (dest / "apps").iterdir() if p.is_dir())
    existing = sum(1 for p in dest.rglob("*") if p.is_file())
    for i in range(max(0, extra_files - existing)):
        app = apps[i % len(apps)]
        if i % 4 == 3:
            target = dest / "apps" / "bezgelor_data" / "priv" / "data" / "gen" / f"table_{i}.json"
            rows = ", ".join(str(n) for n in range(50))
            body = f'{{"id": {i}, "rows": [{rows}]}}\n'
        else:
            mod = "".join(p.capitalize() for p in app.name.split("_"))
            target = app / "lib" / "gen" / f"module_{i}.ex"
            body = f"defmodule {mod}.Gen{i} do\n  def value, do: {i}\nend\n"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--files", type=int, default=1500)
    ap.add_argument("--list-only", action="store_true", help="only the --list start-up ratios (no verify runs)")
    args = ap.parse_args()

    bare_python = median_seconds((sys.executable, "-c", "pass"), args.runs)
    with tempfile.TemporaryDirectory(prefix="bench-empty-tasks-") as empty:
        Path(empty, "tasks.py").write_text("")
        # Interleaved, so load from other processes on the machine hits both sides alike.
        plain_inv_list, ours_list = interleaved_medians([
            ((sys.executable, "-m", "invoke", "--search-root", empty, "--list"), None, (0, 1)),  # "No tasks found"
            ((*BEZGELOR_TASKS, "--list"), REPO, (0,)),
        ], args.runs * 2)
    print(f"bezgelor-tasks --list / inv --list (empty tasks.py): {ours_list / plain_inv_list:6.2f}x  (goal <= 1.3x)")
    inv_list = median_seconds((*INV, "--list"), args.runs)
    print(f"inv --list / python -c pass:           {inv_list / bare_python:6.1f}x")
    if args.list_only:
        print(f"(median of {args.runs} runs each; the --list pair {args.runs * 2} runs, interleaved)")
        return

    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        small = make_checkout(Path(tmp) / "fixture", 0)
        big = make_checkout(Path(tmp) / "big", args.files)
        n_files = sum(1 for p in big.rglob("*") if p.is_file())
        verify_small = median_seconds((*INV, "verify", "--root", str(small)), args.runs, (0, 1))
        verify_big = median_seconds((*INV, "verify", "--root", str(big)), args.runs, (0, 1))
    print(f"inv verify ({n_files} files) / verify (fixture):  {verify_big / verify_small:6.2f}x")
    print(f"inv verify ({n_files} files) / python -c pass:    {verify_big / bare_python:6.1f}x")
    if shutil.which("elixir"):
        bare_elixir = median_seconds(("elixir", "-e", ""), args.runs)
        print(f"inv verify ({n_files} files) / elixir -e '':      {verify_big / bare_elixir:6.1f}x")
    print(f"(median of {args.runs} runs each)")


if __name__ == "__main__":
    main()
