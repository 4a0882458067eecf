// `kiln-bench heap`: the managed heap driven through its Swift API.
//
// Each workload runs in a fresh process (kiln-bench itself, as
// `heap --run WORKLOAD`), so its peak resident size is its own; the child
// prints `name=value` lines and the parent makes the table. Roots are
// explicit, as generated code's will be: a stack of frame slots that the
// workload's world reports to the collector (what stack maps will do), with
// references stored there across every allocation.
//
//   binarytrees  the benchmarks game's binary-trees at --depth (default 18):
//                time, peak resident size, collections, bytes allocated and
//                copied, pauses. Goal: faster than OCaml's native code (0.56 s
//                on this kind of machine) within its memory (32 MiB).
//   rate         allocation rate: 2-field objects that die at once.
//   pauses       pause times with a small live heap (1 MiB) and with a large
//                one (--live-mib, default 1024), while short-lived objects are
//                allocated around it.
//
// The IL version of binary-trees, and the peers, come with code generation.

import KilnManagedHeap
#if canImport(Glibc)
import Glibc
#endif

func runHeapBenchmark(_ arguments: [String]) throws {
    var arguments = arguments
    let only = extractList("only", from: &arguments)?.flatMap { $0.split(separator: ",").map(String.init) }
    let options = try Options(arguments, allowed: ["runs", "depth", "live-mib", "run", "nursery-kib", "growth"])
    let settings = HeapBenchmarkSettings(
        depth: try options.integer("depth", default: 18), liveMiB: try options.integer("live-mib", default: 1024),
        nurseryKiB: options.string("nursery-kib").flatMap { Int($0) }, growth: options.string("growth").flatMap { Double($0) })
    if let workload = options.string("run") {
        try runHeapWorkload(workload, settings)
        return
    }
    let runs = try options.integer("runs", default: 3)
    let workloads = only ?? ["binarytrees", "rate", "pauses"]
    guard let myself = executablePath() else { throw UsageError(description: "cannot find kiln-bench's own path") }
    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }
    var passOn = ["--depth", String(settings.depth), "--live-mib", String(settings.liveMiB)]
    if let nursery = settings.nurseryKiB { passOn += ["--nursery-kib", String(nursery)] }
    if let growth = settings.growth { passOn += ["--growth", String(growth)] }
    var rows: [[String]] = [["workload", "time", "peak RSS", "allocated", "rate", "minor/full", "copied", "pause p50", "p99", "max"]]
    for workload in workloads {
        var samples: [[String: String]] = []
        for run in 0..<(workload == "pauses" ? 1 : runs) {
            progress("heap: \(workload) run \(run + 1)")
            let result = try runProcess([myself, "heap", "--run", workload] + passOn, in: scratch)
            guard result.succeeded else { throw UsageError(description: "heap \(workload): \(result.errorSummary)") }
            for block in result.outputText.split(separator: "\n\n") {
                var figures: [String: String] = [:]
                for line in block.split(separator: "\n") {
                    let parts = line.split(separator: "=", maxSplits: 1)
                    if parts.count == 2 { figures[String(parts[0])] = String(parts[1]) }
                }
                if !figures.isEmpty { samples.append(figures) }
            }
        }
        for name in Set(samples.compactMap { $0["name"] }).sorted() {
            let runsOfName = samples.filter { $0["name"] == name }
            // The run with the median time stands for all.
            let sorted = runsOfName.sorted { Double($0["seconds"] ?? "0")! < Double($1["seconds"] ?? "0")! }
            rows.append(row(name, sorted[sorted.count / 2]))
        }
    }
    print(columns(rows))
    print("""

        time and peak RSS (resident set of the whole process) of the median of \(runs) runs, each in a fresh
        process; rate = bytes allocated per second of the workload; pauses from stop to resume of each
        collection (to a bucket's precision, about 4%). Load average: \(loadAverage()).
        goal: binary-trees depth 18 faster than OCaml native (0.56 s) within its memory (32 MiB).
        """)
}

