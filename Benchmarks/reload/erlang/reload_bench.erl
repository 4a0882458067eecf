%% Erlang's code loading, measured as the peer for Kiln's hot reload.
%%
%% Replacing a loaded module in Erlang is two calls: purge the old-old version
%% (a module has at most a current and an old version; code:load_binary/3
%% refuses while old code exists), then load the new binary, which makes the
%% current version old and the new one current. Processes making fully
%% qualified calls (Mod:f()) reach the new version from their next call on.
%%
%% For each case the source of two versions is generated and compiled to
%% binaries once (compile:forms/2, not timed); then the versions alternate for
%% many iterations, each one timed with erlang:monotonic_time(nanosecond):
%%   purge  code:soft_purge/1 of the old version (retried, yielding, while a
%%          process still runs in it; the retries are counted and timed);
%%   load   code:load_binary/3 of the other version.
%% Medians and 99th percentiles are printed in microseconds. Beside them, as
%% "prepare", erlang:prepare_loading/2 alone, timed separately: the decoding
%% and code generation part of a load, without its commit.
%%
%% Cases:
%%   small  a module of 5 functions;
%%   big    a module of 1,000 functions, with 100 user modules (loaded once)
%%          that call into it by fully qualified calls: the analogue of 100
%%          crates importing from the reloaded one.
%% Each case runs twice: with the system idle, and with a caller process that
%% calls into the module in a loop throughout the measurement (the big case
%% through the user modules), so loading happens while that code runs; its
%% call count is printed to show that it did. The big cases' user modules are
%% loaded once, before both.
%%
%% Usage: erl -noshell -pa DIR -s reload_bench main [SMALL_ITERATIONS BIG_ITERATIONS] -s init stop

-module(reload_bench).
-export([main/0, main/1, caller/3]).

-define(WARMUP, 20).
-define(FUNCTIONS, 1000).
-define(USERS, 100).
-define(CALLS_PER_USER, 10).

main() -> main([]).

main(Arguments) ->
    {SmallIterations, BigIterations} =
        case [list_to_integer(atom_to_list(A)) || A <- Arguments] of
            [S, B] -> {S, B};
            [] -> {1000, 500}
        end,
    io:format("Erlang/OTP ~s (erts ~s, ~s emulator), ~b schedulers online~n",
              [erlang:system_info(otp_release), erlang:system_info(version),
               erlang:system_info(emu_flavor), erlang:system_info(schedulers_online)]),
    LoadBefore = load_average(),
    SmallVersions = [compile_source(small_source(V)) || V <- [1, 2]],
    BigVersions = [compile_source(big_source(V)) || V <- [1, 2]],
    load_users(),
    Cases = [measure_case("small (5 functions)", rb_small, SmallVersions, none, SmallIterations),
             measure_case("small, caller running", rb_small, SmallVersions, small, SmallIterations),
             measure_case("big (1,000 functions, 100 users)", rb_big, BigVersions, none, BigIterations),
             measure_case("big, caller running", rb_big, BigVersions, big, BigIterations)],
    print_table(Cases),
    io:format("  load average before: ~s, after: ~s~n", [LoadBefore, load_average()]),
    ok.

%% The 1, 5 and 15 minute load averages, or "unknown" off Linux.
load_average() ->
    case file:read_file("/proc/loadavg") of
        {ok, Text} -> string:join(lists:sublist(string:lexemes(binary_to_list(Text), " "), 3), " ");
        _ -> "unknown"
    end.

