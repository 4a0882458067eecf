// `kiln run`: compile (or read) crates, link them in memory and call main.

import ArgumentParser
import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader
import KilnTooling

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Link IL files and crate files in memory and run the program.",
        discussion: """
            The first argument is a crate: an IL file or a crate file (told apart by their \
            contents, whatever the extension). So is every argument after it that ends in \
            .ssa, .il, .qbe or .kcrate or names a crate file; together they are linked by \
            their exported symbols (an export defined twice is an error) and the exported \
            $main(argc, argv, envp) is \
            called; kiln exits with its result after flushing C's output streams. Calls \
            between crates go through each crate's TOC and are bound on first call: a \
            symbol nothing defines is an error when it is first called. Other symbols \
            resolve against libc, libm and the --link libraries. With --export-symbols, the \
            crates' exported functions are also symbols that shared objects the program \
            opens later with dlopen resolve (through stubs that follow reloads). --link, \
            --stats, --watch, --export-symbols and --perf may come before or right after the files; \
            everything after them (or after --) goes to the program: `kiln run main.ssa util.kcrate a b`, \
            `kiln run prog.ssa --link lib.so -- --verbose`. With --watch, a crate whose file \
            changes is recompiled and reloaded while the program runs, once the file has \
            kept its size and modification time for 100 ms (KILN_WATCH_SETTLE_MS sets \
            another settle time), so a file saved in steps is read whole; a file that does \
            not compile is reported and the program keeps its old version. The reload takes \
            effect at the program's next call through a TOC (any call to C or to another \
            crate); calls in progress finish in the old code. A fatal error of the program \
            (a call to an undefined symbol, or through the stub of a removed function) exits \
            with status 70, and so does running out of managed memory: --heap-max bounds the \
            memory the managed heap's objects may take, and --checked makes a wrong field, byte or \
            length access of a managed object (an index out of bounds, an integer used as an \
            object) such an error too; a fault in the program's code (or a call to abort) prints \
            the signal and a backtrace of crates, functions and IL lines and exits with 128 + the \
            signal, unless the program handles that signal itself. Set \
            KILN_STRESS=compact to compact the code heap at every entry into the runtime, \
            KILN_STRESS=collect (or collect:N) to collect the managed heap at every (Nth) \
            allocation and verify it after each collection; `collect,compact` does both.
            """
    )


    @Option(name: .customLong("link"), help: ArgumentHelp("A shared object to link against (repeatable).", valueName: "LIB.so"))
    var libraries: [String] = []

    @Flag(help: "Print the code heap's statistics to standard error when the program ends.")
    var stats = false

    @Option(name: .customLong("heap-max"), help: ArgumentHelp("The most memory the managed heap's objects may take (K, M or G suffix).", valueName: "SIZE"))
    var heapMax: String?

    @Flag(help: "Check every managed field, byte and length access (a wrong one is an error naming the function).")
    var checked = false

    @Flag(help: "Reload a crate whenever its file changes, while the program runs.")
    var watch = false

    @Flag(help: "Make the crates' exported functions visible to shared objects the program opens with dlopen.")
    var exportSymbols = false

    @Flag(help: "Write perf's jitdump file (jit-PID.dump, in KILN_PERF_DIR or here) for `perf inject --jit`; also KILN_PERF=1.")
    var perf = false

    @Argument(parsing: .captureForPassthrough, help: "The crates (IL or crate files), then the program's arguments.")
    var arguments: [String] = []

    /// The crates, the `--link` libraries, the flags, and the program's arguments.
    func split() throws -> (crates: [String], libraries: [String], stats: Bool, watch: Bool, exportSymbols: Bool,
                            perf: Bool, program: [String]) {
        // The arguments are captured whole (the program's own options must pass through),
        // so a leading --help has to be recognised here, and a leading option that is not
        // one of kiln's is an error rather than the name of a crate.
        if let first = arguments.first, first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
        if let first = arguments.first, first.hasPrefix("-"), first != "--" {
            throw ValidationError("unknown option '\(first)'")
        }
        var crates: [String] = []
        var remaining = arguments[...]
        while let first = remaining.first, first != "--", crates.isEmpty || isCrateFile(first) {
            crates.append(first)
            remaining = remaining.dropFirst()
        }
        var libraries = self.libraries
        var stats = self.stats
        if checked { checkedReferences = true }
        if let heapMax, let problem = ManagedRuntime.configure(heapMax: heapMax) { throw ValidationError(problem) }
        var watch = self.watch
        var exportSymbols = self.exportSymbols
        var perf = self.perf
        while let first = remaining.first {
            if first == "--link" {
                guard remaining.count >= 2 else { throw ValidationError("--link needs a shared object") }
                libraries.append(remaining[remaining.startIndex + 1])
                remaining = remaining.dropFirst(2)
            } else if first.hasPrefix("--link=") {
                libraries.append(String(first.dropFirst("--link=".count)))
                remaining = remaining.dropFirst()
            } else if first == "--stats" {
                stats = true
                remaining = remaining.dropFirst()
            } else if first == "--checked" {
                checkedReferences = true
                remaining = remaining.dropFirst()
            } else if first == "--heap-max" || first.hasPrefix("--heap-max=") {
                let value: String
                if first == "--heap-max" {
                    guard remaining.count >= 2 else { throw ValidationError("--heap-max needs a size such as 64M") }
                    value = remaining[remaining.startIndex + 1]
                    remaining = remaining.dropFirst(2)
                } else {
                    value = String(first.dropFirst("--heap-max=".count))
                    remaining = remaining.dropFirst()
                }
                if let problem = ManagedRuntime.configure(heapMax: value) { throw ValidationError(problem) }
            } else if first == "--watch" {
                watch = true
                remaining = remaining.dropFirst()
            } else if first == "--export-symbols" {
                exportSymbols = true
                remaining = remaining.dropFirst()
            } else if first == "--perf" {
                perf = true
                remaining = remaining.dropFirst()
            } else {
                break
            }
        }
        if remaining.first == "--" { remaining = remaining.dropFirst() }
        guard !crates.isEmpty else {
            throw ValidationError("name at least one IL file or crate file")
        }
        return (crates, libraries, stats, watch, exportSymbols, perf, Array(remaining))
    }

    func run() throws {
        let (paths, libraries, stats, watch, exportSymbols, perf, program) = try split()
        var modules: [CompiledModule] = []
        for path in paths {
            guard let module = compiledCrate(path) else { throw ExitCode(1) }
            modules.append(module)
        }
        let status: Int32
        let loader: Loader
        do {
            // A program that calls a proc service runs its main as the first proc.
            var options = Loader.Options.fromEnvironment
            options.procs = modules.contains { $0.callsProcServices }
            loader = try Loader(linkLibraries: libraries, options: options)
            // Registered before the program can register exit handlers of its own, so the
            // figures come last, whether main returns or the program calls exit().
            if stats {
                Host.atExit {
                    printError(statistics(loader))
                    if let heap = ManagedRuntime.statisticsText { printError(heap) }
                    if let procs = loader.procStatisticsText { printError(procs) }
                }
            }
            if perf { try loader.writePerfJitDump() }
            let crates = try loader.load(modules)
            guard let main = crates.first(where: { crate in
                crate.functionIndex(named: "main").map { crate.module.functions[$0].isExported } ?? false
            }) else {
                printError("error: no crate exports $main (crates: \(paths.joined(separator: ", ")))")
                throw ExitCode(1)
            }
            if exportSymbols {
                for crate in crates { try loader.exportSymbols(of: crate) }
            }
            if watch { startWatching(paths, loader: loader) }
            // The program's exit handlers run when the process exits (with its status), and
            // its threads may still run: the code stays until then.
            loader.keepUntilExit()
            try loader.installCrashReports()
            status = try main.runMain(arguments: [main.name] + program)
        } catch let error as LoadError {
            // One line per problem (every undefined symbol, say), each one an error line.
            for line in error.description.split(separator: "\n") { printError("error: \(line)") }
            throw ExitCode(1)
        }
        throw ExitCode(status)
    }
}

