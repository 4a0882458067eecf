%% The proc benchmarks' Erlang peer: the same four measurements as Benchmarks/procs/*.ssa.
%% erl -noshell -s procs_bench main SPAWN RING_PROCS RING_ROUNDS PINGPONG -s init stop
-module(procs_bench).
-export([main/1, waiter/0, member/1, echo/0]).

main([Spawn, RingProcs, RingRounds, PingPong]) ->
    spawn_bench(list_to_integer(atom_to_list(Spawn))),
    ring_bench(list_to_integer(atom_to_list(RingProcs)), list_to_integer(atom_to_list(RingRounds))),
    pingpong_bench(list_to_integer(atom_to_list(PingPong))).

now_ns() -> erlang:monotonic_time(nanosecond).

waiter() -> receive _ -> ok end.

spawn_bench(N) ->
    erlang:garbage_collect(),
    Before = erlang:memory(total),
    T0 = now_ns(),
    Pids = [spawn(?MODULE, waiter, []) || _ <- lists:seq(1, N)],
    T1 = now_ns(),
    After = erlang:memory(total),
    io:format("spawn: ~b waiting procs, ~.1f ns per spawn, ~.1f bytes per proc~n",
              [N, (T1 - T0) / N, (After - Before) / N]),
    [exit(P, kill) || P <- Pids],
    ok.

member(Next) -> receive M -> Next ! M, member(Next) end.

ring_bench(N, Rounds) ->
    Self = self(),
    First = lists:foldl(fun(_, Next) -> spawn(?MODULE, member, [Next]) end, Self, lists:seq(1, N)),
    T0 = now_ns(),
    ring_rounds(First, Rounds),
    T1 = now_ns(),
    io:format("ring: ~b procs, ~b rounds, ~.1f ns per hop~n", [N, Rounds, (T1 - T0) / (N * Rounds)]).

ring_rounds(_, 0) -> ok;
ring_rounds(First, K) -> First ! token, receive token -> ring_rounds(First, K - 1) end.

echo() -> receive {From, M} -> From ! M, echo() end.

pingpong_bench(N) ->
    P = spawn(?MODULE, echo, []),
    T0 = now_ns(),
    pingpong(P, N),
    T1 = now_ns(),
    io:format("ping-pong: ~b round trips, ~.1f ns per round trip~n", [N, (T1 - T0) / N]).

pingpong(_, 0) -> ok;
pingpong(P, K) -> P ! {self(), ping}, receive ping -> pingpong(P, K - 1) end.
