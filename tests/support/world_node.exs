# A game world for the tests: a real BEAM node on loopback that plays Bezgelor's world server.
#
#   ERL_EPMD_PORT=N elixir --name world-x@127.0.0.1 --cookie C world_node.exs [--no-portal] [--http P]
#                                                                            [--crash] PORT...
#
# It listens on each PORT (127.0.0.1) and, like Bezgelor's BezgelorProtocol.Connection, greets every
# connection at once with a ServerHello frame: <<size::little-32, 0x0003::little-16, payload>>, size =
# 6 + payload length. A client that then sends one line (its character name) is a player and is
# counted; a probe that reads the hello and hangs up is not. Each broadcast reaches every player as one
# frame: a 4-byte big-endian length, then the message's UTF-8 bytes (so a message with line breaks
# arrives whole); the first such frame a player gets is "WELCOME <id>" (it is counted from then on).
# --http P serves the portal's GET /health on P from this node (a frozen node answers nothing).
# --crash dies at boot, before listening (a release that crashes on every start).
# BezgelorWorld.Portal has the functions deploys use, with Bezgelor's signatures and behaviour
# (apps/bezgelor_world/lib/bezgelor_world/portal.ex): online_player_count/0, list_online_players/0,
# broadcast_system_message/1 (:ok), set_maintenance_mode/1 (:ok; turning it on broadcasts
# "Server entering maintenance mode. Please log out."), get_maintenance_mode/0.
# --no-portal leaves the module out (an older Bezgelor). The node halts when its stdin closes.
# Every broadcast is also printed on stdout as `BROADCAST <inspect(message)>`.

defmodule FakeWorld do
  use GenServer

  def start_link(ports), do: GenServer.start_link(__MODULE__, ports, name: __MODULE__)

  def count, do: GenServer.call(__MODULE__, :count)
  def players, do: GenServer.call(__MODULE__, :players)
  def broadcast(message), do: GenServer.call(__MODULE__, {:broadcast, message})
  def disconnect_all, do: GenServer.call(__MODULE__, :disconnect_all)

  @hello_payload :binary.copy(<<0>>, 38)

  @impl true
  def init(ports) do
    for port <- ports do
      {:ok, listener} =
        :gen_tcp.listen(port, [:binary, packet: :raw, active: false, reuseaddr: true, ip: {127, 0, 0, 1}])

      spawn_link(fn -> accept(listener) end)
    end

    {:ok, %{clients: %{}, next: 1}}
  end

  defp accept(listener) do
    {:ok, sock} = :gen_tcp.accept(listener)
    pid = spawn(fn -> receive do: (:go -> client(sock)) end)
    :ok = :gen_tcp.controlling_process(sock, pid)
    send(pid, :go)
    accept(listener)
  end

  defp client(sock) do
    :ok = :gen_tcp.send(sock, <<6 + byte_size(@hello_payload)::little-32, 0x0003::little-16, @hello_payload::binary>>)
    :ok = :inet.setopts(sock, packet: :line)

    case :gen_tcp.recv(sock, 0) do
      {:ok, line} ->
        id = GenServer.call(__MODULE__, {:join, self()})
        GenServer.cast(__MODULE__, {:name, id, String.trim(line)})
        frame(sock, "WELCOME #{id}")
        :ok = :inet.setopts(sock, active: true)
        loop(sock, id)

      {:error, _} ->
        :gen_tcp.close(sock)
    end
  end

  defp frame(sock, message), do: :gen_tcp.send(sock, <<byte_size(message)::32, message::binary>>)

  defp loop(sock, id) do
    receive do
      {:tcp, ^sock, line} ->
        GenServer.cast(__MODULE__, {:name, id, String.trim(line)})
        loop(sock, id)

      {:tcp_closed, ^sock} ->
        GenServer.call(__MODULE__, {:leave, id})

      {:system_message, message} ->
        frame(sock, message)
        loop(sock, id)

      :disconnect ->
        :gen_tcp.close(sock)
        GenServer.call(__MODULE__, {:leave, id})
    end
  end

  @impl true
  def handle_call({:join, pid}, _from, state) do
    id = state.next
    player = %{account_id: id, character_id: id, character_name: "Unknown", zone_id: 1, instance_id: 1,
               entity_guid: id, connection_pid: pid}
    {:reply, id, %{state | clients: Map.put(state.clients, id, player), next: id + 1}}
  end

  def handle_call({:leave, id}, _from, state), do: {:reply, :ok, %{state | clients: Map.delete(state.clients, id)}}
  def handle_call(:count, _from, state), do: {:reply, map_size(state.clients), state}
  def handle_call(:players, _from, state), do: {:reply, state.clients |> Map.values() |> Enum.sort_by(& &1.account_id), state}

  def handle_call({:broadcast, message}, _from, state) do
    IO.puts("BROADCAST " <> inspect(message))
    Enum.each(state.clients, fn {_id, player} -> send(player.connection_pid, {:system_message, message}) end)
    {:reply, :ok, state}
  end

  def handle_call(:disconnect_all, _from, state) do
    Enum.each(state.clients, fn {_id, player} -> send(player.connection_pid, :disconnect) end)
    {:reply, map_size(state.clients), state}
  end

  @impl true
  def handle_cast({:name, id, name}, state) do
    clients = Map.update!(state.clients, id, &%{&1 | character_name: name})
    {:noreply, %{state | clients: clients}}
  end
