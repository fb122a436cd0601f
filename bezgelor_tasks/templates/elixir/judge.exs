# The Elixir judge of bezgelor-tasks: one Elixir process answers every question a run of `inv init` or
# `inv verify` has about Elixir source (syntax, what a file reads from the environment, what a config file
# evaluates to for an env, what mix.lock pins, whether a version meets a requirement, what a release
# script's `eval` calls) and, in judge_source.exs, the answers with positions (mix.exs's project/0, a
# router's routes, a file's modules, a config file's calls) that Python splices at.
#
# Protocol (stdin/stdout, one line each way): the request is `ID<TAB>OP<TAB>ARG...` with every ARG
# base64-encoded; the answer is `ID<TAB>JSON`, sent when it is ready (answers may come back in another order
# than the questions). The loop ends when stdin closes. Config files are
# evaluated the way Mix evaluates them (Mix started, Mix.env set), so the stock Phoenix 1.8 config.exs
# that calls Mix.Project.build_path() works. Works on Elixir 1.14 and later (no JSON module needed).
# The modules are compiled once per Elixir version into a cache folder and loaded from there on later
# runs (see bezgelor_tasks/elixir.py), so a run pays for an Elixir start, not for compiling this file.

defmodule BezgelorJudge.JSON do
  @moduledoc false
  # Built as iodata and joined once (an answer is a few kilobytes of nested lists and maps).
  def encode(v), do: IO.iodata_to_binary(data(v))

  defp data(nil), do: "null"
  defp data(true), do: "true"
  defp data(false), do: "false"
  defp data(v) when is_integer(v) or is_float(v), do: to_string(v)
  defp data(v) when is_atom(v), do: str(inspect(v))
  defp data(v) when is_binary(v) do
    if String.valid?(v) and String.printable?(v), do: str(v), else: str("base64:" <> Base.encode64(v))
  end
  defp data({:json_object, pairs}), do: obj(pairs)
  defp data({:config_value, v}), do: value(v)
  defp data(v) when is_map(v), do: obj(Enum.map(v, fn {k, x} -> {key(k), x} end))
  defp data(v) when is_tuple(v), do: data(Tuple.to_list(v))
  defp data(v) when is_list(v) do
    if v != [] and Keyword.keyword?(v) do
      obj(Enum.map(v, fn {k, x} -> {to_string(k), x} end))
    else
      ["[", Enum.map_intersperse(v, ",", &data/1), "]"]
    end
  end
  defp data(v), do: str(inspect(v))

  # Config values: every atom (true, false and nil included) as its inspect text, so `:inet6` and `true`
  # read back the same way in Python; keyword lists as objects, tuples as arrays.
  defp value(v) when is_atom(v), do: str(inspect(v))
  defp value(v) when is_map(v), do: obj(Enum.map(v, fn {k, x} -> {key(k), {:config_value, x}} end))
  defp value(v) when is_tuple(v), do: value(Tuple.to_list(v))
  defp value(v) when is_list(v) do
    if v != [] and Keyword.keyword?(v) do
      obj(Enum.map(v, fn {k, x} -> {to_string(k), {:config_value, x}} end))
    else
      ["[", Enum.map_intersperse(v, ",", &value/1), "]"]
    end
  end
  defp value(v), do: data(v)

  defp key(k) when is_binary(k), do: k
  defp key(k), do: inspect(k)
  defp obj(pairs), do: ["{", Enum.map_intersperse(pairs, ",", fn {k, x} -> [str(k), ":", data(x)] end), "}"]

  @escaped Enum.map(0..31, &<<&1>>) ++ ["\\", "\""]
  defp str(s) do
    case :binary.match(s, @escaped) do
      :nomatch -> ["\"", s, "\""]
      _ -> ["\"", for(<<c <- s>>, into: "", do: escape(c)), "\""]
    end
  end

  defp escape(?\\), do: "\\\\"
  defp escape(?"), do: "\\\""
  defp escape(c) when c < 0x20, do: "\\u00" <> Base.encode16(<<c>>)
  defp escape(c), do: <<c>>
end

defmodule BezgelorJudge do
  @moduledoc false
  alias BezgelorJudge.JSON

  # Questions are answered side by side, each in a process of its own (the VM uses every core), except those
  # that evaluate a config file: they change the VM's environment and working directory, so one process answers
  # them in turn. Each answer carries its question's id: they come back in the order they are ready. When stdin
  # closes, the questions still being answered are finished first.
  @serial ["config"]

  def main do
    spawn(&warm/0)
    serial = spawn_link(fn -> serial_loop() end)
    read_loop(serial, 0)
  end

  # While the first question is on its way (the caller is still loading), load what the questions run on: the
  # parser, the evaluator, Version, Mix and Config.Reader (each kind of work once, on a tiny input). Nothing is
  # loaded that a verify or an init would not load anyway; a question that needs a module being loaded waits
  # for it rather than loading it twice.
  defp warm do
    Code.string_to_quoted_with_comments("x = [a: 1]", columns: true, token_metadata: true)
    Code.eval_string("%{a: [b: 1]}")
    Version.match?("1.0.0", ">= 0.0.0")
    Mix.start()
    Code.ensure_loaded(Config.Reader)
  end

  defp read_loop(serial, asked) do
    case IO.read(:stdio, :line) do
      line when is_binary(line) ->
        [id, op | args] = line |> String.trim_trailing("\n") |> String.split("\t")
        me = self()
        work = fn ->
          try do
            reply(id, op, args)
          after
            send(me, :answered)
          end
        end
        if op in @serial, do: send(serial, {:run, work}), else: spawn(work)
        read_loop(serial, asked + 1)
      _eof_or_error ->
        for _ <- 1..asked//1, do: receive(do: (:answered -> :ok))
        :ok
    end
  end

  defp serial_loop do
    receive do
      {:run, work} ->
        work.()
        serial_loop()
    end
  end

  defp reply(id, op, args) do
    answer =
      try do
        answer(op, Enum.map(args, &Base.decode64!/1))
      rescue
        e -> %{"ok" => false, "error" => Exception.message(e), "internal" => true}
      catch
        kind, reason -> %{"ok" => false, "error" => Exception.format_banner(kind, reason), "internal" => true}
      end
    IO.write(id <> "\t" <> JSON.encode(answer) <> "\n")
  end

  # -- syntax ----------------------------------------------------------------------------------------
  def answer("parse", [file]), do: parse(file, File.read!(file))
  def answer("parse", [file, content]), do: parse(file, content)

  # -- what a file reads from the environment -----------------------------------------------------------
  def answer("env_reads", [file | content]) do
    with {:ok, ast} <- quoted(file, content) do
      {_, acc} =
        Macro.prewalk(ast, [], fn
          {:||, _, [{{:., _, [{:__aliases__, _, [:System]}, :get_env]}, meta, [var]}, {:raise, _, _}]} = node, acc
          when is_binary(var) ->
            {node, [[var, meta[:line], "get_env_or_raise", nil] | acc]}
          {:||, _, [{{:., _, [{:__aliases__, _, [:System]}, :get_env]}, meta, [var]}, default]} = node, acc
          when is_binary(var) ->
            {node, [[var, meta[:line], "get_env", literal_default(default)] | acc]}
          {{:., _, [{:__aliases__, _, [:System]}, fun]}, meta, [var | rest]} = node, acc
          when fun in [:get_env, :fetch_env, :fetch_env!] and is_binary(var) ->
            default = if rest != [], do: literal_default(hd(rest))
            {node, [[var, meta[:line], to_string(fun), default] | acc]}
          node, acc ->
            {node, acc}
        end)
      # a read inside `||` is seen twice (as the `||` and as the call): keep the one with the default
      reads = acc |> Enum.reverse() |> Enum.uniq_by(fn [var, line, _, _] -> {var, line} end)
      %{"ok" => true, "reads" => reads}
    end
  end

  # -- config values computed from the environment: `config :app, [Key,] kw: <expr reading VAR>` -------------
  # (what config.exs reads when the release is built, not when the machine boots)
  def answer("env_config", [file | content]) do
    with {:ok, ast} <- quoted(file, content) do
      found =
        for call <- ast |> config_nodes() |> Enum.reverse(),
            {:config, meta, [app | rest]} = call,
            {key, opts} = split_config(rest),
            is_list(opts),
            {kw, value} <- opts,
            is_atom(kw),
            vars = env_vars(value),
            vars != [] do
          %{"line" => meta[:line], "app" => to_string(app), "key" => key, "kw" => to_string(kw),
            "vars" => vars, "expr" => Macro.to_string(value)}
        end
      %{"ok" => true, "values" => found}
    end
  end

  # -- evaluation, as Mix does it ---------------------------------------------------------------------------
  def answer("config", [file, env, environ, cwd]) do
    Mix.start()
    Mix.env(String.to_atom(env))
    saved = System.get_env()
    previous_cwd = File.cwd!()
    try do
      apply_environ(environ)
      File.cd!(cwd)
      cfg = Config.Reader.read!(file, env: String.to_atom(env), target: :host)
      %{"ok" => true, "config" => {:json_object, Enum.map(cfg, fn {app, kw} -> {inspect(app), {:config_value, kw}} end)}}
    rescue
      e -> evaluation_error(e, __STACKTRACE__, cwd)
    catch
      kind, reason -> %{"ok" => false, "error" => Exception.format_banner(kind, reason), "needs_deps" => false}
    after
      File.cd!(previous_cwd)
      restore_environ(saved)
    end
  end

  # -- mix.lock: package -> version (hex) or ref (git) --------------------------------------------------------
  # read as Mix reads it (Mix.Dep.Lock): its quoted keys are not warned about, one warning per package
  def answer("mix_lock", [file]) do
    opts = [file: file, warn_on_unnecessary_quotes: false]
    {:ok, quoted} = Code.string_to_quoted(File.read!(file), opts)
    {lock, _} = Code.eval_quoted(quoted, [], opts)
    versions =
      for {name, entry} <- lock, is_tuple(entry), into: %{} do
        case Tuple.to_list(entry) do
          [:hex, _pkg, version | _] -> {to_string(name), version}
          [:git, _url, ref | _] -> {to_string(name), "git:" <> to_string(ref)}
          [scm | _] -> {to_string(name), to_string(scm)}
        end
      end
    %{"ok" => true, "versions" => versions}
  end

  # -- answers with positions (judge_source.exs): mix.exs's project, a router's routes, the modules of a
  # file, a config file's calls; `content` (a one-element list) stands in for the file's text
  def answer("project", [file | content]), do: with_source(file, content, &BezgelorJudge.Project.answer/1)
  def answer("routes", [file | content]), do: with_source(file, content, &BezgelorJudge.Router.answer/1)
  def answer("modules", [file | content]), do: with_source(file, content, &BezgelorJudge.Modules.answer/1)
  def answer("config_source", [file | content]), do: with_source(file, content, &BezgelorJudge.ConfigSource.answer/1)

  # -- `Mod.fun(args)` as a call (what a release script's `eval` runs) -------------------------------------
  def answer("remote_call", [expr]) do
    case Code.string_to_quoted(expr) do
      {:ok, {{:., _, [{:__aliases__, _, parts}, fun]}, _, args}} when is_atom(fun) and is_list(args) ->
        module = Enum.map_join(parts, ".", &to_string/1)
        %{"ok" => true, "module" => module, "function" => to_string(fun), "arity" => length(args),
          "path" => Macro.underscore(module)}
      {:ok, _} -> %{"ok" => false, "error" => "not a call of a module's function"}
      {:error, _} -> %{"ok" => false, "error" => "does not parse as Elixir"}
    end
  end

  def answer("version_match", [version, requirement]) do
    case {Version.parse(version), Version.parse_requirement(requirement)} do
      {{:ok, v}, {:ok, r}} -> %{"ok" => true, "match" => Version.match?(v, r, allow_pre: true)}
      _ -> %{"ok" => false, "match" => false, "error" => "not a version/requirement: #{version} / #{requirement}"}
    end
  end

  def answer(op, _args), do: %{"ok" => false, "error" => "unknown question #{op}", "internal" => true}

  # ---------------------------------------------------------------------------------------------------------
  defp parse(file, content) do
    case Code.string_to_quoted(content, file: file) do
      {:ok, _} -> %{"ok" => true}
      {:error, {meta, msg, token}} ->
        line = if is_list(meta), do: Keyword.get(meta, :line, 0), else: meta
        %{"ok" => false, "line" => line, "message" => syntax_message(msg, token)}
    end
  end

  defp syntax_message(msg, token) do
    token = if is_binary(token), do: token, else: inspect(token)
    text =
      case msg do
        {pre, post} when is_binary(pre) and is_binary(post) -> pre <> token <> post
        m when is_binary(m) -> m <> token
        m -> inspect(m) <> token
      end
    String.replace(text, "\n", " ")
  end

  # The file's AST; `content` (a one-element list) stands in for the file's text when given.
  defp quoted(file, content) do
    text = if content == [], do: File.read!(file), else: hd(content)
    case Code.string_to_quoted(text, file: file, columns: false) do
      {:ok, ast} -> {:ok, ast}
      {:error, {meta, msg, token}} -> syntax_error(meta, msg, token)
    end
  end

  defp literal_default(v) when is_binary(v) or is_integer(v), do: v
  defp literal_default(_), do: nil

  defp with_source(file, content, fun) do
    case BezgelorJudge.Source.read(file, content) do
      {:ok, src} -> fun.(src)
      error -> error
    end
  end

  def syntax_error(meta, msg, token) do
    line = if is_list(meta), do: Keyword.get(meta, :line, 0), else: meta
    %{"ok" => false, "line" => line, "message" => syntax_message(msg, token), "syntax" => true}
  end

  defp config_nodes(ast) do
    {_, acc} =
      Macro.prewalk(ast, [], fn
        {:config, _, [app | rest]} = node, acc when is_atom(app) and rest != [] -> {node, [node | acc]}
        node, acc -> {node, acc}
      end)
    acc
  end

  defp split_config([opts]), do: {nil, opts}
  defp split_config([key, opts | _]), do: {key_name(key), opts}

  defp env_vars(ast) do
    {_, vars} =
      Macro.prewalk(ast, [], fn
        {{:., _, [{:__aliases__, _, [:System]}, fun]}, _, [var | _]} = node, acc
        when fun in [:get_env, :fetch_env, :fetch_env!] and is_binary(var) -> {node, [var | acc]}
        node, acc -> {node, acc}
      end)
    Enum.reverse(vars)
  end

  defp key_name({:__aliases__, _, parts}), do: Enum.map_join(parts, ".", &to_string/1)
  defp key_name(atom) when is_atom(atom), do: inspect(atom)
  defp key_name(other), do: Macro.to_string(other)

  defp apply_environ(environ) do
    for line <- String.split(environ, "\n", trim: true) do
      case String.split(line, "=", parts: 2) do
        ["-" <> name] -> System.delete_env(name)
        [name, value] -> System.put_env(name, value)
        _ -> :ok
      end
    end
  end

  defp restore_environ(saved) do
    for {name, _} <- System.get_env(), not Map.has_key?(saved, name), do: System.delete_env(name)
    System.put_env(saved)
  end

  # Where the error is (the first frame in a file of the checkout), and whether it is only that a
  # dependency's module is not compiled here (which says nothing about the config itself).
  defp evaluation_error(e, stacktrace, cwd) do
    {file, line} = error_location(e, stacktrace, cwd)
    missing =
      case e do
        %UndefinedFunctionError{module: mod} when is_atom(mod) and not is_nil(mod) ->
          if Code.ensure_loaded?(mod), do: nil, else: inspect(mod)
        _ -> nil
      end
    %{"ok" => false, "error" => "** (#{inspect(e.__struct__)}) " <> Exception.message(e),
      "file" => file, "line" => line, "needs_deps" => missing != nil, "module" => missing}
  end

  defp error_location(%{file: file, line: line}, _stacktrace, _cwd) when is_binary(file) and is_integer(line),
    do: {file, line}
  defp error_location(_e, stacktrace, cwd) do
    frame =
      Enum.find_value(stacktrace, fn
        {_, _, _, info} ->
          file = info[:file] && to_string(info[:file])
          if file && String.ends_with?(file, ".exs") && String.starts_with?(Path.expand(file, cwd), cwd),
            do: {Path.expand(file, cwd), info[:line]}
        _ -> nil
      end)
    frame || {nil, nil}
  end
end
