// `kiln-bench crates`: what crates cost and buy at run time, in three tables.
//
//   1. Loading. For each program in Benchmarks/programs, in-process: compiling
//      its IL and loading the result (`compile`), decoding its crate file and
//      loading that (`kcrate`), and dlopen + dlclose of gcc -O2's shared object
//      of the same C (`dlopen`). The three take turns in every round; each
//      figure is a median of --runs after a warm-up.
//   2. Calls (CratesBenchmark+Runtime.swift): ns per call of a tiny function
//      called directly inside a crate, through a TOC slot from another crate,
//      and through a function pointer (a callback stub), beside gcc -O2's
//      direct, PLT and pointer calls in a dlopened object.
//   3. Compaction (CratesBenchmark+Runtime.swift): one `Loader.compact()` of a
//      heap of many crates, fragmented by random gaps or by unloading every
//      other crate, per megabyte of code moved and live.
//
// Every Loader is made outside the timed region. Results of generated code are
// checked against their closed forms; a wrong one is a PROBLEM, not a figure.

import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let loadGoal = "loading a crate file at least 20x faster than compiling the IL (geometric mean of compile/kcrate ≥ 20)"
private let loadGoalRatio = 20.0

/// How many copies of each shared object dlopen cycles through, so that no open meets a
/// copy glibc still holds (each dlclose is also checked to unload, with RTLD_NOLOAD).
private let sharedObjectCopies = 8

func runCratesBenchmark(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["runs", "calls", "rounds", "crates", "dir"])
    let runs = try options.integer("runs", default: 31)
    let calls = try options.integer("calls", default: 100_000_000)
    let rounds = try options.integer("rounds", default: 5)
    let crateCount = try options.integer("crates", default: 2_000)
    let directory = try programsDirectory(options.string("dir"))
    guard let gcc = findOnPath("gcc") else {
        throw UsageError(description: "gcc is not installed; it builds the shared objects to compare with (apt-get install -y gcc)")
    }
    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }

    try runLoadTable(directory: directory, gcc: gcc, runs: runs, scratch: scratch)
    print("")
    try runCallTable(gcc: gcc, calls: calls, rounds: rounds, scratch: scratch)
    print("")
    try runCompactionTable(crates: crateCount, rounds: rounds)
}

/// What one program's rounds measured, in seconds.
private struct LoadSamples {
    var compile: [Double] = []
    var decode: [Double] = []
    var load: [Double] = []
    var dlopen: [Double] = []

    var kcrate: [Double] { zip(decode, load).map { $0 + $1 } }
}

/// Runs `body` and returns its result with the seconds it took.
func timed<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> (value: T, seconds: Double) {
    let clock = ContinuousClock()
    let start = clock.now
    let value = try body()
    return (value, (clock.now - start).seconds)
}

/// Text to a loaded crate in `loader`: parseAndVerify, compileModule, load.
private func compileAndLoad(name: String, bytes: [UInt8], into loader: Loader) throws -> (CompiledModule, Crate) {
    let (module, diagnostics) = parseAndVerify(SourceFile(name: name, bytes: bytes))
    if let error = diagnostics.first(where: { $0.severity == .error }) {
        throw UsageError(description: "\(name): \(error.rendered)")
    }
    let compiled = try compileModule(module)
    return (compiled, try loader.load(compiled))
}

