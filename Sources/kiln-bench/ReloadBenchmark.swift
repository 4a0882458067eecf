// `kiln-bench reload`: how long a hot reload takes, from the call to the
// moment new calls enter the new code, against Erlang's code loading.
//
// Kiln's figures time `Loader.reload(_:with:)` on versions compiled in
// advance (compiling is not part of loading, in Kiln or in Erlang): the stack
// scan, matching, placement, writing code, incremental relinking of the crate
// and of its users, re-pointing stubs and collecting the old code. Cases: a
// small crate with one user; a crate of 1,000 functions with 100 user crates
// whose TOC slots are bound to it, once with one function changed and once
// with every function changed (Erlang always replaces the whole module). A
// third figure is the reload as a running program sees it: `reload` from another thread
// from another thread until the program's next call through a TOC applies it.
// The Erlang peer is Benchmarks/reload/erlang/run.sh, run when `erl` exists.

import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

func runReloadBenchmark(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["runs", "peer", "only"])
    let runs = try options.integer("runs", default: 1000)
    let only = options.string("only")
    var rows: [[String]] = [["case", "functions", "users", "median µs", "p99 µs", "relinked/reload"]]

    if only == nil || only == "small" {
        let small = try reloadCase(functions: 5, users: 1, changeAll: true, runs: runs)
        rows.append(["small crate, all changed", "5", "1"] + small)
    }
    if only == nil || only == "big" || only == "one" {
        let oneChanged = try reloadCase(functions: 1000, users: 100, changeAll: false, runs: max(runs / 5, 20))
        rows.append(["1,000 functions, one changed", "1000", "100"] + oneChanged)
        if only != "one" {
            let allChanged = try reloadCase(functions: 1000, users: 100, changeAll: true, runs: max(runs / 10, 20))
            rows.append(["1,000 functions, all changed", "1000", "100"] + allChanged)
        }
    }
    if only == nil || only == "running" {
        let running = try runningProgramCase(runs: runs)
        rows.append(["small crate, running program", "5", "1"] + running)
    }
    print("Hot reload latency (goal: a small crate in tens of microseconds), \(processorCount()) cores, load \(loadAverage())")
    print(columns(rows))
    print("")
    if options.string("peer") != "no" { printErlangPeer() }
}

/// IL for a crate of `count` exported functions `f0...`; `version` changes every function
/// (or only f0 when `changeAll` is false).
private func libraryIL(functions count: Int, version: Int, changeAll: Bool) -> String {
    var text = "export data $state = { l 0 }\n"
    for index in 0..<count {
        let changes = changeAll || index == 0
        let constant = changes ? index + 1000 * version : index
        // Changed functions differ in size too, so not every reload can rewrite in place.
        let extra = changes && version % 2 == 1 ? "\t%e =l xor %y, \(constant)\n\tstorel %e, $state\n" : ""
        text += "export function l $f\(index)(l %x) {\n@start\n\t%y =l add %x, \(constant)\n\(extra)\tret %y\n}\n"
    }
    return text
}

/// IL for user crate `index`: one function calling ten of the library's functions.
private func userIL(_ index: Int, functions: Int) -> String {
    var body = "\t%s0 =l copy 0\n"
    for call in 0..<10 {
        let target = (index * 10 + call) % functions
        body += "\t%r\(call) =l call $f\(target)(l %x)\n\t%s\(call + 1) =l add %s\(call), %r\(call)\n"
    }
    return "export function l $user\(index)(l %x) {\n@start\n\(body)\tret %s10\n}\n"
}

private func compiled(_ name: String, _ text: String) throws -> CompiledModule {
    let (module, diagnostics) = parseAndVerify(SourceFile(name: name, text: text))
    guard diagnostics.isEmpty else { throw UsageError(description: "\(name): \(diagnostics[0])") }
    return try compileModule(module)
}

typealias LongToLong = @convention(c) (Int64) -> Int64

