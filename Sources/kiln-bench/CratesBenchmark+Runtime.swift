// The run-time tables of `kiln-bench crates`: what a call costs by the way it
// reaches its callee, and what compaction costs per megabyte of code.
//
// Calls. `loop(n)` adds up `callee(i) = i + 1` for i < n, so it returns
// n(n+1)/2, which is checked. Kiln: `callee` in the same crate (`call rel32`),
// exported by a second crate (`call [TOC slot]`, bound on the first call), or
// reached through a pointer loaded from data in every iteration (the pointer is
// the callee's callback stub, a `jmp rel32`). gcc -O2, in one dlopened object:
// a static noinline callee (`call rel32`), a global noinline callee (the PLT,
// as semantic interposition requires under -fPIC), and a global function
// pointer. The loops run one after another in every round, n calls each.
//
// Compaction. --crates crates of ten functions each (calls inside the crate,
// one through the TOC, one through a stub) are loaded into a fresh Loader
// whose heap is then fragmented two ways: random gaps before each crate
// (`placementSeed`), or every other crate unloaded. The crates left are run
// once, so call slots are bound and host stubs exist, then `compact()` is
// timed, and every crate must give the same result afterwards.

import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let callGoal = "calls through a TOC slot and a stub no slower than gcc -O2's through the PLT and a function pointer"
private let compactionGoal = "provisional, DESIGN.md sets none: compaction at most 10 ms per MB of live code (a 100 ms pause for 10 MB)"
private let compactionGoalMilliseconds = 10.0

private typealias LoopFunction = @convention(c) (Int64) -> Int64

// MARK: - Calls

private let calleeSource = """
    function l $callee(l %x) {
    @start
    	%y =l add %x, 1
    	ret %y
    }

    """

/// `$loop(n)`: the sum of `call(i)` for i < n, where `call` is the text of the call.
private func loopSource(loads: String = "", call: String) -> String {
    """
    export function l $loop(l %n) {
    @start
    	jmp @head
    @head
    	%i =l phi @start 0, @body %i1
    	%s =l phi @start 0, @body %s1
    	%more =w csltl %i, %n
    	jnz %more, @body, @done
    @body
    \(loads)	%r =l \(call)
    	%s1 =l add %s, %r
    	%i1 =l add %i, 1
    	jmp @head
    @done
    	ret %s
    }

    """
}

private let cCallSource = """
    __attribute__((noinline, noclone)) static long callee_static(long x) { return x + 1; }
    __attribute__((noinline, noclone)) long callee_global(long x) { return x + 1; }
    long (*callee_pointer)(long) = callee_global;

    long loop_direct(long n) { long s = 0; for (long i = 0; i < n; i++) s += callee_static(i); return s; }
    long loop_plt(long n) { long s = 0; for (long i = 0; i < n; i++) s += callee_global(i); return s; }
    long loop_pointer(long n) { long s = 0; for (long i = 0; i < n; i++) s += callee_pointer(i); return s; }

    """

/// One loop to time and the samples it gave.
private struct CallLoop {
    var runner: String
    var kind: String
    var function: LoopFunction
    var times: [Double] = []
}

/// Compiles IL text into a module named `name`.
private func compile(_ name: String, _ text: String) throws -> CompiledModule {
    let (module, diagnostics) = parseAndVerify(SourceFile(name: name, text: text))
    if let error = diagnostics.first(where: { $0.severity == .error }) {
        throw UsageError(description: "\(name): \(error.rendered)")
    }
    return try compileModule(module)
}

/// The callback stub of `crate`'s function `name`, as a loop.
private func loopFunction(_ crate: Crate, _ name: String = "loop") throws -> LoopFunction {
    guard let index = crate.functionIndex(named: name) else { throw UsageError(description: "\(crate.name): no $\(name)") }
    return unsafeBitCast(try crate.stub(ofFunction: index), to: LoopFunction.self)
}

