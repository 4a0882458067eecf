// `kiln-bench trees`: binary-trees written in Kiln's IL (examples/binary-trees.ssa)
// against the same program in the peers installed from Debian's packages:
// OCaml (ocamlopt), Chez Scheme, Erlang (BEAM), LuaJIT, and C with malloc and
// free (gcc -O2). Every program builds the same trees (a node of two fields,
// leaves included) and prints the same lines; the outputs are compared.
//
// Each runs as a child process under /usr/bin/time, which reports its peak
// resident size; wall time is the median of --runs runs, start-up included.
// Peers that are not installed are listed as missing, not left out silently.
// Goal: faster than OCaml's native code (0.56 s on this kind of machine)
// within its memory (32 MiB).
//
// Also here: Kiln's allocation rate from generated code (objects of two
// fields that die at once, a loop in IL), and the pause times `kiln run
// --stats` reports for binary-trees (a small live heap). The pause times of
// a 1 GiB live heap come from `kiln-bench heap --only pauses`.

#if canImport(Glibc)
import Glibc
#endif

private let ocamlSource = """
    type tree = Leaf | Node of tree * tree
    let rec make d = if d = 0 then Node (Leaf, Leaf) else Node (make (d - 1), make (d - 1))
    let rec check = function Leaf -> 0 | Node (l, r) -> 1 + check l + check r
    let () =
      let n = if Array.length Sys.argv > 1 then int_of_string Sys.argv.(1) else 10 in
      let max_depth = max 6 n in
      let stretch = max_depth + 1 in
      Printf.printf "stretch tree of depth %d\\t check: %d\\n" stretch (check (make stretch));
      let long_lived = make max_depth in
      let d = ref 4 in
      while !d <= max_depth do
        let iterations = 1 lsl (max_depth - !d + 4) in
        let c = ref 0 in
        for _ = 1 to iterations do c := !c + check (make !d) done;
        Printf.printf "%d\\t trees of depth %d\\t check: %d\\n" iterations !d !c;
        d := !d + 2
      done;
      Printf.printf "long lived tree of depth %d\\t check: %d\\n" max_depth (check long_lived)
    """

private let schemeSource = """
    (define (make d) (if (= d 0) (cons #f #f) (cons (make (- d 1)) (make (- d 1)))))
    (define (check t) (if (car t) (+ 1 (check (car t)) (check (cdr t))) 1))
    (let* ([args (command-line-arguments)]
           [n (if (null? args) 10 (string->number (car args)))]
           [max-depth (max 6 n)]
           [stretch (+ max-depth 1)])
      (printf "stretch tree of depth ~a\\t check: ~a\\n" stretch (check (make stretch)))
      (let ([long-lived (make max-depth)])
        (do ([d 4 (+ d 2)]) ((> d max-depth))
          (let ([iterations (expt 2 (+ (- max-depth d) 4))])
            (do ([i 0 (+ i 1)] [c 0 (+ c (check (make d)))]) ((= i iterations)
              (printf "~a\\t trees of depth ~a\\t check: ~a\\n" iterations d c)))))
        (printf "long lived tree of depth ~a\\t check: ~a\\n" max-depth (check long-lived))))
    """

private let erlangSource = """
    -module(trees).
    -export([main/1]).
    make(0) -> {nil, nil};
    make(D) -> {make(D - 1), make(D - 1)}.
    check({nil, _}) -> 1;
    check({L, R}) -> 1 + check(L) + check(R).
    depths(D, Max) when D > Max -> ok;
    depths(D, Max) ->
        Iterations = 1 bsl (Max - D + 4),
        C = lists:foldl(fun(_, Sum) -> Sum + check(make(D)) end, 0, lists:seq(1, Iterations)),
        io:format("~b\\t trees of depth ~b\\t check: ~b~n", [Iterations, D, C]),
        depths(D + 2, Max).
    main([Arg]) ->
        Max = max(6, list_to_integer(Arg)),
        Stretch = Max + 1,
        io:format("stretch tree of depth ~b\\t check: ~b~n", [Stretch, check(make(Stretch))]),
        LongLived = make(Max),
        depths(4, Max),
        io:format("long lived tree of depth ~b\\t check: ~b~n", [Max, check(LongLived)]),
        halt(0).
    """

