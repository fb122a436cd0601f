"""How the judge's Elixir process starts: through the `elixir` launcher the first time, straight from `erl` after.

The first start (per judge source and per Elixir/Erlang install) goes through the `elixir` launcher, which
compiles the judge's modules into a cache folder (`BOOT`) and writes down how the launcher started Erlang
(`:init.get_arguments()`: Elixir's code paths and its other flags, and the variables the `erl` script exports)
in a launch file beside them. Later starts run that Erlang command directly (erlexec itself, with those
variables: no shell script), with our modules on the code path, a small VM (`VM_FLAGS`), starting the `:elixir`
application and calling BezgelorJudge.main/0 — what the launcher does, without its shell scripts, its
command-line handling and the evaluation of `-e` code: about 50 ms less than one bare `elixir` start (see
benchmarks/bench_verify_real.py).

Only for an Elixir installed as its own folder (the launcher beside its lib/, not a version manager's shim that
picks a version per folder), and never with flags for Erlang in the environment (ELIXIR_ERL_OPTIONS, ERL_AFLAGS...).
The launch file's name holds the launcher's and `erl`'s paths and dates, so an upgrade starts over. A start
from the launch file that dies before its first answer removes the file and starts through the launcher
(elixir.Judge).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

# Run by the launcher (`elixir -e BOOT -- <cache> <launch file or ""> <sources...>`): load the judge's
# compiled modules from the cache (per Elixir/OTP version), compiling them there first when absent (where the
# cache cannot be written, in memory); then write the launch file, if asked, before answering.
BOOT = r"""
[cache, launch | sources] = System.argv()
dir = Path.join(cache, System.version() <> "-otp" <> System.otp_release())
beam = Path.join(dir, "Elixir.BezgelorJudge.beam")
unless File.exists?(beam) do
  tmp = dir <> ".tmp" <> Integer.to_string(System.unique_integer([:positive]))
  try do
    File.mkdir_p!(tmp)
    {:ok, _, _} = Kernel.ParallelCompiler.compile_to_path(sources, tmp)
    File.rename!(tmp, dir)
  rescue
    _ -> File.rm_rf(tmp)
  end
end
if File.exists?(beam), do: Code.prepend_path(dir), else: Enum.each(sources, &Code.compile_file/1)
if launch != "" and File.exists?(beam) do
  skip = [:root, :bindir, :progname, :home, :s, :run, :eval, :extra, :noshell, :noinput]
  args =
    for {flag, values} <- :init.get_arguments(), flag not in skip,
        do: [Atom.to_string(flag) | Enum.map(values, &List.to_string/1)]
  # What the `erl` script exports before it execs erlexec: with them, later starts exec erlexec themselves.
  erl_env = for name <- ["ROOTDIR", "BINDIR", "EMU", "PROGNAME"], into: %{}, do: {name, System.get_env(name) || ""}
  text = BezgelorJudge.JSON.encode(%{"beams" => dir, "args" => args, "erl_env" => erl_env})
  tmp = launch <> ".tmp" <> Integer.to_string(System.unique_integer([:positive]))
  with :ok <- File.write(tmp, text), do: File.rename(tmp, launch)
end
BezgelorJudge.main()
"""

# Flags for Erlang from the environment: the launcher's own, and those `erl` reads (they would land in the launch
# file and be read again). With any of them set, the launcher starts the judge every time.
ERLANG_FLAGS = ("ELIXIR_ERL_OPTIONS", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_FLAGS")

# After the flags the launcher gave Erlang: our modules, no shell, the Elixir application, the judge's loop, and
# a halt when stdin closes.
# A small VM: one scheduler of each kind that does not spin when idle. The judge answers one run's questions; a
# VM sized for the machine boots slower when the other core is busy (Python loading beside it), and spinning
# schedulers would take that core from Python. Measured on 2 cores: verify 0.34 s -> 0.32 s (median of 20).
VM_FLAGS = ("+S", "1:1", "+SDcpu", "1:1", "+SDio", "1", "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none")

_START = ("-noshell", "-eval", "application:ensure_all_started(elixir)", "-s", "Elixir.BezgelorJudge", "main",
          "-s", "erlang", "halt")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bezgelor-tasks" / "judge"


def _stamp(path: Path) -> str:
    real = path.resolve()
    st = real.stat()
    return f"{real}:{st.st_mtime_ns}:{st.st_size}"


def launch_file(cache: Path) -> Path | None:
    """Where this Elixir/Erlang install's launch is written down (None: the launcher must always start it)."""
    launcher, erl = shutil.which("elixir"), shutil.which("erl")
    if launcher is None or erl is None or any(os.environ.get(name) for name in ERLANG_FLAGS):
        return None
    app = Path(launcher).resolve().parent.parent / "lib" / "elixir" / "ebin" / "elixir.app"
    if not app.is_file():
        return None        # a shim or a wrapper: which Elixir it runs is its business
    try:
        key = "|".join(_stamp(p) for p in (Path(launcher), app, Path(erl)))
    except OSError:
        return None
    return cache / f"launch-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def forget(launch: Path) -> None:
    """A start from this launch file died before it answered: the next start goes through the launcher, which
    writes it again (our cache, never the checkout)."""
    launch.unlink(missing_ok=True)


def command(sources: list[Path]) -> tuple[tuple[str, ...], Path | None, dict[str, str]]:
    """The judge's command, the launch file it came from (None: it is the launcher's, which writes one) and the
    environment it needs (erlexec's, when the launch file says where it is: the `erl` shell script and the four
    programs it runs to find its folder are skipped)."""
    cache = cache_dir() / hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    launch = launch_file(cache)
    erl = shutil.which("erl")
    if launch is not None and erl is not None and launch.is_file():
        try:
            written = json.loads(launch.read_text(encoding="utf-8"))
            beams = Path(written["beams"])
            args = [[str(word) for word in arg] for arg in written["args"]]
        except (OSError, ValueError, KeyError, TypeError):
            written = None
        if written is not None and (beams / "Elixir.BezgelorJudge.beam").is_file():
            flags = tuple(word for flag, *values in args for word in (f"-{flag}", *values))
            program, env = _erlexec(written.get("erl_env")) or (erl, {})
            return (program, *flags, *VM_FLAGS, "-pa", str(beams), *_START), launch, env
    return ("elixir", "-e", BOOT, "--", str(cache), str(launch or ""), *map(str, sources)), None, {}


def _erlexec(erl_env: object) -> tuple[str, dict[str, str]] | None:
    """erlexec and the variables `erl` would have set for it, when the launch file has all four."""
    if not isinstance(erl_env, dict) or not all(isinstance(erl_env.get(k), str) and erl_env[k] for k in _ERL_ENV):
        return None
    program = Path(erl_env["BINDIR"]) / "erlexec"
    return (str(program), {k: erl_env[k] for k in _ERL_ENV}) if program.is_file() else None


_ERL_ENV = ("ROOTDIR", "BINDIR", "EMU", "PROGNAME")
