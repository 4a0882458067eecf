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
            Every leading argument that names an IL file (.ssa, .il, .qbe) or a crate file \
            (.kcrate) is a crate; together they are linked by their exported symbols (an \
            export defined twice is an error) and the exported $main(argc, argv, envp) is \
            called; kiln exits with its result after flushing C's output streams. Calls \
            between crates go through each crate's TOC and are bound on first call: a \
            symbol nothing defines is an error when it is first called. Other symbols \
            resolve against libc, libm and the --link libraries. --link, --stats, --watch and --perf may \
            come before or right after the files; everything after them (or after --) \
            goes to the program: `kiln run main.ssa util.kcrate a b`, \
            `kiln run prog.ssa --link lib.so -- --verbose`. With --watch, a crate whose file \
            changes is recompiled and reloaded while the program runs, once the file has \
            kept its size and modification time for 100 ms (KILN_WATCH_SETTLE_MS sets \
            another settle time), so a file saved in steps is read whole; a file that does \
            not compile is reported and the program keeps its old version. The reload takes \
            effect at the program's next call through a TOC (any call to C or to another \
            crate); calls in progress finish in the old code. A fatal error of the program \
            (a call to an undefined symbol, or through the stub of a removed function) exits \
            with status 70; a fault in the program's code (or a call to abort) prints the \
            signal and a backtrace of crates, functions and IL lines and exits with 128 + \
            the signal, unless the program handles that signal itself. Set KILN_STRESS=compact to compact the code heap at every entry \
            into the runtime.
            """
    )


    @Option(name: .customLong("link"), help: ArgumentHelp("A shared object to link against (repeatable).", valueName: "LIB.so"))
    var libraries: [String] = []

    @Flag(help: "Print the code heap's statistics to standard error when the program ends.")
    var stats = false

    @Flag(help: "Reload a crate whenever its file changes, while the program runs.")
    var watch = false

    @Flag(help: "Write perf's jitdump file (jit-PID.dump, in KILN_PERF_DIR or here) for `perf inject --jit`; also KILN_PERF=1.")
    var perf = false

    @Argument(parsing: .captureForPassthrough, help: "The crates (IL or crate files), then the program's arguments.")
    var arguments: [String] = []

    /// The crates, the `--link` libraries, the flags, and the program's arguments.
    func split() throws -> (crates: [String], libraries: [String], stats: Bool, watch: Bool, perf: Bool, program: [String]) {
        // The arguments are captured whole (the program's own options must pass through),
        // so a leading --help has to be recognised here.
        if let first = arguments.first, first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
        var crates: [String] = []
        var remaining = arguments[...]
        while let first = remaining.first, isCrateFile(first) {
            crates.append(first)
            remaining = remaining.dropFirst()
        }
        var libraries = self.libraries
        var stats = self.stats
        var watch = self.watch
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
            } else if first == "--watch" {
                watch = true
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
            throw ValidationError("name at least one IL file (.ssa, .il, .qbe) or crate file (.kcrate)")
        }
        return (crates, libraries, stats, watch, perf, Array(remaining))
    }

    func run() throws {
        let (paths, libraries, stats, watch, perf, program) = try split()
        var modules: [CompiledModule] = []
        for path in paths {
            guard let module = compiledCrate(path) else { throw ExitCode(1) }
            modules.append(module)
        }
        let status: Int32
        let loader: Loader
        do {
            loader = try Loader(linkLibraries: libraries)
            if perf { try loader.writePerfJitDump() }
            let crates = try loader.load(modules)
            guard let main = crates.first(where: { crate in
                crate.functionIndex(named: "main").map { crate.module.functions[$0].isExported } ?? false
            }) else {
                printError("error: no crate exports $main (crates: \(paths.joined(separator: ", ")))")
                throw ExitCode(1)
            }
            if watch { startWatching(paths, loader: loader) }
            // The program's exit handlers run when the process exits (with its status), and
            // its threads may still run: the code stays until then.
            loader.keepUntilExit()
            try loader.installCrashReports()
            status = try main.runMain(arguments: [main.name] + program)
        } catch let error as LoadError {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        if stats { printError(statistics(loader)) }
        throw ExitCode(status)
    }
}

/// Whether `path` names an input `kiln run` and `kiln dis` read as a crate.
func isCrateFile(_ path: String) -> Bool {
    [".ssa", ".il", ".qbe", ".kcrate"].contains { path.hasSuffix($0) }
}

/// The compiled module of an IL file or a crate file, or nil after printing why not.
func compiledCrate(_ path: String) -> CompiledModule? {
    let bytes: [UInt8]
    do {
        bytes = try Host.readFile(path)
    } catch {
        printError("\(path): error: \(error.reason)")
        return nil
    }
    return compiledCrate(path, contents: bytes)
}

/// The compiled module of the contents of an IL file or a crate file (which is which, the
/// path's extension says), or nil after printing why not.
func compiledCrate(_ path: String, contents bytes: [UInt8]) -> CompiledModule? {
    if path.hasSuffix(".kcrate") {
        do {
            var module = try CrateFile.decode(bytes)
            module.name = path
            return module
        } catch {
            printError("\(path): error: not a usable crate file: \(error)")
            return nil
        }
    }
    guard let module = frontEnd(SourceFile(name: path, bytes: bytes)) else { return nil }
    do {
        return try compileModule(module)
    } catch let error as CompileError {
        printError(error.diagnostic.rendered)
    } catch {
        printError("\(path): error: \(error)")
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