private let luaSource = """
    local function make(d)
      if d == 0 then return { false, false } end
      d = d - 1
      return { make(d), make(d) }
    end
    local function check(t)
      if t[1] then return 1 + check(t[1]) + check(t[2]) end
      return 1
    end
    local n = tonumber(arg and arg[1]) or 10
    local maxDepth = math.max(6, n)
    local stretch = maxDepth + 1
    io.write(string.format("stretch tree of depth %d\\t check: %d\\n", stretch, check(make(stretch))))
    local longLived = make(maxDepth)
    for d = 4, maxDepth, 2 do
      local iterations = 2 ^ (maxDepth - d + 4)
      local c = 0
      for _ = 1, iterations do c = c + check(make(d)) end
      io.write(string.format("%d\\t trees of depth %d\\t check: %d\\n", iterations, d, c))
    end
    io.write(string.format("long lived tree of depth %d\\t check: %d\\n", maxDepth, check(longLived)))
    """

private let cSource = """
    #include <stdio.h>
    #include <stdlib.h>
    struct node { struct node *left, *right; };
    static struct node *make(int d) {
        struct node *n = malloc(sizeof *n);
        if (d == 0) { n->left = n->right = NULL; return n; }
        n->left = make(d - 1);
        n->right = make(d - 1);
        return n;
    }
    static int check(struct node *t) { return t->left ? 1 + check(t->left) + check(t->right) : 1; }
    static void release(struct node *t) {
        if (t->left) { release(t->left); release(t->right); }
        free(t);
    }
    int main(int argc, char **argv) {
        int n = argc > 1 ? atoi(argv[1]) : 10, max = n < 6 ? 6 : n, stretch = max + 1;
        struct node *s = make(stretch);
        printf("stretch tree of depth %d\\t check: %d\\n", stretch, check(s));
        release(s);
        struct node *longLived = make(max);
        for (int d = 4; d <= max; d += 2) {
            int iterations = 1 << (max - d + 4), c = 0;
            for (int i = 0; i < iterations; i++) {
                struct node *t = make(d);
                c += check(t);
                release(t);
            }
            printf("%d\\t trees of depth %d\\t check: %d\\n", iterations, d, c);
        }
        printf("long lived tree of depth %d\\t check: %d\\n", max, check(longLived));
        return 0;
    }
    """

/// Objects of two fields that die at once, in a loop: the allocation rate of generated code.
private let rateSource = """
    export function w $main(w %argc, l %argv) {
    @start
    	%p =l add %argv, 8
    	%text =l loadl %p
    	%n =l call $atol(l %text)
    	jmp @loop
    @loop
    	%i =l phi @start 0, @loop %i1
    	%o =r rnew 2
    	%t =r rtag %i
    	rstore %t, %o, 0
    	%i1 =l add %i, 1
    	%more =w csltl %i1, %n
    	jnz %more, @loop, @done
    @done
    	ret 0
    }
    """

/// One runner: how to prepare it (compile) and the command that runs it with the depth.
private struct TreesRunner {
    var name: String
    var prepare: [[String]]
    var command: [String]
    var missing: String?
}