/// Median and p99 (µs) of reloading, and the records plus slots relinked by the last one.
private func reloadCase(functions: Int, users: Int, changeAll: Bool, runs: Int) throws -> [String] {
    let loader = try Loader(options: .init())
    let texts = (0..<2).map { libraryIL(functions: functions, version: $0, changeAll: changeAll) }
    let library = try loader.load(try compiled("library.ssa", texts[0]))
    let userCrates = try loader.load(try (0..<users).map { try compiled("user\($0).ssa", userIL($0, functions: functions)) })
    // Bind every user's slots, so each reload has slots to rewrite.
    let entries = try userCrates.enumerated().map { index, crate in
        unsafeBitCast(try crate.stub(ofFunction: crate.functionIndex(named: "user\(index)")!), to: LongToLong.self)
    }
    for entry in entries { _ = entry(1) }
    defer { withExtendedLifetime((loader, userCrates)) {} }
    var samples: [Double] = []
    var relinked = 0
    let clock = ContinuousClock()
    for run in 0..<(runs + 10) {
        // A module compiled afresh for every reload, as `kiln run --watch` has; not timed.
        let next = try compiled("library.ssa", texts[(run + 1) % 2])
        var report: Loader.ReloadReport?
        let elapsed = try clock.measure { report = try loader.reload(library, with: next) }
        if run >= 10 { samples.append(microseconds(elapsed)) }
        relinked += report!.recordsReapplied + report!.slotsRewritten
        if run % 50 == 0 { for entry in entries { _ = entry(1) } }
    }
    samples.sort()
    return [Format.fixed(samples[samples.count / 2], 1), Format.fixed(samples[samples.count * 99 / 100], 1),
            Format.grouped(relinked / (runs + 10))]
}

/// A program on its own thread calls a small crate (through its TOC) in a loop; this
/// thread requests reloads and measures until each is applied by the program.
private func runningProgramCase(runs: Int) throws -> [String] {
    let loader = try Loader(options: .init())
    let versions = try (0..<2).map { try compiled("library.ssa", libraryIL(functions: 5, version: $0, changeAll: true)) }
    _ = try loader.load(versions[0])
    let driver = try loader.load(try compiled("driver.ssa", """
        export data $stop = { l 0 }
        export function l $spin(l %x) {
        @start
        	%i =l copy 0
        @loop
        	%r =l call $f1(l %i)
        	%i =l add %i, 1
        	%s =l loadl $stop
        	jnz %s, @done, @loop
        @done
        	ret %i
        }
        """))
    let spin = UInt(bitPattern: try driver.stub(ofFunction: 0))
    let stop = UInt(bitPattern: driver.address(ofData: 0))
    final class Program: @unchecked Sendable {
        let spin: UInt
        init(_ spin: UInt) { self.spin = spin }
    }
    let program = Program(spin)
    var thread = pthread_t()
    let context = Unmanaged.passRetained(program).toOpaque()
    pthread_create(&thread, nil, { raw in
        let program = Unmanaged<Program>.fromOpaque(raw!).takeRetainedValue()
        _ = unsafeBitCast(UnsafeRawPointer(bitPattern: program.spin)!, to: LongToLong.self)(0)
        return nil
    }, context)
    var samples: [Double] = []
    let clock = ContinuousClock()
    for run in 0..<(runs + 10) {
        let start = clock.now
        _ = try? loader.reload(crateNamed: "library.ssa", with: versions[(run + 1) % 2])
        if run >= 10 { samples.append(microseconds(clock.now - start)) }
    }
    UnsafeMutableRawPointer(bitPattern: stop)!.storeBytes(of: 1, as: Int64.self)
    withExtendedLifetime(loader) { _ = pthread_join(thread, nil) }
    samples.sort()
    return [Format.fixed(samples[samples.count / 2], 1), Format.fixed(samples[samples.count * 99 / 100], 1), "-"]
}

private func microseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) * 1e-12
}

/// Runs the Erlang peer when Erlang is installed, or says how to get it.
private func printErlangPeer() {
    let script = "Benchmarks/reload/erlang/run.sh"
    guard findOnPath("erl") != nil, access(script, R_OK) == 0 else {
        print("Erlang peer: not run (needs `apt-get install -y erlang-base` and \(script), run from the package root)")
        return
    }
    guard let scratch = try? TemporaryDirectory() else { return }
    defer { scratch.remove() }
    guard let result = try? runProcess(["bash", script], in: scratch) else {
        print("Erlang peer: \(script) could not be started")
        return
    }
    print("Erlang peer (\(script)):")
    print(String(decoding: result.output, as: UTF8.self))
}