private func runLoadTable(directory: String, gcc: String, runs: Int, scratch: TemporaryDirectory) throws {
    let names = Set(listDirectory(directory, suffix: ".c").map { String($0.dropLast(2)) })
        .intersection(listDirectory(directory, suffix: ".ssa").map { String($0.dropLast(4)) }).sorted()
    guard !names.isEmpty else { throw UsageError(description: "no NAME.c with NAME.ssa in \(directory)") }
    let loadBefore = loadAverage()

    var rows: [[String]] = [["program", "IL lines", "code bytes", "kcrate bytes", "compile µs", "kcrate µs",
                             "decode µs", "load µs", "dlopen µs", "compile/kcrate", "kcrate/dlopen"]]
    var compileOverCrate: [Double] = [], crateOverDlopen: [Double] = []
    var means: (compile: [Double], kcrate: [Double], dlopen: [Double]) = ([], [], [])
    var problems: [String] = []
    let descriptorsBefore = openFileDescriptors()
    var loadersMade = 0

    for name in names {
        progress("crates: \(name): building")
        let ilPath = directory + "/" + name + ".ssa"
        let source = try readFile(ilPath)
        let lines = source.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }

        // The crate file, once; the warm-up of `compile` is this compile.
        let compiled: CompiledModule
        do {
            compiled = try compileAndLoad(name: ilPath, bytes: source, into: try Loader(options: .init())).0
            loadersMade += 1
        } catch {
            problems.append("\(name): kiln cannot compile and load it: \(error)")
            continue
        }
        let file = CrateFile.encode(compiled)
        let codeBytes = compiled.functions.reduce(0) { $0 + $1.code.count }

        // The shared object, copied so each sample opens a file glibc has not got open.
        let library = scratch.file(name + ".so")
        let built = try runProcess([gcc, "-O2", "-shared", "-fPIC", "-o", library, directory + "/" + name + ".c", "-lm"],
                                   in: scratch)
        var copies: [String] = []
        if built.succeeded {
            let bytes = try readFile(library)
            for index in 0..<sharedObjectCopies {
                copies.append(scratch.file("\(name)-\(index).so"))
                try write(bytes, to: copies[index])
            }
        } else {
            problems.append("\(name): gcc -shared failed: \(built.errorSummary)")
        }

        var samples = LoadSamples()
        for round in 0...runs {
            // Round 0 is the warm-up of kcrate and dlopen.
            let compileLoader = try Loader(options: .init())
            let crateLoader = try Loader(options: .init())
            loadersMade += 2
            if round > 0 { progress("crates: \(name): round \(round) of \(runs)") }
            do {
                let compileTime = try timed { () throws -> Void in _ = try compileAndLoad(name: ilPath, bytes: source, into: compileLoader) }.seconds
                let decoded = try timed { () throws(CrateFileError) in try CrateFile.decode(file) }
                let loaded = try timed { () throws(LoadError) in try crateLoader.load(decoded.value) }
                if round > 0 {
                    samples.compile.append(compileTime)
                    samples.decode.append(decoded.seconds)
                    samples.load.append(loaded.seconds)
                }
            } catch {
                problems.append("\(name): round \(round): \(error)")
                break
            }
            if !copies.isEmpty {
                let copy = copies[round % copies.count]
                switch openAndClose(copy) {
                case .success(let time): if round > 0 { samples.dlopen.append(time) }
                case .failure(let problem):
                    problems.append("\(name): \(problem)")
                    copies = []
                }
            }
        }

        func micro(_ values: [Double]) -> String { values.isEmpty ? "-" : Format.fixed(median(values) * 1e6, 1) }
        var row = [name, Format.grouped(lines), Format.grouped(codeBytes), Format.grouped(file.count),
                   micro(samples.compile), micro(samples.kcrate), micro(samples.decode), micro(samples.load),
                   micro(samples.dlopen)]
        if !samples.compile.isEmpty && !samples.kcrate.isEmpty {
            let (compile, kcrate) = (median(samples.compile), median(samples.kcrate))
            compileOverCrate.append(compile / kcrate)
            means.compile.append(compile)
            means.kcrate.append(kcrate)
            row.append(Format.fixed(compile / kcrate, 1) + "x")
            if !samples.dlopen.isEmpty {
                let dlopen = median(samples.dlopen)
                crateOverDlopen.append(kcrate / dlopen)
                means.dlopen.append(dlopen)
                row.append(Format.fixed(kcrate / dlopen, 2))
            } else {
                row.append("-")
            }
        } else {
            row += ["-", "-"]
        }
        rows.append(row)
    }
    func mean(_ values: [Double], scale: Double, places: Int, suffix: String = "") -> String {
        geometricMean(values).map { Format.fixed($0 * scale, places) + suffix } ?? "-"
    }
    rows.append(["geometric mean", "", "", "", mean(means.compile, scale: 1e6, places: 1),
                 mean(means.kcrate, scale: 1e6, places: 1), "", "", mean(means.dlopen, scale: 1e6, places: 1),
                 mean(compileOverCrate, scale: 1, places: 1, suffix: "x"), mean(crateOverDlopen, scale: 1, places: 2)])

    print("kiln-bench crates: loading, median of \(runs) rounds after 1 warm-up (µs, in-process)")
    print(columns(rows))
    print("notes:")
    print("  compile: parseAndVerify + compileModule + Loader.load of NAME.ssa; kcrate: CrateFile.decode of the")
    print("    bytes of CrateFile.encode (made once, not read from disk) + Loader.load (decode and load columns)")
    print("  each load goes into a fresh Loader(options: .init()), made before the clock starts")
    print("  dlopen: dlopen(RTLD_NOW | RTLD_LOCAL) + dlclose of `gcc -O2 -shared -fPIC NAME.c -lm` (main kept,")
    print("    never called), cycling over \(sharedObjectCopies) copies; after each dlclose, RTLD_NOLOAD confirms it was unloaded")
    print("  the three take turns in every round; code bytes: the functions' machine code, data excluded")
    print("  machine: \(processorCount()) processors; load average \(loadBefore) before, \(loadAverage()) after")
    let leaked = openFileDescriptors() - descriptorsBefore
    if leaked >= loadersMade / 2 {
        problems.append("\(loadersMade) Loaders made and dropped, \(leaked) more file descriptors open: Crate.loader and"
            + " Loader.crates keep each other alive, so no Loader is ever freed (each keeps its memfd and mappings)")
    }
    if !problems.isEmpty {
        print("  PROBLEMS:")
        for problem in problems { print("    " + problem) }
    }
    let standing: String
    if let ratio = geometricMean(compileOverCrate) {
        standing = ratio >= loadGoalRatio
            ? "met (\(Format.fixed(ratio, 1))x)"
            : "not met: \(Format.fixed(ratio, 1))x, kcrate needs to be \(Format.fixed(loadGoalRatio / ratio, 2))x faster"
    } else {
        standing = "cannot be judged: no program both compiled and loaded from a crate file"
    }
    print("goal: \(loadGoal): \(standing)")
}

/// Seconds for dlopen(RTLD_NOW | RTLD_LOCAL) + dlclose of `path`, or why it failed: an
/// error from dlopen, or an object that is still loaded after its dlclose.
private func openAndClose(_ path: String) -> Result<Double, UsageError> {
    let (handle, time) = timed { () -> UnsafeMutableRawPointer? in
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else { return nil }
        dlclose(handle)
        return handle
    }
    guard handle != nil else {
        return .failure(UsageError(description: "dlopen \(path): \(dlerror().map { String(cString: $0) } ?? "failed")"))
    }
    if let still = dlopen(path, RTLD_NOW | RTLD_NOLOAD) {
        dlclose(still)
        return .failure(UsageError(description: "\(path) stays loaded after dlclose; dlopen figures would be cached opens"))
    }
    return .success(time)
}

/// How many file descriptors the process has open (0 where /proc is missing).
private func openFileDescriptors() -> Int { listDirectory("/proc/self/fd", suffix: "").count }
