# The Elixir judge's answers that carry positions (see judge.exs for the protocol). Each answer names the
# nodes Python needs with their offsets in the text Python sent (in characters, counted as Python counts
# them), so Python only splices text where Elixir said: it never reads Elixir itself.
#
# A node is described as %{"start", "end", "line", "value", "list"}: where it starts (the smallest position
# in it: an operator's own position is after its left operand), where it ends when Elixir knows (a closing
# bracket, parenthesis or `end`), its literal value (atoms as ":name", keyword lists as objects) or
# %{"__expr__" => source} when it is not a literal, and for a list literal %{"open", "close", "items"}
# where each item is %{"key" (nil for a plain element), "start", "line", "value" => node}.

defmodule BezgelorJudge.Source do
  @moduledoc false
  defstruct [:ast, :comments, :starts]

  def read(file, [text]), do: read_text(file, text)
  def read(file, []), do: read_text(file, File.read!(file))

  defp read_text(file, text) do
    opts = [file: file, columns: true, token_metadata: true, literal_encoder: &{:ok, {:__block__, &2, [&1]}}]
    case Code.string_to_quoted_with_comments(text, opts) do
      {:ok, ast, comments} -> {:ok, %__MODULE__{ast: ast, comments: comments, starts: line_starts(text)}}
      {:error, {meta, msg, token}} -> BezgelorJudge.syntax_error(meta, msg, token)
    end
  end

  defp line_starts(text) do
    {starts, _} =
      text |> String.split("\n") |> Enum.map_reduce(0, fn line, at -> {at, at + length(String.to_charlist(line)) + 1} end)
    List.to_tuple(starts)
  end

  def at(src, meta) do
    case {meta[:line], meta[:column]} do
      {l, c} when is_integer(l) and is_integer(c) -> elem(src.starts, l - 1) + c - 1
      _ -> nil
    end
  end

  def start(src, node) do
    {_, first} =
      Macro.prewalk(node, nil, fn
        {_, meta, _} = n, acc when is_list(meta) -> {n, earliest(acc, meta)}
        n, acc -> {n, acc}
      end)
    first && at(src, line: elem(first, 0), column: elem(first, 1))
  end

  defp earliest(acc, meta) do
    case {meta[:line], meta[:column]} do
      {l, c} when is_integer(l) and is_integer(c) -> if acc == nil or {l, c} < acc, do: {l, c}, else: acc
      _ -> acc
    end
  end

  def stop(src, {form, meta, _}) when is_list(meta) do
    cond do
      meta[:end] -> at(src, meta[:end]) + 3
      meta[:closing] -> at(src, meta[:closing]) + if(form == :<<>>, do: 2, else: 1)
      true -> nil
    end
  end
  def stop(_src, _node), do: nil

  def comments(src) do
    for c <- src.comments do
      from = at(src, line: c.line, column: c.column)
      %{"line" => c.line, "start" => from, "end" => from + length(String.to_charlist(c.text)), "text" => c.text}
    end
  end

  # -- literals ---------------------------------------------------------------------------------------
  def literal({:__block__, _, [v]}) when is_atom(v) or is_number(v) or is_binary(v), do: {:ok, v}
  def literal({:__block__, _, [l]}) when is_list(l), do: literal_list(l, [])
  def literal({:__block__, _, [{a, b}]}), do: literal_list([a, b], []) |> tuple_of()
  def literal({:{}, _, items}), do: literal_list(items, []) |> tuple_of()
  def literal({:-, _, [{:__block__, _, [n]}]}) when is_number(n), do: {:ok, -n}
  def literal({k, v}) do
    with {:ok, key} <- literal(k), {:ok, value} <- literal(v), do: {:ok, {key, value}}
  end
  def literal(_), do: :error

  defp literal_list([], acc), do: {:ok, Enum.reverse(acc)}
  defp literal_list([x | rest], acc) do
    case literal(x) do
      {:ok, v} -> literal_list(rest, [v | acc])
      :error -> :error
    end
  end

  defp tuple_of({:ok, items}), do: {:ok, List.to_tuple(items)}
  defp tuple_of(:error), do: :error

  def value(node) do
    case literal(node) do
      {:ok, v} -> {:config_value, v}
      :error -> %{"__expr__" => node |> plain() |> Macro.to_string()}
    end
  end

  # The AST without the literal wrappers (for Macro.to_string and for matching on plain forms).
  def plain(node) do
    Macro.prewalk(node, fn
      {:__block__, meta, [v]} when meta != [] and (is_atom(v) or is_number(v) or is_binary(v) or is_list(v)) -> v
      {:__block__, meta, [{a, b}]} when meta != [] -> {a, b}
      other -> other
    end)
  end

  # -- nodes --------------------------------------------------------------------------------------------
  def node(src, n) do
    base = %{"start" => start(src, n), "end" => stop(src, n), "line" => line(n), "value" => value(n)}
    case n do
      {:__block__, meta, [items]} when is_list(items) ->
        Map.put(base, "list", %{"open" => at(src, meta), "close" => at(src, meta[:closing]), "items" => items(src, items)})
      _ -> base
    end
  end

  def items(src, items) do
    for item <- items do
      case item do
        {{:__block__, kmeta, [key]}, v} when is_atom(key) ->
          %{"key" => Atom.to_string(key), "start" => at(src, kmeta), "line" => kmeta[:line], "value" => node(src, v)}
        other ->
          %{"key" => nil, "start" => start(src, other), "line" => line(other), "value" => node(src, other)}
      end
    end
  end

  def line({_, meta, _}) when is_list(meta), do: meta[:line]
  def line({a, _}), do: line(a)
  def line(_), do: nil

  def key_name({:__aliases__, _, parts}), do: Enum.map_join(parts, ".", &to_string/1)
  def key_name(other) do
    case literal(other) do
      {:ok, atom} when is_atom(atom) -> inspect(atom)
      _ -> other |> plain() |> Macro.to_string()
    end
  end

  def statements({:__block__, [], exprs}), do: exprs
  def statements(expr), do: [expr]

  def do_body([{{:__block__, _, [:do]}, body} | _]), do: body
  def do_body(_), do: nil