private func row(_ name: String, _ figures: [String: String]) -> [String] {
    func number(_ key: String) -> Double { Double(figures[key] ?? "0") ?? 0 }
    let seconds = number("seconds")
    let allocated = number("allocated")
    return [name, Format.fixed(seconds, 3) + " s", Format.megabytes(Int(number("peak"))),
            Format.megabytes(Int(allocated)), Format.fixed(allocated / seconds / 1e9, 2) + " GB/s",
            "\(figures["minor"] ?? "0")/\(figures["full"] ?? "0")", Format.megabytes(Int(number("copied"))),
            Format.fixed(number("p50") / 1e6, 3) + " ms", Format.fixed(number("p99") / 1e6, 3) + " ms",
            Format.fixed(number("max") / 1e6, 3) + " ms"]
}

struct HeapBenchmarkSettings {
    var depth: Int
    var liveMiB: Int
    var nurseryKiB: Int?
    var growth: Double?

    func configuration(limit: Int) -> HeapConfiguration {
        var configuration = HeapConfiguration(limit: limit)
        if let nurseryKiB { configuration.nurseryBytes = nurseryKiB << 10 }
        if let growth { configuration.growthFactor = growth }
        return configuration
    }
}

/// Root slots in frames, as stack maps will report them: the world of the workloads.
final class FrameSlots: HeapWorld {
    let slots: UnsafeMutablePointer<UInt64>
    let top: UnsafeMutablePointer<Int>

    init(capacity: Int) {
        slots = .allocate(capacity: capacity)
        top = .allocate(capacity: 1)
        top.pointee = 0
    }

    deinit {
        slots.deallocate()
        top.deallocate()
    }

    @inline(__always) func push(_ value: Value) {
        slots[top.pointee] = value.bits
        top.pointee += 1
    }

    @inline(__always) func value(_ index: Int) -> Value { Value(bits: slots[index]) }

    func stopForCollection() -> Bool { true }
    func visitRoots(_ visitor: borrowing RootVisitor) { visitor.visit(slots, count: top.pointee) }
    func resumeAfterCollection() {}
}

/// Runs one workload in this process and prints its figures.
private func runHeapWorkload(_ workload: String, _ settings: HeapBenchmarkSettings) throws {
    switch workload {
    case "binarytrees":
        let heap = try ManagedHeap(configuration: settings.configuration(limit: 1 << 30))
        let frames = FrameSlots(capacity: 1024)
        heap.world = frames
        let mutator = try Mutator(heap: heap)
        let clock = Stopwatch()
        try binaryTrees(settings.depth, mutator, frames)
        report("binary-trees depth \(settings.depth)", heap, seconds: clock.elapsed)
    case "rate":
        let heap = try ManagedHeap(configuration: settings.configuration(limit: 1 << 30))
        let mutator = try Mutator(heap: heap)
        let clock = Stopwatch()
        for _ in 0..<100_000_000 { _ = try mutator.allocate(fields: 2) }
        report("rate: 100M objects of 2 fields", heap, seconds: clock.elapsed)
    case "pauses":
        for (label, liveMiB) in [("small", 1), ("large", settings.liveMiB)] {
            let heap = try ManagedHeap(configuration: settings.configuration(limit: max(4 * liveMiB << 20, 64 << 20)))
            let frames = FrameSlots(capacity: 16)
            heap.world = frames
            let mutator = try Mutator(heap: heap)
            try buildLiveSet(bytes: liveMiB << 20, mutator, frames)
            try heap.collect()
            let before = heap.statistics
            let clock = Stopwatch()
            // Garbage: twice the live bytes and at least 2 GB, in 2-field objects.
            let garbage = max(2 * liveMiB << 20, 2 << 30) / 24
            for _ in 0..<garbage { _ = try mutator.allocate(fields: 2) }
            report("pauses, \(label) live heap (\(liveMiB) MiB)", heap, seconds: clock.elapsed, since: before)
        }
    default:
        throw UsageError(description: "no heap workload \(workload) (binarytrees, rate, pauses)")
    }
}