func runCallTable(gcc: String, calls: Int, rounds: Int, scratch: TemporaryDirectory) throws {
    progress("crates: calls: building")
    let loadBefore = loadAverage()
    var loops: [CallLoop] = []

    let direct = try Loader(options: .init()).load(try compile("intra.ssa", calleeSource + loopSource(call: "call $callee(l %i)")))
    loops.append(CallLoop(runner: "kiln", kind: "direct", function: try loopFunction(direct)))
    let viaTOC = try Loader(options: .init()).load([
        try compile("caller.ssa", loopSource(call: "call $callee(l %i)")),
        try compile("callee.ssa", "export " + calleeSource),
    ])
    loops.append(CallLoop(runner: "kiln", kind: "TOC / PLT", function: try loopFunction(viaTOC[0])))
    let pointer = try Loader(options: .init()).load(try compile("pointer.ssa", "data $target = { l $callee }\n" + calleeSource
        + loopSource(loads: "\t%f =l loadl $target\n", call: "call %f(l %i)")))
    loops.append(CallLoop(runner: "kiln", kind: "pointer", function: try loopFunction(pointer)))
    // The loops call into these crates' code: keep them (and their loaders) to the end.
    defer { withExtendedLifetime((direct, viaTOC, pointer)) {} }

    let cFile = scratch.file("calls.c"), library = scratch.file("calls.so")
    try write(Array(cCallSource.utf8), to: cFile)
    let built = try runProcess([gcc, "-O2", "-shared", "-fPIC", "-o", library, cFile], in: scratch)
    guard built.succeeded else { throw UsageError(description: "gcc -shared calls.c: \(built.errorSummary)") }
    guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
        throw UsageError(description: "dlopen \(library): \(dlerror().map { String(cString: $0) } ?? "failed")")
    }
    defer { dlclose(handle) }
    for (symbol, kind) in [("loop_direct", "direct"), ("loop_plt", "TOC / PLT"), ("loop_pointer", "pointer")] {
        guard let address = dlsym(handle, symbol) else { throw UsageError(description: "calls.so: no \(symbol)") }
        loops.append(CallLoop(runner: "gcc -O2", kind: kind, function: unsafeBitCast(address, to: LoopFunction.self)))
    }

    // Warm-up: binds the TOC slot and checks every loop's sum.
    var problems: [String] = []
    let n = Int64(calls)
    for index in loops.indices {
        let result = loops[index].function(1000)
        if result != 500_500 { problems.append("\(loops[index].runner) \(loops[index].kind): loop(1000) = \(result), not 500500") }
    }
    for round in 1...rounds {
        progress("crates: calls: round \(round) of \(rounds)")
        for index in loops.indices {
            let (result, time) = timed { loops[index].function(n) }
            if result != n &* (n &+ 1) / 2 { problems.append("\(loops[index].runner) \(loops[index].kind): wrong sum \(result)") }
            loops[index].times.append(time)
        }
    }

    func perCall(_ runner: String, _ kind: String) -> Double {
        median(loops.first { $0.runner == runner && $0.kind == kind }!.times) / Double(calls) * 1e9
    }
    var rows: [[String]] = [["ns per call", "direct", "TOC / PLT", "pointer", "TOC - direct", "pointer - direct"]]
    for runner in ["kiln", "gcc -O2"] {
        let figures = ["direct", "TOC / PLT", "pointer"].map { perCall(runner, $0) }
        rows.append([runner] + figures.map { Format.fixed($0, 2) }
            + [Format.fixed(figures[1] - figures[0], 2), Format.fixed(figures[2] - figures[0], 2)])
    }
    print("kiln-bench crates: calls, median of \(rounds) rounds of \(Format.grouped(calls)) calls after 1 warm-up (ns per call, loop included)")
    print(columns(rows))
    print("notes:")
    print("  callee(x) = x + 1, never inlined; loop(n) sums callee(i) for i < n, and every sum is checked")
    print("  kiln direct: $callee in the same crate (call rel32); TOC: $callee exported by a second crate, called")
    print("    through the caller's TOC slot (bound at the warm-up); pointer: `%f =l loadl $target; call %f(...)`")
    print("    in every iteration, $target holding $callee's callback stub (jmp rel32 to the code)")
    print("  gcc -O2 -shared -fPIC, dlopened: static noinline callee (call rel32); global noinline callee (call via")
    print("    the PLT); a global function pointer loaded in every iteration (through the GOT)")
    print("  $loop is entered from Swift through its own callback stub, once per round")
    print("  machine: \(processorCount()) processors; load average \(loadBefore) before, \(loadAverage()) after")
    if !problems.isEmpty {
        print("  PROBLEMS:")
        for problem in problems { print("    " + problem) }
    }
    let ratios = [("TOC", perCall("kiln", "TOC / PLT") / perCall("gcc -O2", "TOC / PLT")),
                  ("stub", perCall("kiln", "pointer") / perCall("gcc -O2", "pointer"))]
    let summary = ratios.map { "\($0.0) \(Format.fixed($0.1, 2))x gcc's" }.joined(separator: ", ")
    let standing = ratios.allSatisfy { $0.1 <= 1.0 } ? "met (\(summary))" : "not met: \(summary)"
    print("goal: \(callGoal): \(standing)")
}