end

defmodule BezgelorJudge.Project do
  @moduledoc false
  alias BezgelorJudge.Source, as: S

  # mix.exs: project/0's keyword list (each key with its node), the releases and aliases it points at
  # (inline, or through a zero-arity local function), the module's zero-arity functions and its end.
  def answer(src) do
    case first_module(src.ast) do
      nil -> %{"ok" => true, "project" => nil, "comments" => S.comments(src)}
      {meta, body} ->
        funs = zero_arity(src, S.statements(body))
        base = %{"ok" => true, "module_end" => S.at(src, meta[:end]), "comments" => S.comments(src),
                 "functions" => Map.new(funs, fn {name, f} -> {name, Map.delete(f, :body)} end)}
        Map.merge(base, project(src, funs))
    end
  end

  defp project(src, funs) do
    case funs["project"] do
      nil -> %{"project" => nil}
      %{:body => body, "line" => line} ->
        pairs = case body do
          {:__block__, _, [l]} when is_list(l) -> l
          _ -> nil
        end
        %{"project" => Map.put(S.node(src, body), "def_line", line),
          "releases" => pairs && resolve(src, pairs, :releases, funs),
          "aliases" => pairs && resolve(src, pairs, :aliases, funs)}
    end
  end

  # Where project/0's `key:` points: a list literal inline, or the list a zero-arity local function returns.
  defp resolve(src, pairs, key, funs) do
    case Enum.find(pairs, &match?({{:__block__, _, [^key]}, _}, &1)) do
      nil -> nil
      {_, {:__block__, _, [l]} = v} when is_list(l) -> %{"via" => "inline", "node" => S.node(src, v)}
      {{_, kmeta, _}, {name, _, args} = v} when is_atom(name) and args in [nil, []] ->
        case funs[Atom.to_string(name)] do
          %{body: body} -> %{"via" => "function", "function" => Atom.to_string(name), "node" => S.node(src, body)}
          nil -> %{"via" => "expr", "line" => kmeta[:line], "node" => S.node(src, v)}
        end
      {{_, kmeta, _}, v} -> %{"via" => "expr", "line" => kmeta[:line], "node" => S.node(src, v)}
    end
  end

  defp first_module({:defmodule, meta, [_alias, block]}), do: {meta, S.do_body(block)}
  defp first_module({:__block__, [], exprs}), do: Enum.find_value(exprs, &first_module/1)
  defp first_module(_), do: nil

  defp zero_arity(src, statements) do
    for {kind, meta, [{name, _, args}, block]} <- statements, kind in [:def, :defp], is_atom(name),
        args in [nil, []], body = S.do_body(block), body != nil, into: %{} do
      {Atom.to_string(name), %{:body => body, "line" => meta[:line], "start" => S.at(src, meta), "kind" => to_string(kind)}}
    end
  end