%% One case: load version 1, start the caller (unless Mode is none), then alternate versions.
measure_case(Label, Module, Versions, Mode, Iterations) ->
    [{_, Binary1, _} | _] = Versions,
    code:purge(Module),
    code:delete(Module),
    code:purge(Module),
    {module, Module} = code:load_binary(Module, atom_to_list(Module) ++ ".erl", Binary1),
    Users = list_to_tuple([user_name(K) || K <- lists:seq(1, ?USERS)]),
    Caller = case Mode of
                 none -> none;
                 _ -> spawn(?MODULE, caller, [Mode, Users, 0])
             end,
    Binaries = list_to_tuple([Binary || {_, Binary, _} <- Versions]),
    _ = [replace(Module, element(I rem 2 + 1, Binaries)) || I <- lists:seq(1, ?WARMUP)],
    Samples = [replace(Module, element(I rem 2 + 1, Binaries)) || I <- lists:seq(1, Iterations)],
    Prepares = [prepare_only(Module, element(I rem 2 + 1, Binaries)) || I <- lists:seq(1, Iterations)],
    Calls = case Caller of
                none -> none;
                _ -> Caller ! {stop, self()}, receive {calls, N} -> N end
            end,
    #{label => Label,
      beam_bytes => byte_size(Binary1),
      compile_us => lists:sum([Us || {_, _, Us} <- Versions]) / length(Versions),
      iterations => Iterations,
      purge => [P || {P, _, _} <- Samples],
      load => [L || {_, L, _} <- Samples],
      total => [P + L || {P, L, _} <- Samples],
      retries => lists:sum([R || {_, _, R} <- Samples]),
      prepare => Prepares,
      caller_calls => Calls}.

%% One replacement: purge the old version, load Binary. Returns {PurgeNs, LoadNs, Retries}.
replace(Module, Binary) ->
    T0 = erlang:monotonic_time(nanosecond),
    Retries = soft_purge(Module, 0),
    T1 = erlang:monotonic_time(nanosecond),
    {module, Module} = code:load_binary(Module, atom_to_list(Module) ++ ".erl", Binary),
    T2 = erlang:monotonic_time(nanosecond),
    {T1 - T0, T2 - T1, Retries}.

%% erlang:prepare_loading/2 alone: decoding the binary and generating its machine
%% code, without the commit (finish_loading), which makes every scheduler pass a
%% code barrier (thread progress plus an instruction barrier) while the loading
%% process is suspended. The prepared code is dropped.
prepare_only(Module, Binary) ->
    T0 = erlang:monotonic_time(nanosecond),
    Prepared = erlang:prepare_loading(Module, Binary),
    T1 = erlang:monotonic_time(nanosecond),
    true = is_reference(Prepared),
    T1 - T0.

%% code:soft_purge/1 fails while a process still runs old code; the caller
%% leaves it within a call, so yield and try again rather than kill it.
soft_purge(Module, Retries) ->
    case code:soft_purge(Module) of
        true -> Retries;
        false when Retries < 100000 -> erlang:yield(), soft_purge(Module, Retries + 1);
        false -> error({still_running_old_code, Module})
    end.

%% The process that runs the module's code during the measurement.
caller(Mode, Users, Calls) ->
    receive
        {stop, From} -> From ! {calls, Calls}
    after 0 ->
        call_once(Mode, Users, Calls),
        caller(Mode, Users, Calls + 1)
    end.

call_once(small, _, N) -> rb_small:work(N);
call_once(big, Users, N) -> (element(N rem ?USERS + 1, Users)):run(N).

%% Sources ----------------------------------------------------------------

small_source(Version) ->
    io_lib:format(
      "-module(rb_small).~n"
      "-export([version/0, work/1, add/2, fact/1, describe/1]).~n"
      "version() -> ~b.~n"
      "work(X) -> add(X, version()) + fact(X rem 10).~n"
      "add(A, B) -> A + B.~n"
      "fact(0) -> 1; fact(N) -> N * fact(N - 1).~n"
      "describe(X) when X > 0 -> {positive, ~b}; describe(_) -> {other, ~b}.~n",
      [Version, Version, Version]).

%% version/0 and f0/1 .. f998/1: 1,000 functions.
big_source(Version) ->
    Count = ?FUNCTIONS - 1,
    Exports = string:join(["version/0" | [io_lib:format("f~b/1", [N]) || N <- lists:seq(0, Count - 1)]], ", "),
    [io_lib:format("-module(rb_big).~n-export([~s]).~nversion() -> ~b.~n", [Exports, Version])
     | [io_lib:format("f~b(X) when is_integer(X) -> (X * ~b + ~b) rem 1000003; f~b(T) -> {T, ~b, ~b}.~n",
                      [N, N + 1, Version, N, N, Version])
        || N <- lists:seq(0, Count - 1)]].

user_name(K) -> list_to_atom("rb_user_" ++ integer_to_list(K)).