/// A monotonic stopwatch.
struct Stopwatch {
    let start = ContinuousClock.now
    var elapsed: Double {
        let duration = ContinuousClock.now - start
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}

/// Prints a workload's figures as `name=value` lines, a blank line after.
private func report(_ name: String, _ heap: ManagedHeap, seconds: Double, since before: HeapStatistics? = nil) {
    let figures = heap.statistics
    let pauses = figures.pauses
    print("""
        name=\(name)
        seconds=\(seconds)
        peak=\(MemoryUsage.now().peak)
        allocated=\(figures.allocatedBytes - (before?.allocatedBytes ?? 0))
        minor=\(figures.minorCollections - (before?.minorCollections ?? 0))
        full=\(figures.fullCollections - (before?.fullCollections ?? 0))
        copied=\(figures.copiedBytes - (before?.copiedBytes ?? 0))
        p50=\(pauses.percentile(0.5))
        p99=\(pauses.percentile(0.99))
        max=\(pauses.longestNanoseconds)

        """)
}

// MARK: binary-trees

/// A tree of `depth`: leaves are nodes whose two fields are the integer 0. Both subtrees wait in
/// frame slots while the node that holds them is allocated.
private func bottomUp(_ depth: Int, _ mutator: borrowing Mutator, _ frames: FrameSlots) throws(HeapError) -> Value {
    if depth == 0 { return try mutator.allocate(fields: 2) }
    let base = frames.top.pointee
    frames.push(try bottomUp(depth - 1, mutator, frames))
    frames.push(try bottomUp(depth - 1, mutator, frames))
    let node = try mutator.allocate(fields: 2)
    mutator.unsafeSetField(0, of: node, to: frames.value(base))
    mutator.unsafeSetField(1, of: node, to: frames.value(base + 1))
    frames.top.pointee = base
    return node
}

/// The number of nodes of a tree (allocates nothing, so the tree cannot move meanwhile).
private func check(_ tree: Value, _ mutator: borrowing Mutator) -> Int {
    let left = mutator.unsafeField(0, of: tree)
    guard left.isReference else { return 1 }
    return 1 + check(left, mutator) + check(mutator.unsafeField(1, of: tree), mutator)
}

private func binaryTrees(_ maxDepth: Int, _ mutator: borrowing Mutator, _ frames: FrameSlots) throws {
    let minDepth = 4
    let stretch = maxDepth + 1
    let stretched = check(try bottomUp(stretch, mutator, frames), mutator)
    try expect(stretched, (1 << (stretch + 1)) - 1, "stretch tree of depth \(stretch)")
    frames.push(try bottomUp(maxDepth, mutator, frames))
    let longLived = frames.top.pointee - 1
    for depth in stride(from: minDepth, through: maxDepth, by: 2) {
        let iterations = 1 << (maxDepth - depth + minDepth)
        var total = 0
        for _ in 0..<iterations { total += check(try bottomUp(depth, mutator, frames), mutator) }
        try expect(total, iterations * ((1 << (depth + 1)) - 1), "\(iterations) trees of depth \(depth)")
    }
    try expect(check(frames.value(longLived), mutator), (1 << (maxDepth + 1)) - 1, "long lived tree of depth \(maxDepth)")
    frames.top.pointee = longLived
}

private func expect(_ found: Int, _ wanted: Int, _ what: String) throws {
    guard found == wanted else { throw UsageError(description: "\(what): check \(found), expected \(wanted)") }
}

// MARK: pauses

/// A live set of `bytes` bytes: a list of 8-field objects (72 bytes each), kept in a frame slot.
private func buildLiveSet(bytes: Int, _ mutator: borrowing Mutator, _ frames: FrameSlots) throws {
    frames.push(.zero)
    let head = frames.top.pointee - 1
    for index in 0..<(bytes / 72) {
        let cell = try mutator.allocate(fields: 8)
        mutator.unsafeSetField(0, of: cell, to: frames.value(head))
        mutator.unsafeSetField(1, of: cell, to: Value(integer: index))
        frames.slots[head] = cell.bits
    }
}
