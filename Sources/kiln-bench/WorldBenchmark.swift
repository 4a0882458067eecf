// `kiln-bench world`: what stopping the world and moving code cost.
//
// Pause: the time every other thread is kept stopped while the code heap is
// compacted (`Loader.Statistics.lastPauseNanoseconds`: from the stop to the
// resume, scanning each thread's registers and stack included), with 0, 1, 4
// and 16 other threads that either run generated code (a loop in a crate,
// entered through its stub) or wait in the kernel (read on an empty pipe).
// Goal: at most 50 µs plus 10 µs per thread.
//
// Compaction moving one block: a heap of N functions (1k, 10k, 100k), each
// calling the next, plus two one-function crates at the top; each round
// unloads one of them and compacts, so exactly one block (the other) slides
// down, then loads it again. Goal: the same time whatever N.

import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader
#if canImport(Glibc)
import Glibc
#endif

func runWorldBenchmark(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["runs", "sizes", "threads"])
    let runs = try options.integer("runs", default: 1000)
    let sizes = (options.string("sizes") ?? "1000,10000,100000").split(separator: ",").compactMap { Int($0) }
    let threadCounts = (options.string("threads") ?? "0,1,4,16").split(separator: ",").compactMap { Int($0) }
    var rows: [[String]] = [["other threads", "doing", "median µs", "p99 µs", "max µs", "goal µs"]]
    for count in threadCounts {
        for busy in count == 0 ? [false] : [true, false] {
            let (median, p99, maximum) = try pauseCase(threads: count, busy: busy, runs: runs)
            rows.append(["\(count)", count == 0 ? "-" : busy ? "running Kiln code" : "waiting in read()",
                         Format.fixed(median, 1), Format.fixed(p99, 1), Format.fixed(maximum, 1), "\(50 + 10 * count)"])
        }
    }
    print("Stop-the-world pause during a compaction (\(runs) runs each), \(processorCount()) cores, load \(loadAverage())")
    print(columns(rows))
    print("  the pause runs from stopping the other threads to resuming them: signals, their")
    print("  answers, scanning their registers and stacks, planning and moving; 2 cores, so busy")
    print("  threads beyond 2 wait for a processor before they can answer\n")

    var compactionRows: [[String]] = [["functions in the heap", "median µs", "p99 µs", "blocks moved"]]
    for size in sizes {
        let (median, p99, moved) = try oneBlockCase(functions: size, runs: max(runs / 10, 50))
        compactionRows.append([Format.grouped(size), Format.fixed(median, 1), Format.fixed(p99, 1), "\(moved)"])
    }
    print("Compaction that moves one block, by heap size")
    print(columns(compactionRows))
    print("  goal: the same time at every size (the cost is what moves, not what stays)")
}

private let spinCrate = """
    export data $stop = { l 0 }
    export function l $spin(l %x) {
    @start
    	%i =l copy 0
    @loop
    	%i =l add %i, 1
    	%s =l loadl $stop
    	jnz %s, @done, @loop
    @done
    	ret %i
    }
    """

private final class Spinner: @unchecked Sendable {
    let entry: UInt
    init(_ entry: UInt) { self.entry = entry }
}

/// Median, p99 and max pause (µs) of compactions with `threads` other threads.
private func pauseCase(threads: Int, busy: Bool, runs: Int) throws -> (Double, Double, Double) {
    World.acceptStops()
    let loader = try Loader(options: .init())
    let (parsed, diagnostics) = parseAndVerify(SourceFile(name: "spin.ssa", text: spinCrate))
    guard diagnostics.isEmpty else { throw UsageError(description: "\(diagnostics[0])") }
    let crate = try loader.load(try compileModule(parsed))
    let spinner = Spinner(UInt(bitPattern: try crate.stub(ofFunction: crate.functionIndex(named: "spin")!)))
    var pipes = [Int32](repeating: 0, count: 2)
    guard pipe(&pipes) == 0 else { throw UsageError(description: "pipe failed") }
    var started: [pthread_t] = []
    for _ in 0..<threads {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Spinner(busy ? spinner.entry : UInt(pipes[0]))).toOpaque()
        let body: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = busy ? { raw in
            let spinner = Unmanaged<Spinner>.fromOpaque(raw!).takeRetainedValue()
            _ = unsafeBitCast(UnsafeRawPointer(bitPattern: spinner.entry)!, to: (@convention(c) (Int64) -> Int64).self)(0)
            return nil
        } : { raw in
            let descriptor = Int32(Unmanaged<Spinner>.fromOpaque(raw!).takeRetainedValue().entry)
            var byte: UInt8 = 0
            _ = read(descriptor, &byte, 1)
            return nil
        }
        guard pthread_create(&thread, nil, body, context) == 0 else { throw UsageError(description: "pthread_create failed") }
        started.append(thread)
    }
    usleep(20_000)
    var samples: [Double] = []
    for run in 0..<(runs + 20) {
        loader.compact()
        if run >= 20 { samples.append(Double(loader.statistics.lastPauseNanoseconds) / 1000) }
    }
    crate.address(ofData: crate.dataIndex(named: "stop")!).storeBytes(of: 1, as: Int64.self)
    let bytes = [UInt8](repeating: 0, count: threads)
    _ = write(pipes[1], bytes, bytes.count)
    for thread in started { pthread_join(thread, nil) }
    close(pipes[0])
    close(pipes[1])
    samples.sort()
    return (samples[samples.count / 2], samples[samples.count * 99 / 100], samples.last!)
}

/// A crate of `count` functions, each calling the next (a direct call: a record), made
/// without the compiler so a 100,000-function heap is quick to build.
private func chainModule(_ name: String, functions count: Int) -> CompiledModule {
    var functions: [CodeObject] = []
    functions.reserveCapacity(count)
    for index in 0..<count {
        // call rel32 (the next function), then ret; the last one only returns.
        if index + 1 < count {
            functions.append(CodeObject(name: "f\(index)", isExported: index == 0, code: [0xE8, 0, 0, 0, 0, 0xC3],
                                        relocations: [Relocation(offset: 1, kind: .pcRelative32, target: .function(index + 1), addend: -4)]))
        } else {
            functions.append(CodeObject(name: "f\(index)", isExported: false, code: [0xC3], relocations: []))
        }
    }
    return CompiledModule(name: name, functions: functions, data: [])
}

/// Median and p99 (µs) of a compaction that moves exactly one block in a heap of `functions`.
private func oneBlockCase(functions: Int, runs: Int) throws -> (Double, Double, Int) {
    let loader = try Loader(options: .init())
    _ = try loader.load(chainModule("chain", functions: functions))
    let small = [chainModule("x", functions: 1), chainModule("y", functions: 1)]
    var loaded = [try loader.load(small[0]), try loader.load(small[1])]
    var samples: [Double] = []
    var moved = 0
    let clock = ContinuousClock()
    for run in 0..<(runs + 10) {
        // Unload the lower of the two: the other slides down by one block.
        let lower = loaded[0].blocks[0].entry < loaded[1].blocks[0].entry ? 0 : 1
        try loader.unload(loaded[lower])
        loader.collectCode()
        var report: Loader.CompactionReport?
        let elapsed = clock.measure { report = loader.compact() }
        if run >= 10 {
            samples.append(Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) * 1e-12)
            moved = report!.blocksMoved
        }
        loaded[lower] = try loader.load(small[lower])
    }
    samples.sort()
    return (samples[samples.count / 2], samples[samples.count * 99 / 100], moved)
}