%% User K calls 10 functions of rb_big, fully qualified; together the users call all of them.
user_source(K) ->
    Calls = [io_lib:format("rb_big:f~b(X)", [(K * ?CALLS_PER_USER + J) rem (?FUNCTIONS - 1)])
             || J <- lists:seq(0, ?CALLS_PER_USER - 1)],
    io_lib:format("-module(~s).~n-export([run/1]).~nrun(X) -> ~s.~n",
                  [user_name(K), string:join(Calls, " + ")]).

load_users() ->
    lists:foreach(
      fun(K) ->
              {Module, Binary, _} = compile_source(user_source(K)),
              {module, Module} = code:load_binary(Module, atom_to_list(Module) ++ ".erl", Binary)
      end, lists:seq(1, ?USERS)).

%% Text to a binary: {Module, Binary, CompileMicroseconds}.
compile_source(Source) ->
    T0 = erlang:monotonic_time(nanosecond),
    {ok, Module, Binary} = compile:forms(forms(lists:flatten(Source)), [binary, return_errors]),
    {Module, Binary, (erlang:monotonic_time(nanosecond) - T0) / 1000}.

forms(Text) -> forms(Text, 1, []).

forms(Text, Line, Forms) ->
    case erl_scan:tokens([], Text, Line) of
        {done, {ok, Tokens, End}, Rest} ->
            {ok, Form} = erl_parse:parse_form(Tokens),
            forms(Rest, End, [Form | Forms]);
        {done, {eof, _}, _} -> lists:reverse(Forms);
        {more, _} -> lists:reverse(Forms)
    end.

%% Output -----------------------------------------------------------------

print_table(Cases) ->
    io:format("~nmedian / p99 in microseconds; purge = code:soft_purge/1, load = code:load_binary/3~n"),
    Header = ["case", "beam", "iterations", "load med", "load p99",
              "purge med", "purge p99", "total med", "total p99", "prepare med"],
    Rows = [[maps:get(label, C),
             io_lib:format("~.1f KB", [maps:get(beam_bytes, C) / 1024]),
             integer_to_list(maps:get(iterations, C)),
             us(median(maps:get(load, C))), us(p99(maps:get(load, C))),
             us(median(maps:get(purge, C))), us(p99(maps:get(purge, C))),
             us(median(maps:get(total, C))), us(p99(maps:get(total, C))),
             us(median(maps:get(prepare, C)))]
            || C <- Cases],
    print_columns([Header | Rows]),
    io:format("notes:~n"
              "  prepare = erlang:prepare_loading/2 alone (decode + JIT, no commit), timed separately;~n"
              "    the rest of a load is the commit, which waits for every scheduler to pass a code barrier~n"),
    lists:foreach(
      fun(C) ->
              Caller = case maps:get(caller_calls, C) of
                           none -> "no caller";
                           Calls -> io_lib:format("caller made ~b calls during the runs", [Calls])
                       end,
              io:format("  ~s: compile:forms ~.1f ms per version (not timed above); ~s; soft_purge retries ~b~n",
                        [maps:get(label, C), maps:get(compile_us, C) / 1000, Caller, maps:get(retries, C)])
      end, Cases).

print_columns(Rows) ->
    Widths = [lists:max([string:length(lists:nth(I, R)) || R <- Rows]) || I <- lists:seq(1, length(hd(Rows)))],
    lists:foreach(
      fun(Row) ->
              Cells = [case I of
                           1 -> string:pad(Cell, W, trailing);
                           _ -> string:pad(Cell, W, leading)
                       end || {I, Cell, W} <- lists:zip3(lists:seq(1, length(Row)), Row, Widths)],
              io:format("  ~s~n", [string:join(Cells, "  ")])
      end, Rows).

us(Nanoseconds) -> io_lib:format("~.1f", [Nanoseconds / 1000]).

median(Values) ->
    Sorted = lists:sort(Values),
    N = length(Sorted),
    case N rem 2 of
        1 -> lists:nth(N div 2 + 1, Sorted);
        0 -> (lists:nth(N div 2, Sorted) + lists:nth(N div 2 + 1, Sorted)) / 2
    end.

%% The nearest-rank 99th percentile.
p99(Values) ->
    Sorted = lists:sort(Values),
    lists:nth(max(1, ceil(0.99 * length(Sorted))), Sorted).
