// `kiln-bench tools`: what telling a debugger and a profiler about code costs.
//
// Every IL file of a directory (by default Benchmarks/programs) is compiled
// once, outside the timing; then they are loaded into a fresh loader (all as
// one program when they link together, else each on its own), and the
// heap compacted after its first block was freed (so every other block moves),
// three ways: with no listener, with GDB's JIT interface
// (`registerCodeWithDebugger`: one ELF object per crate version, made again
// when its blocks move; no debugger attached, so GDB's own reading is not
// included), and with perf's jitdump file (`writePerfJitDump`, into a
// temporary directory). The goal: load and compaction within 10% of the bare
// figures with the jitdump, and GDB registration cheap enough to leave on
// whenever a debugger is attached.

import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader
#if canImport(Glibc)
import Glibc
#endif

func runToolsBenchmark(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["runs", "dir"])
    let runs = try options.integer("runs", default: 5)
    let directory = options.string("dir") ?? "Benchmarks/programs"
    let names = listDirectory(directory, suffix: ".ssa").sorted()
    guard !names.isEmpty else { throw UsageError(description: "no .ssa files in \(directory)") }
    var modules: [CompiledModule] = []
    for name in names {
        let bytes = try readFile(directory + "/" + name)
        let (module, diagnostics) = parseAndVerify(SourceFile(name: name, bytes: bytes))
        guard diagnostics.isEmpty else { throw UsageError(description: "\(name) does not verify") }
        var compiled = try compileModule(module)
        compiled.name = name
        modules.append(compiled)
    }
    let dumps = "/tmp/kiln-bench-tools-\(getpid())"
    mkdir(dumps, 0o755)
    setenv("KILN_PERF_DIR", dumps, 1)
    defer {
        unlink("\(dumps)/jit-\(getpid()).dump")
        rmdir(dumps)
    }

    // One program of all the files when they link together (Lua's 33 files), otherwise
    // each file a program of its own (the benchmark programs each have a main).
    let linked = (try? Loader().load(modules)) != nil
    let batches = linked ? [modules] : modules.map { [$0] }

    enum Mode: String, CaseIterable { case bare = "no listener", gdb = "GDB JIT interface", perf = "perf jitdump" }
    var load: [Mode: [Double]] = [:], compaction: [Mode: [Double]] = [:]
    var functions = 0
    for _ in 0..<(runs + 1) {
        for mode in Mode.allCases {
            var loadTime = 0.0, compactTime = 0.0
            functions = 0
            for batch in batches {
                let loader = try Loader()
                switch mode {
                case .bare: break
                case .gdb: loader.registerCodeWithDebugger()
                case .perf: try loader.writePerfJitDump()
                }
                // A crate below the program, unloaded after it: a hole at the bottom, so
                // every block of the program moves when the heap is compacted.
                let helper = try loader.load(CompiledModule(name: "hole", functions: [
                    CodeObject(name: "hole", isExported: false, code: [0xC3], relocations: []),
                ], data: []))
                var crates: [Crate] = []
                loadTime += try secondsThrowing { crates = try loader.load(batch) }
                functions += batch.reduce(0) { $0 + $1.functions.count }
                try loader.unload(helper)
                loader.collectCode()
                compactTime += seconds { loader.compact() }
                _ = crates
            }
            load[mode, default: []].append(loadTime)
            compaction[mode, default: []].append(compactTime)
        }
    }
    func row(_ mode: Mode) -> (String, String) {
        let loadMedian = median(Array(load[mode]!.dropFirst())), compactMedian = median(Array(compaction[mode]!.dropFirst()))
        let bareLoad = median(Array(load[.bare]!.dropFirst())), bareCompact = median(Array(compaction[.bare]!.dropFirst()))
        return (mode.rawValue, "load \(Format.milliseconds(loadMedian)) (x\(Format.fixed(loadMedian / bareLoad, 2))), "
            + "compaction \(Format.milliseconds(compactMedian)) (x\(Format.fixed(compactMedian / bareCompact, 2)))")
    }
    print(Format.table("tools: \(names.count) crates from \(directory) (\(linked ? "one program" : "one loader each")), \(functions) functions, median of \(runs) runs "
                       + "(goal: jitdump within x1.10, GDB objects cheap)", Mode.allCases.map(row)))
}

private func secondsThrowing(_ body: () throws -> Void) throws -> Double {
    var failure: Error?
    let elapsed = seconds {
        do { try body() } catch { failure = error }
    }
    if let failure { throw failure }
    return elapsed
}
