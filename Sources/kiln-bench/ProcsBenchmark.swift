// Procs against Erlang, in one run.
//
// The work is IL programs in Benchmarks/procs (each times itself with a
// monotonic clock and prints its figure): spawning waiting procs (time per
// spawn, resident bytes per proc), a ring passing a message around, ping-pong
// between two procs, and the hot-split worst case (a call in a loop at every
// stack depth, one of which crosses a segment boundary every time). Each runs
// under the `kiln` beside this executable (or `--kiln`); the Erlang peer
// (Benchmarks/procs/erlang/procs_bench.erl) does the first three the same way
// when `erl` is installed.

#if canImport(Glibc)
import Glibc
#endif

func runProcsBenchmark(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["kiln", "dir", "spawn", "ring-procs", "ring-rounds", "pingpong", "runs", "reload-procs"])
    let directory = try benchmarkDirectory("procs", marker: "ring.ssa", given: options.string("dir"))
    guard let kiln = options.string("kiln") ?? executablePath().map({ directoryName($0) + "/kiln" }), isExecutable(kiln) else {
        throw UsageError(description: "no kiln executable beside kiln-bench; build it or pass --kiln")
    }
    let spawn = try options.integer("spawn", default: 1_000_000)
    let ringProcs = try options.integer("ring-procs", default: 10_000)
    let ringRounds = try options.integer("ring-rounds", default: 1_000)
    let pingPong = try options.integer("pingpong", default: 1_000_000)
    let runs = try options.integer("runs", default: 3)
    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }

    print("kiln (\(kiln)), each the best of \(runs) runs:")
    let programs: [(String, [String])] = [
        ("spawn", [String(spawn)]),
        ("ring", [String(ringProcs), String(ringRounds)]),
        ("pingpong", [String(pingPong)]),
        ("hotsplit", ["100000"]),
    ]
    for (name, programArguments) in programs {
        var lines: [String] = []
        for _ in 0..<runs {
            let result = try runProcess([kiln, "run", directory + "/common.ssa", directory + "/\(name).ssa", "--"] + programArguments,
                                        in: scratch)
            guard result.status == 0 else {
                print("  \(name): failed (status \(result.status)): \(String(decoding: result.errors, as: UTF8.self))")
                break
            }
            lines.append(String(decoding: result.output, as: UTF8.self).trimmingTrailingNewlines)
        }
        // The best run: the line whose first figure is smallest (every figure is a cost).
        if let best = lines.min(by: { firstFigure($0) < firstFigure($1) }) { print("  " + best) }
    }

    // A reload under parked procs: `kiln run --watch` reports how long the reload took.
    let parked = try options.integer("reload-procs", default: 10_000)
    let worker = scratch.file("worker.ssa"), newVersion = scratch.file("new.ssa")
    let original = String(decoding: try readFile(directory + "/reload-worker.ssa"), as: UTF8.self)
    var best: Int?
    for _ in 0..<runs {
        try write(Array(original.utf8), to: worker)
        try write(Array(original.replacing("call $strlen(l $old)", with: "call $strlen(l $new)")
                        .replacing("\tret 1", with: "\tret 2").utf8), to: newVersion)
        let result = try runProcess([kiln, "run", "--watch", directory + "/common.ssa", directory + "/reload-main.ssa", worker,
                                     "--", String(parked), newVersion, worker], in: scratch)
        let errors = String(decoding: result.errors, as: UTF8.self)
        guard result.status == 0, String(decoding: result.output, as: UTF8.self).hasSuffix("reloaded 1\n"),
              let range = errors.firstRange(of: " blocks freed in "), let end = errors[range.upperBound...].firstIndex(of: " "),
              let microseconds = Int(errors[range.upperBound..<end]) else {
            print("  reload: failed (status \(result.status)): \(errors)")
            break
        }
        best = min(best ?? .max, microseconds)
    }
    if let best {
        print("  reload: \(parked) procs parked in the reloaded function, reloaded in \(best) µs; every one finished in the old code")
    }

    let peer = directory + "/erlang/procs_bench.erl"
    guard findOnPath("erl") != nil, findOnPath("erlc") != nil else {
        print("Erlang peer: not run (needs `apt-get install -y erlang-base`)")
        return
    }
    let compiled = try runProcess(["erlc", "-o", scratch.path, peer], in: scratch)
    guard compiled.status == 0 else {
        print("Erlang peer: erlc failed: \(String(decoding: compiled.errors, as: UTF8.self))")
        return
    }
    print("Erlang (\(peer)):")
    let result = try runProcess(["erl", "-noshell", "+P", String(max(spawn * 2, 1_048_576)), "-pa", scratch.path,
                                 "-s", "procs_bench", "main", String(spawn), String(ringProcs), String(ringRounds),
                                 String(pingPong), "-s", "init", "stop"], in: scratch)
    for line in String(decoding: result.output, as: UTF8.self).split(separator: "\n") { print("  " + line) }
}

/// The first number after a comma in a benchmark line ("ring: 10000 procs, 1000 rounds,
/// 52.1 ns per hop" gives 52.1 from its last clause): what the line costs.
private func firstFigure(_ line: String) -> Double {
    let clause = line.split(separator: ",").last.map(String.init) ?? line
    let digits = clause.drop { !$0.isNumber }.prefix { $0.isNumber || $0 == "." }
    return Double(digits) ?? .infinity
}

/// A folder of Benchmarks: `given`, else the first of `Benchmarks/NAME` in the working
/// directory or upwards from this executable for which `holds` is true.
func benchmarkDirectory(_ name: String, given: String?, holds: (String) -> Bool) throws -> String {
    if let given {
        guard isDirectory(given) else { throw UsageError(description: "\(given) is not a directory") }
        return given
    }
    var candidates = ["Benchmarks/\(name)"]
    if let executable = executablePath() {
        var directory = directoryName(executable)
        for _ in 0..<6 {
            candidates.append(directory + "/Benchmarks/\(name)")
            directory = directoryName(directory)
        }
    }
    for candidate in candidates where holds(candidate) { return candidate }
    throw UsageError(description: "cannot find Benchmarks/\(name); run from the package directory or pass --dir")
}

/// The same, for a folder that holds the file `marker`.
func benchmarkDirectory(_ name: String, marker: String, given: String?) throws -> String {
    try benchmarkDirectory(name, given: given) { access($0 + "/" + marker, R_OK) == 0 }
}

extension String {
    var trimmingTrailingNewlines: String {
        var text = self
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}