end

defmodule BezgelorJudge.Router do
  @moduledoc false
  alias BezgelorJudge.Source, as: S

  @verbs [:get, :post, :put, :patch, :delete, :options, :head, :match]
  @routing [:scope, :live, :forward, :resources, :live_session, :pipe_through | @verbs]

  # A Phoenix router's routes in definition order, as Phoenix sees them: the path joined with every
  # enclosing scope's, the controller with the scope's alias, the pipelines piped through before it.
  def answer(src) do
    case find_module(src.ast) do
      nil -> %{"ok" => true, "routes" => [], "module" => nil, "comments" => S.comments(src)}
      {name, meta, body} ->
        statements = S.statements(body)
        first = Enum.find(statements, fn
          {form, _, _} -> form in @routing
          _ -> false
        end)
        {routes, _pipes} = walk(statements, {"", nil, []}, [])
        %{"ok" => true, "module" => name, "routes" => Enum.reverse(routes), "comments" => S.comments(src),
          "module_end" => S.at(src, meta[:end]), "first_route" => first && S.start(src, first)}
    end
  end

  defp find_module({:defmodule, meta, [alias, block]}), do: {S.key_name(alias), meta, S.do_body(block)}
  defp find_module({:__block__, [], exprs}), do: Enum.find_value(exprs, &find_module/1)
  defp find_module(_), do: nil

  defp walk([], {_, _, pipes}, acc), do: {acc, pipes}
  defp walk([stmt | rest], {prefix, scope_alias, pipes} = ctx, acc) do
    case stmt do
      {:scope, _, args} when is_list(args) ->
        {path, mod, block} = scope_args(args)
        inner = {join(prefix, path), concat(scope_alias, mod), pipes}
        {inner_routes, _} = walk(S.statements(block || {:__block__, [], []}), inner, acc)
        walk(rest, ctx, inner_routes)
      {:pipe_through, _, [arg]} ->
        walk(rest, {prefix, scope_alias, pipes ++ atoms(arg)}, acc)
      {verb, meta, [path, controller, action | _]} when verb in @verbs ->
        route = route(verb, meta, path, controller, action, ctx)
        walk(rest, ctx, if(route, do: [route | acc], else: acc))
      _ -> walk(rest, ctx, acc)
    end
  end

  defp scope_args(args) do
    {block, args} = List.pop_at(args, -1)
    body = S.do_body(block)
    literal = fn n -> match?({:ok, s} when is_binary(s), S.literal(n)) end
    path = Enum.find_value(args, "", fn n -> if literal.(n), do: elem(S.literal(n), 1) end)
    mod = Enum.find_value(args, fn
      {:__aliases__, _, _} = a -> S.key_name(a)
      _ -> nil
    end)
    {path, mod, body}
  end

  defp route(verb, meta, path, controller, action, {prefix, scope_alias, pipes}) do
    with {:ok, p} when is_binary(p) <- S.literal(path) do
      name = case controller do
        {:__aliases__, _, _} -> concat(scope_alias, S.key_name(controller))
        other -> S.key_name(other)
      end
      act = case S.literal(action) do
        {:ok, a} when is_atom(a) -> Atom.to_string(a)
        _ -> nil
      end
      %{"verb" => Atom.to_string(verb), "path" => join(prefix, p), "controller" => name, "action" => act,
        "pipelines" => pipes, "line" => meta[:line]}
    else
      _ -> nil
    end
  end

  defp atoms(node) do
    case S.literal(node) do
      {:ok, a} when is_atom(a) -> [Atom.to_string(a)]
      {:ok, l} when is_list(l) -> for a <- l, is_atom(a), do: Atom.to_string(a)
      _ -> []
    end
  end

  defp join(prefix, path) do
    parts = String.split(prefix <> "/" <> path, "/", trim: true)
    "/" <> Enum.join(parts, "/")
  end

  defp concat(nil, mod), do: mod
  defp concat(scope, nil), do: scope
  defp concat(scope, mod), do: scope <> "." <> mod