end

defmodule FakePortalHttp do
  @moduledoc "The portal's /health, answered by this node (so it stops answering when the node is frozen)."

  def start(port) do
    {:ok, listener} =
      :gen_tcp.listen(port, [:binary, packet: :raw, active: false, reuseaddr: true, ip: {127, 0, 0, 1}])

    spawn(fn -> accept(listener) end)
  end

  defp accept(listener) do
    {:ok, sock} = :gen_tcp.accept(listener)
    pid = spawn(fn -> receive do: (:go -> answer(sock, "")) end)
    :ok = :gen_tcp.controlling_process(sock, pid)
    send(pid, :go)
    accept(listener)
  end

  defp answer(sock, got) do
    if String.contains?(got, "\r\n\r\n") do
      path = got |> String.split(" ", parts: 3) |> Enum.at(1, "")
      {code, body} =
        if path in ["/health", "/api/health", "/livez"] do
          {"200 OK", ~s({"status":"healthy","services":{"database":"ok","auth":"ok","realm":"ok","world":"ok"},) <>
                      ~s("version":"test"})}
        else
          {"404 Not Found", ~s({"status":"not found"})}
        end

      :gen_tcp.send(sock, "HTTP/1.0 #{code}\r\nContent-Type: application/json\r\nContent-Length: " <>
                          "#{byte_size(body)}\r\n\r\n#{body}")
      :gen_tcp.close(sock)
    else
      case :gen_tcp.recv(sock, 0, 10_000) do
        {:ok, more} -> answer(sock, got <> more)
        {:error, _} -> :gen_tcp.close(sock)
      end
    end
  end
end

{switches, ports} =
  OptionParser.parse!(System.argv(), strict: [no_portal: :boolean, http: :integer, crash: :boolean])

if switches[:crash] do
  IO.puts("WORLD CRASHED at boot")
  System.halt(1)
end

unless switches[:no_portal] do
  defmodule BezgelorWorld.Portal do
    @moduledoc "Bezgelor's Portal functions that deploys use, with its signatures."

    @spec list_online_players() :: [map()]
    def list_online_players, do: FakeWorld.players()

    @spec online_player_count() :: non_neg_integer()
    def online_player_count, do: FakeWorld.count()

    @spec broadcast_system_message(String.t()) :: :ok
    def broadcast_system_message(message), do: FakeWorld.broadcast(message)

    @spec set_maintenance_mode(boolean()) :: :ok
    def set_maintenance_mode(enabled) do
      Application.put_env(:bezgelor_world, :maintenance_mode, enabled)

      if enabled do
        broadcast_system_message("Server entering maintenance mode. Please log out.")
      end

      :ok
    end

    @spec get_maintenance_mode() :: boolean()
    def get_maintenance_mode, do: Application.get_env(:bezgelor_world, :maintenance_mode, false)
  end
end

{:ok, _} = FakeWorld.start_link(Enum.map(ports, &String.to_integer/1))
if switches[:http], do: FakePortalHttp.start(switches[:http])
IO.puts("WORLD READY #{node()}")

# The test holds our stdin: when it goes away (even killed), so does this node.
IO.read(:stdio, :line)
System.halt(0)