// MARK: - Compaction

/// Ten functions: $f0 calls $f1 (which calls $f2, ... $f9), then $shared through the TOC,
/// then $f9 through the stub kept in $table.
private func compactionCrateSource() -> String {
    var text = "data $table = { l $f9 }\n"
    text += """
        function l $f0(l %x) {
        @start
        	%a =l call $f1(l %x)
        	%b =l call $shared(l %a)
        	%f =l loadl $table
        	%c =l call %f(l %b)
        	ret %c
        }

        """
    for index in 1...9 {
        let call = index < 9 ? "\t%e =l call $f\(index + 1)(l %d)\n" : "\t%e =l copy %d\n"
        text += """
            function l $f\(index)(l %x) {
            @start
            	%a =l mul %x, \(index + 3)
            	%b =l xor %a, \(index * 7919)
            	%c =l shr %b, 3
            	%d =l add %c, %x
            \(call)	%g =l sub %e, \(index)
            	%h =l and %g, 1048575
            	%k =l or %h, \(index << 20)
            	ret %k
            }

            """
    }
    return text
}

private let sharedSource = """
    export function l $shared(l %x) {
    @start
    	%y =l add %x, 12345
    	ret %y
    }
    """

/// How the heap is fragmented before the compaction.
private enum Fragmentation: CaseIterable {
    /// `placementSeed`: a random gap before each crate's code, given back once it is placed.
    case randomGaps
    /// Every other crate unloaded, its code collected.
    case everyOtherUnloaded

    var label: String {
        switch self {
        case .randomGaps: "random gaps (placementSeed)"
        case .everyOtherUnloaded: "every other crate unloaded"
        }
    }
}

/// What one compaction did and took.
private struct CompactionSample {
    var report: Loader.CompactionReport
    var seconds: Double
    var liveBytes: Int
    /// Seconds per `unload`, when the crates were unloaded.
    var unloadSeconds: Double?
}

/// Loads `count` crates of `template` into a fresh loader, fragments its heap, runs every
/// crate left, compacts, and runs them again; a crate whose result changed is a problem.
private func compactOnce(_ fragmentation: Fragmentation, count: Int, round: Int, template: CompiledModule,
                         shared: CompiledModule, problems: inout [String]) throws -> CompactionSample {
    let seed: UInt64? = fragmentation == .randomGaps ? UInt64(round) : nil
    let loader = try Loader(options: .init(placementSeed: seed))
    _ = try loader.load(shared)
    var crates: [Crate] = []
    for index in 0..<count {
        var module = template
        module.name = "crate\(index).ssa"
        crates.append(try loader.load(module))
    }
    var unloadSeconds: Double?
    if fragmentation == .everyOtherUnloaded {
        let unloaded = crates.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        let time = try timed { () throws(LoadError) in for crate in unloaded { try loader.unload(crate) } }.seconds
        unloadSeconds = time / Double(unloaded.count)
        crates = crates.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
    }
    let entries = try crates.map { try loopFunction($0, "f0") }
    let before = entries.enumerated().map { $1(Int64($0)) }
    let live = loader.heapUsage.code
    let (report, time) = timed { loader.compact() }
    let after = entries.enumerated().map { $1(Int64($0)) }
    let context = "\(fragmentation.label), round \(round)"
    if after != before {
        let wrong = zip(before, after).filter { $0 != $1 }.count
        problems.append("\(context): \(wrong) of \(crates.count) crates return something else after compaction")
    }
    if report.blocksPinned > 0 { problems.append("\(context): \(report.blocksPinned) blocks pinned by the host's stack") }
    return CompactionSample(report: report, seconds: time, liveBytes: live, unloadSeconds: unloadSeconds)
}

