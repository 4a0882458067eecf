// `kiln-bench callbacks`: calls from C into Kiln's code through callback stubs.
//
// A function's address handed to C is its callback stub, a never-moving
// `jmp rel32` to the function's current code (KilnLoader/CallbackStubs.swift).
// The goal is that a call through a stub costs within 10% of a C call through
// a function pointer. The workload is libc qsort of `--count` ints (default
// 2,000,000; the same pseudo-random input every run, copied fresh before each
// sort, the copy not timed), called from C (`sort_with` in
// Benchmarks/callbacks/sort_with.c) with four comparators:
//
//   C             the .so's own C comparator (gcc -O2): the baseline;
//   kiln stub     an IL comparator compiled and loaded by Kiln, through its stub;
//   kiln entry    the same code through its entry address, without the stub,
//                 which shows the stub's own cost;
//   libffi        a libffi closure whose handler runs the C comparator's logic,
//                 the usual way a dynamic language hands C a callback.
//
// The .so is built at run time with gcc into a temporary directory and opened
// with dlopen. Each comparator sorts once as a warm-up, then `--runs` times,
// taking turns; every result is checked against a sort done in Swift. The
// figures are the thread's processor time in each sort (on a shared machine,
// wall time also counts waiting for a processor; it is printed beside). The
// comparisons of one sort are counted once, outside the timed runs, by a C
// wrapper, to give nanoseconds per comparison.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KilnCodegen
import KilnIL
import KilnLoader

private let callbacksGoal = "a call through a callback stub within 10% of a C call through a function pointer"

/// The IL comparator: two loads, two compares, a subtraction (what gcc makes of the C one).
private let comparatorIL = """
    export function w $compare(l %a, l %b) {
    @start
    	%x =w loadw %a
    	%y =w loadw %b
    	%greater =w csgtw %x, %y
    	%less =w csltw %x, %y
    	%order =w sub %greater, %less
    	ret %order
    }

    """

/// `sort_with(int *a, size_t n, int (*cmp)(const void *, const void *))`; the comparator is
/// passed as a plain address, since a stub or a closure is not a Swift function.
private typealias SortWith = @convention(c) (UnsafeMutablePointer<Int32>, Int, UnsafeRawPointer) -> Void
/// `count_comparisons`: sorts like sort_with and returns the number of comparator calls.
private typealias CountComparisons = @convention(c) (UnsafeMutablePointer<Int32>, Int, UnsafeRawPointer) -> UInt64
/// `make_ffi_comparator`: a libffi closure's code address, or NULL.
private typealias MakeComparator = @convention(c) () -> UnsafeMutableRawPointer?

/// One way of comparing: its row label, the address C calls, and its timed sorts.
private struct Comparator {
    var name: String
    var address: UnsafeRawPointer
    var comparisons: UInt64 = 0
    /// Wall seconds of each timed sort.
    var times: [Double] = []
    /// The thread's processor seconds in each timed sort: time the machine's other work
    /// took the processor away is left out, so these vary less on a busy machine.
    var processorTimes: [Double] = []
}

/// The calling thread's processor time so far, in seconds.
private func threadProcessorTime() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// Benchmarks/callbacks: `--dir`, else found from the working directory or upwards from this executable.
private func callbacksDirectory(_ given: String?) throws -> String {
    try benchmarkDirectory("callbacks", marker: "sort_with.c", given: given)
}

/// Builds the C side into `scratch` and opens it; the handle stays open for the life of the process.
private func buildSortLibrary(from directory: String, gcc: String, in scratch: TemporaryDirectory) throws -> UnsafeMutableRawPointer {
    let library = scratch.file("libcallbacks.so")
    let command = [gcc, "-O2", "-shared", "-fPIC", "-o", library,
                   directory + "/sort_with.c", directory + "/ffi_comparator.c", "-lffi"]
    let result = try runProcess(command, in: scratch)
    guard result.succeeded else {
        throw UsageError(description: "cannot build the C side (\(command.joined(separator: " "))): \(result.errorSummary)"
            + " (libffi's headers come with apt-get install -y libffi-dev)")
    }
    guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
        throw UsageError(description: "dlopen \(library): \(String(cString: dlerror()))")
    }
    return handle
}

/// The C function `name` of `handle`, as a function of type `type`.
private func symbol<Function>(_ name: String, in handle: UnsafeMutableRawPointer, as type: Function.Type) throws -> Function {
    guard let address = dlsym(handle, name) else {
        throw UsageError(description: "the C side has no \(name)")
    }
    // Safe: `type` is the C declaration of `name` in Benchmarks/callbacks, spelled in Swift.
    return unsafeBitCast(address, to: type)
}

/// `count` pseudo-random ints (xorshift64*, so every run and every machine sorts the same input).
private func sortInput(count: Int, seed: UInt64) -> [Int32] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return Int32(truncatingIfNeeded: (state &* 0x2545_F491_4F6C_DD1D) >> 32)
    }
}

