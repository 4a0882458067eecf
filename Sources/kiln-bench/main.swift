// kiln-bench: the benchmarks, one subcommand each.
//
// Each benchmark makes its own input, times the work after a warm-up, and
// prints a small table with the goal it is measured against. It runs in
// release mode (`swift run -c release kiln-bench NAME`) and is never part of
// the test suite. A new benchmark is a function taking its arguments plus one
// row in `benchmarks`.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A subcommand: its name, one line for the usage text, and what it runs.
struct Benchmark {
    var name: String
    var summary: String
    var run: ([String]) throws -> Void
}

let benchmarks: [Benchmark] = [
    Benchmark(name: "frontend",
              summary: "parse + verify a generated IL file [--lines N] [--repeat N] [--seed N] [--dump PATH]",
              run: runFrontEndBenchmark),
    Benchmark(name: "programs",
              summary: "run time of Benchmarks/programs: gcc -O2/-O0, qbe, kiln run [--runs N] [--kiln PATH] [--qbe PATH] [--only NAME,...] [--dir DIR]",
              run: runProgramsBenchmark),
    Benchmark(name: "compile",
              summary: "IL lines/s and callgrind instructions per line, kiln vs qbe + as [--runs N] [--qbe PATH] [--cproc PATH] [--files F...] [--sources C...] [--qbe-tests DIR] [--lua-il DIR] [--lines N] [--keep DIR] [--kiln PATH] [--instructions yes|no]",
              run: runCompileBenchmark),
    Benchmark(name: "growth",
              summary: "compile time and peak memory per line of generated functions at 1k, 10k, 100k [--runs N] [--sizes N,...] [--only SHAPE,...]",
              run: runGrowthBenchmark),
    Benchmark(name: "differential",
              summary: "random programs run by kiln and by QBE + cc, outputs compared [--count N] [--seed N] [--functions N] [--blocks N] [--keep DIR] [--interpret FILE]",
              run: runDifferentialCheck),
    Benchmark(name: "crates",
              summary: "kcrate load vs compile vs dlopen; ns per direct/TOC/stub call; compaction ms per MB [--runs N] [--calls N] [--rounds N] [--crates N] [--dir DIR]",
              run: runCratesBenchmark),
    Benchmark(name: "reload",
              summary: "hot-reload latency: small crate, 1,000-function crate with 100 users, running program; Erlang peer [--runs N] [--peer no] [--only small|big|one|running]",
              run: runReloadBenchmark),
    Benchmark(name: "world",
              summary: "stop-the-world pause with 0/1/4/16 other threads; compaction moving one block in 1k/10k/100k-function heaps [--runs N] [--threads N,...] [--sizes N,...]",
              run: runWorldBenchmark),
    Benchmark(name: "heap",
              summary: "managed heap through its Swift API: binary-trees, allocation rate, pause times [--runs N] [--depth N] [--live-mib N] [--only binarytrees,rate,pauses]",
              run: runHeapBenchmark),
    Benchmark(name: "procs",
              summary: "procs vs Erlang: spawn waiting procs (ns, bytes each), ring (ns per hop), ping-pong, hot split [--runs N] [--spawn N] [--ring-procs N] [--ring-rounds N] [--pingpong N] [--kiln PATH] [--dir DIR]",
              run: runProcsBenchmark),
    Benchmark(name: "trees",
              summary: "binary-trees in IL vs OCaml, Chez Scheme, Erlang, LuaJIT, C+malloc: time, peak RSS; allocation rate; pauses [--runs N] [--depth N] [--rate N]",
              run: runTreesBenchmark),
    Benchmark(name: "tools",
              summary: "cost of GDB's JIT interface and perf's jitdump on load and compaction [--runs N] [--dir DIR]",
              run: runToolsBenchmark),
    Benchmark(name: "callbacks",
              summary: "qsort from C with a C, kiln-stub, kiln-entry and libffi comparator [--runs N] [--count N] [--dir DIR]",
              run: runCallbacksBenchmark),
]

@MainActor func printUsage() {
    print("usage: kiln-bench BENCHMARK [options]")
    for benchmark in benchmarks {
        print("  \(benchmark.name.padding(12))\(benchmark.summary)")
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, let benchmark = benchmarks.first(where: { $0.name == name }) else {
    printUsage()
    exit(arguments.first == nil || arguments.first == "--help" ? 0 : 2)
}
do {
    try benchmark.run(Array(arguments.dropFirst()))
} catch {
    print("kiln-bench \(name): \(error)")
    exit(2)
}