func runCompactionTable(crates: Int, rounds: Int) throws {
    let loadBefore = loadAverage()
    let template = try compile("template.ssa", compactionCrateSource())
    let shared = try compile("shared.ssa", sharedSource)
    var problems: [String] = []
    let megabyte = 1_048_576.0
    func mb(_ bytes: Double) -> String { Format.fixed(bytes / megabyte, 2) }

    var rows: [[String]] = [["heap before compact()", "live MB", "blocks moved", "MB moved", "top MB before",
                             "top MB after", "compact ms", "ms per MB moved", "ms per MB live"]]
    var perLive: [Double] = []
    var unloadTimes: [Double] = []
    for fragmentation in Fragmentation.allCases {
        var samples: [CompactionSample] = []
        for round in 1...rounds {
            progress("crates: compaction: \(fragmentation.label): round \(round) of \(rounds)")
            samples.append(try compactOnce(fragmentation, count: crates, round: round, template: template,
                                           shared: shared, problems: &problems))
        }
        func middle(_ field: (CompactionSample) -> Double) -> Double { median(samples.map(field)) }
        let liveCost = middle { $0.seconds * 1000 / (Double($0.liveBytes) / megabyte) }
        perLive.append(liveCost)
        unloadTimes += samples.compactMap(\.unloadSeconds)
        rows.append([fragmentation.label, mb(middle { Double($0.liveBytes) }),
                     Format.grouped(Int(middle { Double($0.report.blocksMoved) })),
                     mb(middle { Double($0.report.bytesMoved) }),
                     mb(middle { Double($0.report.topBefore) }), mb(middle { Double($0.report.topAfter) }),
                     Format.fixed(middle { $0.seconds * 1000 }, 2),
                     Format.fixed(middle { $0.seconds * 1000 / (Double(max($0.report.bytesMoved, 1)) / megabyte) }, 2),
                     Format.fixed(liveCost, 2)])
    }

    print("kiln-bench crates: compaction, median of \(rounds) fresh loaders of \(Format.grouped(crates)) crates of 10 functions")
    print(columns(rows))
    print("notes:")
    print("  random gaps: Loader(options: .init(placementSeed: round)) puts a gap of 0-64 KiB before each crate's")
    print("    code and frees it once the crate is placed; first fit lets later crates fill most of them")
    print("  every other crate unloaded: loader.unload of the odd crates (code collected) before compacting;")
    print("    unload itself (not in the figures) took \(Format.fixed(median(unloadTimes) * 1000, 2)) ms per crate, median")
    print("  each crate's $f0 calls $f1..$f9 (call rel32), $shared in another crate (TOC slot) and $f9 through a")
    print("    stub in data; every remaining crate ran once before (slots bound, host stubs made) and once after")
    print("    compact(), with equal results")
    print("  compact() from the host: stack scan, sliding plan, copies through the writable alias, int3 fill,")
    print("    page release above the new top, every record of every live block applied again, slots and stubs")
    print("    re-pointed; live: code blocks with their 16-byte headers (heapUsage.code); MB = 2^20 bytes")
    print("  machine: \(processorCount()) processors; load average \(loadBefore) before, \(loadAverage()) after")
    if !problems.isEmpty {
        print("  PROBLEMS:")
        for problem in problems { print("    " + problem) }
    }
    let worst = perLive.max() ?? 0
    let standing = worst <= compactionGoalMilliseconds
        ? "met (at most \(Format.fixed(worst, 2)) ms per MB live)"
        : "not met: up to \(Format.fixed(worst, 2)) ms per MB live"
    print("goal: \(compactionGoal): \(standing)")
}
