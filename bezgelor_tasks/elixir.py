"""Real Elixir as the judge of every .ex/.exs we write or patch.

`Code.string_to_quoted!/2` checks syntax; `Config.Reader.read!/2` evaluates a config file that
needs no deps. Where Elixir is absent, callers get `None` and must say loudly that they skipped.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bezgelor_tasks.errors import UserError
from bezgelor_tasks.run import Command, Executor


@dataclass(frozen=True)
class SyntaxProblem:
    file: str
    line: int
    message: str


def available() -> bool:
    return shutil.which("elixir") is not None


def _run_elixir(script: str, args: list[str], *, cwd: Path | None = None,
                environ: Mapping[str, str | None] | None = None,
                timeout: float = 300) -> tuple[int, str, str]:
    """Run `elixir -e script -- args` through the one executor, quietly (it only reads)."""
    cmd = Command(("elixir", "-e", script, "--", *args), purpose="check Elixir sources", env=environ or {},
                  cwd=cwd, timeout=timeout, mutates=False)
    result = Executor(echo=False).run(cmd, check=False)
    return result.returncode, result.stdout, result.stderr




def parse_files(paths: list[Path], rel_to: Path) -> list[SyntaxProblem]:
    """Syntax-check files with real Elixir (one VM for all). Raises if Elixir is missing."""
    if not available():
        raise UserError("Elixir is not installed, so the .ex/.exs files cannot be checked.",
                        fix="install it (Debian: apt-get install elixir) and run again.")
    if not paths:
        return []
    script = r"""
for file <- System.argv() do
  case Code.string_to_quoted(File.read!(file), file: file) do
    {:ok, _} -> IO.puts("OK\t#{file}")
    {:error, {meta, msg, tok}} ->
      line = if is_list(meta), do: Keyword.get(meta, :line, 0), else: meta
      tok = if is_binary(tok), do: tok, else: inspect(tok)
      text = case msg do
        {pre, post} when is_binary(pre) and is_binary(post) -> pre <> tok <> post
        m when is_binary(m) -> m <> tok
        m -> inspect(m) <> tok
      end
      IO.puts("ERR\t#{file}\t#{line}\t#{String.replace(text, "\n", " ")}")
  end
end
"""
    code, out, err = _run_elixir(script, [str(p) for p in paths])
    problems: list[SyntaxProblem] = []
    for line in out.splitlines():
        if line.startswith("ERR\t"):
            _, file, lineno, msg = line.split("\t", 3)
            try:
                rel = str(Path(file).relative_to(rel_to))
            except ValueError:
                rel = file
            problems.append(SyntaxProblem(rel, int(lineno) if lineno.isdigit() else 0, msg))
    if code != 0 and not problems:
        raise UserError(f"Elixir could not check the files: {err.strip()[-500:]}",
                        fix="check that `elixir --version` works.")
    return problems


def _error_text(stderr: str) -> str:
    """The `** (Error) message` (all its lines, up to the stack trace), else the output's tail."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    first = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("**")), None)
    if first is None:
        return " ".join(ln.strip() for ln in lines[-4:])[:900]
    message: list[str] = []
    for ln in lines[first:]:
        if message and _STACK_FRAME.match(ln):
            break
        message.append(ln.strip())
    return " ".join(message)[:900]


_STACK_FRAME = re.compile(r"^\s+(\(\w+ [\d.]+\) |\S+\.exs?:\d+: )")


def read_config(path: Path, env: str = "prod", environ: Mapping[str, str | None] | None = None) -> dict[str, object]:
    """Evaluate a config file with Config.Reader and return it as JSON-able data (tuples → lists).

    Binaries that are not UTF-8 come back as "base64:<...>". `environ` adds OS environment variables
    for the evaluation (runtime.exs reads its secrets from there; None removes one); values never reach argv.
    """
    if not available():
        raise UserError("Elixir is not installed, so config files cannot be evaluated.",
                        fix="install it (Debian: apt-get install elixir).")
    script = r"""
[file, env] = System.argv()
defmodule J do
  def enc(v) when is_list(v) do
    if v != [] and Keyword.keyword?(v), do: {:obj, Enum.map(v, fn {k, x} -> {to_string(k), enc(x)} end)},
    else: {:arr, Enum.map(v, &enc/1)}
  end
  def enc(v) when is_tuple(v), do: {:arr, v |> Tuple.to_list() |> Enum.map(&enc/1)}
  def enc(v) when is_map(v), do: {:obj, Enum.map(v, fn {k, x} -> {inspect(k), enc(x)} end)}
  def enc(v) when is_atom(v), do: {:str, inspect(v)}
  def enc(v) when is_binary(v) do
    if String.valid?(v) and String.printable?(v), do: {:str, v}, else: {:str, "base64:" <> Base.encode64(v)}
  end
  def enc(v), do: {:raw, inspect(v)}
  def out({:obj, kvs}), do: "{" <> Enum.map_join(kvs, ",", fn {k, v} -> out({:str, k}) <> ":" <> out(v) end) <> "}"
  def out({:arr, xs}), do: "[" <> Enum.map_join(xs, ",", &out/1) <> "]"
  def out({:str, s}) do
    escaped = s |> String.replace("\\", "\\\\") |> String.replace("\"", "\\\"")
    "\"" <> Regex.replace(~r/[\x00-\x1f]/, escaped, fn c -> "\\u00" <> Base.encode16(c) end) <> "\""
  end
  def out({:raw, s}), do: s
end
cfg = Config.Reader.read!(file, env: String.to_atom(env), target: :host)
IO.puts(J.out({:obj, Enum.map(cfg, fn {app, kw} -> {inspect(app), J.enc(kw)} end)}))
"""
    code, out, err = _run_elixir(script, [str(path.resolve()), env], cwd=path.resolve().parent.parent,
                                 environ=environ, timeout=120)
    if code != 0:
        raise UserError(f"{path} does not evaluate with Config.Reader: {_error_text(err)}",
                        fix="fix the Elixir error it names, then run again.")
    data: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return data