end

defmodule BezgelorJudge.Modules do
  @moduledoc false
  alias BezgelorJudge.Source, as: S

  # The modules a file defines: name, line, public functions (name/arity) and literal module attributes.
  def answer(src) do
    {_, found} =
      Macro.prewalk(src.ast, [], fn
        {:defmodule, meta, [alias, block]} = n, acc -> {n, [describe(S.key_name(alias), meta, S.do_body(block)) | acc]}
        n, acc -> {n, acc}
      end)
    %{"ok" => true, "modules" => Enum.reverse(found)}
  end

  defp describe(name, meta, body) do
    statements = S.statements(body)
    functions =
      for {:def, _, [head | _]} <- statements, {fun, args} = head_of(head), is_atom(fun), uniq: true,
        do: "#{fun}/#{length(args || [])}"
    attributes =
      for {:@, ameta, [{attr, _, [v]}]} <- statements, is_atom(attr), {:ok, value} <- [S.literal(v)], into: %{},
        do: {Atom.to_string(attr), %{"value" => {:config_value, value}, "line" => ameta[:line]}}
    %{"name" => name, "line" => meta[:line], "functions" => functions, "attributes" => attributes}
  end

  defp head_of({:when, _, [head | _]}), do: head_of(head)
  defp head_of({fun, _, args}), do: {fun, args}
  defp head_of(_), do: {nil, nil}
end

defmodule BezgelorJudge.ConfigSource do
  @moduledoc false
  alias BezgelorJudge.Source, as: S

  # A config file's `config` calls with their keyword entries (and where they are), the lines of its
  # `if config_env() == :prod` blocks, and its comments.
  def answer(src) do
    {calls, prod} = walk(src, src.ast, false, {[], []})
    imports = Enum.any?(S.statements(src.ast), &match?({:import, _, [{:__aliases__, _, [:Config]} | _]}, &1))
    %{"ok" => true, "calls" => Enum.reverse(calls), "prod_lines" => Enum.reverse(prod), "comments" => S.comments(src),
      "imports_config" => imports}
  end

  defp walk(src, {:if, meta, [condition, branches]}, in_prod, acc) when is_list(branches) do
    prod = prod_condition?(condition)
    {calls, lines} = acc
    acc = {calls, if(prod, do: [meta[:line] | lines], else: lines)}
    Enum.reduce(branches, acc, fn
      {{:__block__, _, [:do]}, body}, a -> walk(src, body, in_prod or prod, a)
      {{:__block__, _, [:else]}, body}, a -> walk(src, body, in_prod, a)
      _, a -> a
    end)
  end
  defp walk(src, {:config, meta, [app | rest]} = n, in_prod, {calls, lines}) when rest != [] do
    case S.literal(app) do
      {:ok, name} when is_atom(name) -> {[call(src, n, meta, name, rest, in_prod) | calls], lines}
      _ -> {calls, lines}
    end
  end
  defp walk(src, {_, _, args}, in_prod, acc) when is_list(args), do: Enum.reduce(args, acc, &walk(src, &1, in_prod, &2))
  defp walk(src, {a, b}, in_prod, acc), do: walk(src, b, in_prod, walk(src, a, in_prod, acc))
  defp walk(src, list, in_prod, acc) when is_list(list), do: Enum.reduce(list, acc, &walk(src, &1, in_prod, &2))
  defp walk(_src, _other, _in_prod, acc), do: acc

  defp call(src, n, meta, app, rest, in_prod) do
    {key, opts} =
      case rest do
        [opts] -> {nil, opts}
        [key, opts | _] -> {S.key_name(key), opts}
      end
    entries =
      case opts do
        {:__block__, _, [l]} when is_list(l) -> S.items(src, l)
        l when is_list(l) -> S.items(src, l)
        _ -> []
      end
    %{"line" => meta[:line], "app" => Atom.to_string(app), "key" => key, "in_prod" => in_prod,
      "start" => S.start(src, n), "entries" => entries}
  end

  defp prod_condition?(condition) do
    text = condition |> S.plain() |> Macro.to_string()
    String.contains?(text, "config_env()") and String.contains?(text, ":prod")
  end
end