/// Whether `path` names an input `kiln run` and `kiln dis` read as a crate beyond the
/// first: its extension is one of IL or crate files, or it is a crate file.
func isCrateFile(_ path: String) -> Bool {
    [".ssa", ".il", ".qbe", ".kcrate"].contains { path.hasSuffix($0) } || Host.file(path, beginsWith: CrateFile.magic)
}

/// The compiled module of an IL file or a crate file, or nil after printing why not.
func compiledCrate(_ path: String) -> CompiledModule? {
    let bytes: [UInt8]
    do {
        bytes = try Host.readFile(path)
    } catch {
        printError("error: \(error)")
        return nil
    }
    return compiledCrate(path, contents: bytes)
}

/// Whether `bytes` are meant as a crate file: they begin with its magic, or the path says
/// so (a damaged crate file is then reported as such, not as bad IL).
func isCrateFileContents(_ path: String, _ bytes: [UInt8]) -> Bool {
    bytes.starts(with: CrateFile.magic) || path.hasSuffix(".kcrate")
}

/// The module a crate file holds, named as recorded in it (the IL file it was built from),
/// or nil after printing why it cannot be used.
func decodedCrateFile(_ path: String, contents bytes: [UInt8]) -> CompiledModule? {
    do {
        return try CrateFile.decode(bytes)
    } catch {
        printError("error: \(path): not a usable crate file: \(error)")
        return nil
    }
}