func runCallbacksBenchmark(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["runs", "count", "dir"])
    let runs = try options.integer("runs", default: 5)
    let count = try options.integer("count", default: 2_000_000)
    let directory = try callbacksDirectory(options.string("dir"))
    guard let gcc = findOnPath("gcc") else {
        throw UsageError(description: "gcc is not installed; it builds the C side (apt-get install -y gcc)")
    }

    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }
    let loadBefore = loadAverage()

    progress("callbacks: building the C side")
    let library = try buildSortLibrary(from: directory, gcc: gcc, in: scratch)
    let sortWith = try symbol("sort_with", in: library, as: SortWith.self)
    let countComparisons = try symbol("count_comparisons", in: library, as: CountComparisons.self)
    let makeFFIComparator = try symbol("make_ffi_comparator", in: library, as: MakeComparator.self)
    guard let cCompare = dlsym(library, "c_compare") else { throw UsageError(description: "the C side has no c_compare") }
    guard let ffiComparator = makeFFIComparator() else { throw UsageError(description: "libffi could not make a closure") }

    progress("callbacks: compiling the IL comparator")
    let (module, diagnostics) = parseAndVerify(SourceFile(name: "compare.ssa", text: comparatorIL))
    if let error = diagnostics.first(where: { $0.severity == .error }) {
        throw UsageError(description: "the IL comparator does not verify: \(error.rendered)")
    }
    let loader = try Loader(options: .init())
    let crate = try loader.load(try compileModule(module))
    let function = crate.functionIndex(named: "compare")!
    let stub = try crate.stub(ofFunction: function)
    // The comparators point into the crate's code: keep its loader to the end.
    defer { withExtendedLifetime(crate) {} }
    // Safe to keep for the run: nothing compacts the heap (compactEvery is 0), so the entry stays put.
    let entry = UnsafeRawPointer(bitPattern: crate.entry(ofFunction: function))!

    var comparators = [
        Comparator(name: "C (gcc -O2) via pointer", address: UnsafeRawPointer(cCompare)),
        Comparator(name: "kiln stub", address: stub),
        Comparator(name: "kiln entry (no stub)", address: entry),
        Comparator(name: "libffi closure", address: UnsafeRawPointer(ffiComparator)),
    ]

    let input = sortInput(count: count, seed: 0x4B49_4C4E)
    let expected = input.sorted()
    let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: count)
    defer { buffer.deallocate() }
    func refill() {
        // Safe: `buffer` holds exactly `count` ints, as many as `input`.
        _ = input.withUnsafeBufferPointer { memcpy(buffer.baseAddress!, $0.baseAddress!, count * 4) }
    }
    func checkSorted(_ comparator: Comparator) throws {
        let same = expected.withUnsafeBufferPointer { memcmp(buffer.baseAddress!, $0.baseAddress!, count * 4) == 0 }
        guard same else { throw UsageError(description: "\(comparator.name): qsort's result is not sorted") }
    }

    // Counting and warm-up, outside the timed runs.
    for index in comparators.indices {
        refill()
        comparators[index].comparisons = countComparisons(buffer.baseAddress!, count, comparators[index].address)
        try checkSorted(comparators[index])
        refill()
        sortWith(buffer.baseAddress!, count, comparators[index].address)
        try checkSorted(comparators[index])
    }
    // Each round starts with the next comparator, so none always follows the same one.
    for round in 0..<runs {
        progress("callbacks: run \(round + 1) of \(runs)")
        for turn in comparators.indices {
            let index = (round + turn) % comparators.count
            refill()
            let address = comparators[index].address
            let start = threadProcessorTime()
            comparators[index].times.append(seconds { sortWith(buffer.baseAddress!, count, address) })
            comparators[index].processorTimes.append(threadProcessorTime() - start)
            try checkSorted(comparators[index])
        }
    }
    withExtendedLifetime((loader, crate)) {}

    let baseline = median(comparators[0].processorTimes)
    var rows: [[String]] = [["comparator", "wall median", "cpu median", "cpu best", "ns/comparison", "vs C"]]
    for comparator in comparators {
        let time = median(comparator.processorTimes)
        rows.append([comparator.name, Format.milliseconds(median(comparator.times)), Format.milliseconds(time),
                     Format.milliseconds(comparator.processorTimes.min()!),
                     Format.fixed(time * 1e9 / Double(comparator.comparisons), 2), Format.fixed(time / baseline, 2)])
    }
    let comparisons = comparators[0].comparisons
    let sameCounts = comparators.allSatisfy { $0.comparisons == comparisons }
    let stubTime = median(comparators[1].processorTimes)
    let entryTime = median(comparators[2].processorTimes)
    let stubCost = (stubTime - entryTime) * 1e9 / Double(comparisons)

    print("kiln-bench callbacks: libc qsort of \(Format.grouped(count)) ints, median of \(runs) runs after 1 warm-up, results checked")
    print(columns(rows))
    print("notes:")
    print("  one sort makes \(Format.grouped(Int(comparisons))) comparisons"
        + (sameCounts ? " with every comparator" : " with C (others: \(comparators.map { Format.grouped(Int($0.comparisons)) }.joined(separator: ", ")))"))
    print("  cpu: the thread's processor time (CLOCK_THREAD_CPUTIME_ID) in the sort; ns/comparison, vs C and")
    print("    the goal use its median; wall: elapsed time, which on a busy machine includes waiting for a processor")
    print("  ns/comparison is the whole sort's time over its comparisons: qsort's own work included")
    print("  C side: \(gcc) -O2 -shared -fPIC \(directory)/sort_with.c \(directory)/ffi_comparator.c -lffi")
    print("  kiln: the IL comparator compiled in-process (parseAndVerify, compileModule, Loader.load);")
    print("    stub = Crate.stub(ofFunction:), entry = Crate.entry(ofFunction:)")
    print("  the stub's own cost: stub/entry \(Format.fixed(stubTime / entryTime, 3)), "
        + "\(Format.fixed(stubCost, 2)) ns per call")
    print("  machine: \(processorCount()) processors; load average \(loadBefore) before, \(loadAverage()) after")
    let ratio = stubTime / baseline
    let standing = ratio <= 1.10
        ? "met (kiln stub / C \(Format.fixed(ratio, 2)))"
        : "not met: kiln stub / C \(Format.fixed(ratio, 2)) (stub / entry \(Format.fixed(stubTime / entryTime, 2)))"
    print("goal: \(callbacksGoal): \(standing)")
}