func runTreesBenchmark(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["runs", "depth", "kiln", "rate"])
    let runs = try options.integer("runs", default: 3)
    let depth = try options.integer("depth", default: 18)
    let rateCount = try options.integer("rate", default: 200_000_000)
    guard let kiln = options.string("kiln") ?? executablePath().map({ directoryName($0) + "/kiln" }), isExecutable(kiln) else {
        throw UsageError(description: "cannot find the kiln binary (build it, or pass --kiln PATH)")
    }
    let example = directoryName(directoryName(directoryName(directoryName(kiln)))) + "/examples/binary-trees.ssa"
    guard isExecutable("/usr/bin/time") else { throw UsageError(description: "/usr/bin/time (GNU time) is needed for peak resident sizes") }
    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }
    func write(_ name: String, _ text: String) throws -> String {
        let path = scratch.file(name)
        guard let file = fopen(path, "w") else { throw UsageError(description: "cannot write \(path)") }
        fputs(text + "\n", file)
        fclose(file)
        return path
    }
    func tool(_ name: String) -> String? { findOnPath(name) }
    let d = String(depth)
    var runners: [TreesRunner] = [
        TreesRunner(name: "kiln (IL)", prepare: [], command: [kiln, "run", example, d]),
    ]
    let ml = try write("trees.ml", ocamlSource)
    runners.append(TreesRunner(name: "OCaml (ocamlopt)", prepare: [["ocamlopt", "-O3", "-unsafe", "-o", scratch.file("trees-ocaml"), ml]],
                               command: [scratch.file("trees-ocaml"), d], missing: tool("ocamlopt") == nil ? "ocamlopt" : nil))
    let ss = try write("trees.ss", schemeSource)
    runners.append(TreesRunner(name: "Chez Scheme", prepare: [], command: ["scheme", "--optimize-level", "3", "--script", ss, d],
                               missing: tool("scheme") == nil ? "scheme" : nil))
    _ = try write("trees.erl", erlangSource)
    runners.append(TreesRunner(name: "Erlang (BEAM)", prepare: [["erlc", "-o", scratch.path, scratch.file("trees.erl")]],
                               command: ["erl", "-noshell", "-pa", scratch.path, "-run", "trees", "main", d],
                               missing: tool("erlc") == nil ? "erlc" : nil))
    let lua = try write("trees.lua", luaSource)
    runners.append(TreesRunner(name: "LuaJIT", prepare: [], command: ["luajit", lua, d], missing: tool("luajit") == nil ? "luajit" : nil))
    let c = try write("trees.c", cSource)
    runners.append(TreesRunner(name: "C, malloc (gcc -O2)", prepare: [["gcc", "-O2", "-o", scratch.file("trees-c"), c]],
                               command: [scratch.file("trees-c"), d], missing: tool("gcc") == nil ? "gcc" : nil))

    var rows: [[String]] = [["binary-trees depth \(depth)", "time (median)", "peak RSS", "vs OCaml", "output"]]
    var reference: String?
    var ocamlSeconds: Double?
    var results: [(String, Double, Int, String)] = []
    for runner in runners {
        if let missing = runner.missing {
            rows.append([runner.name, "-", "-", "-", "not installed (\(missing))"])
            continue
        }
        var prepared = true
        for step in runner.prepare {
            progress("trees: \(runner.name): \(step.joined(separator: " "))")
            let result = try runProcess(step, in: scratch)
            if !result.succeeded {
                rows.append([runner.name, "-", "-", "-", "failed to build: \(result.errorSummary)"])
                prepared = false
            }
        }
        guard prepared else { continue }
        var times: [Double] = [], peaks: [Int] = []
        var output = ""
        for run in 0..<runs {
            progress("trees: \(runner.name) run \(run + 1)")
            let result = try runProcess(["/usr/bin/time", "-f", "peak-kib=%M"] + runner.command, in: scratch)
            guard result.succeeded else { throw UsageError(description: "\(runner.name): \(result.errorSummary)") }
            times.append(result.seconds)
            let errors = String(decoding: result.errors, as: UTF8.self)
            if let line = errors.split(separator: "\n").last(where: { $0.hasPrefix("peak-kib=") }) {
                peaks.append((Int(line.dropFirst("peak-kib=".count)) ?? 0) * 1024)
            }
            output = result.outputText
        }
        reference = reference ?? output
        let time = median(times)
        if runner.name.hasPrefix("OCaml") { ocamlSeconds = time }
        results.append((runner.name, time, peaks.max() ?? 0, output == reference ? "same as kiln" : "DIFFERS"))
    }
    for (name, time, peak, same) in results {
        let ratio = ocamlSeconds.map { Format.fixed(time / $0, 2) + "x" } ?? "-"
        rows.append([name, Format.fixed(time, 3) + " s", Format.megabytes(peak), ratio, same])
    }
    print(columns(rows))
    print("goal: kiln faster than OCaml's native code within 32 MiB")

    // Allocation rate of generated code, and binary-trees' pauses from kiln's own figures.
    let rate = try write("rate.ssa", rateSource)
    let rateRun = try runProcess([kiln, "run", "--stats", rate, String(rateCount)], in: scratch)
    guard rateRun.succeeded else { throw UsageError(description: "rate: \(rateRun.errorSummary)") }
    let bytes = Double(rateCount) * 24
    print("allocation rate (generated code, 2-field objects that die at once): "
          + "\(Format.grouped(rateCount)) objects in \(Format.fixed(rateRun.seconds, 3)) s = "
          + "\(Format.fixed(Double(rateCount) / rateRun.seconds / 1e6, 1)) M objects/s, \(Format.fixed(bytes / rateRun.seconds / 1e9, 2)) GB/s")
    let stats = try runProcess([kiln, "run", "--stats", example, d], in: scratch)
    let lines = String(decoding: stats.errors, as: UTF8.self).split(separator: "\n")
    for line in lines where line.hasPrefix("managed heap:") || line.hasPrefix("collections:") || line.hasPrefix("pauses:") {
        print("binary-trees \(depth), kiln --stats: \(line)")
    }
}