/// Whether IL is compiled with checked managed accesses (`kiln run --checked`).
nonisolated(unsafe) var checkedReferences = false

/// The compiled module of the contents of an IL file or a crate file (which is which, the
/// contents say), named by `path`, or nil after printing why not.
func compiledCrate(_ path: String, contents bytes: [UInt8]) -> CompiledModule? {
    if isCrateFileContents(path, bytes) {
        guard var module = decodedCrateFile(path, contents: bytes) else { return nil }
        module.name = path
        return module
    }
    guard let module = frontEnd(SourceFile(name: path, bytes: bytes)) else { return nil }
    do {
        return try compileModule(module, options: CodegenOptions(checksReferences: checkedReferences))
    } catch let error as CompileError {
        printError(error.diagnostic.rendered)
    } catch {
        printError("error: \(path): \(error)")
    }
    return nil
}

/// The loader's counters and heap figures, one per line.
func statistics(_ loader: Loader) -> String {
    let usage = loader.heapUsage
    let counters = loader.statistics
    var reasons: [String: Int] = [:]
    var order: [String] = []
    for (_, reason) in loader.liveBlockReasons() {
        if reasons[reason] == nil { order.append(reason) }
        reasons[reason, default: 0] += 1
    }
    let alive = order.map { "  \(reasons[$0]!) alive: \($0)" }.joined(separator: "\n")
    return """
        code heap: \(loader.codeBlocks.count) blocks, \(usage.code) bytes of code, \(usage.fixed) bytes of stubs, \(usage.data) bytes of data and TOCs
        runtime entries: \(counters.runtimeEntries), call slots bound: \(counters.bindings)
        compactions: \(counters.compactions), blocks moved: \(counters.blocksMoved), return addresses patched: \(counters.returnAddressesPatched)
        stops of the world: \(counters.worldStops), threads stopped: \(counters.threadsStopped), longest pause: \(counters.longestPauseNanoseconds / 1000) µs
        threads that could not be stopped: \(counters.incompleteStops) stops (all time: \(World.unresponsiveThreads) threads), compactions put off: \(counters.compactionsDeferred)
        reloads: \(counters.reloads), blocks collected: \(counters.blocksCollected)
        why code is alive:
        \(alive)
        """
}
