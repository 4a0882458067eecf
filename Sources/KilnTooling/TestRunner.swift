// The logic of `kiln test`: run IL test files in QBE's self-contained format
// (see TestFile.swift) and report `N passed, M failed`.
//
// One test, in process (`runTestFile`):
//   1. parse the driver and expected-output blocks, compile the IL with the
//      caller's compiler (the CLI plugs in the real one);
//   2. with a driver: build it with gcc, together with the trampolines of the
//      module's exported functions, into a shared object (-Bsymbolic, so the
//      driver's calls bind to this object's trampolines even when an earlier
//      test's object is still in the global scope), dlopen it RTLD_GLOBAL
//      before loading the module so IL calls to driver functions resolve;
//   3. load the module, fill every `kiln_slot_NAME`, run `main` (the module's,
//      or else the driver's) with argv `FILE a b c`, with file descriptor 1
//      redirected into a temporary file;
//   4. with expected output, compare it; without, the exit status must be 0.
//
// Isolation (`runIsolated`). A crashing test (SIGSEGV, `hlt`, abort) must not
// take the runner down, and fork() from a multithreaded Swift process may
// deadlock the child on a lock another thread held. So the parent spawns a
// fresh process with posix_spawn — the kiln binary itself with a hidden
// subcommand that calls `runTestFile` and then `exitStatus(reporting:)` —
// reads its merged stdout/stderr, and reports a signal or a timeout itself.
//
// Protocol between parent and child: exit status 0 = passed, 1 = failed with
// the failure message on stderr; anything else (a signal, another status) is
// reported by the parent as a crash, with whatever the child wrote on stderr.
// The child's stdout is discarded (the program's own stdout is captured into a
// file by the child).

import KilnCode
import KilnLoader
#if canImport(Glibc)
import Glibc
#endif

/// A test file handed to the compiler.
public struct TestSource: Sendable {
    /// The file's path, for messages and argv[0].
    public var path: String
    /// The whole file, IL and comment blocks.
    public var text: String

    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }
}

/// The outcome of one test file.
public struct TestResult: Sendable, CustomStringConvertible {
    public var path: String
    /// nil when the test passed; otherwise why it failed.
    public var failure: String?

    public init(path: String, failure: String?) {
        self.path = path
        self.failure = failure
    }

    public var isPassed: Bool { failure == nil }

    public var description: String {
        guard let failure else { return "PASS \(path)" }
        return "FAIL \(path): " + failure
    }

    static func failed(_ path: String, _ message: String) -> TestResult {
        TestResult(path: path, failure: message)
    }
}

/// The results of a run and its closing line.
public struct TestSummary: Sendable, CustomStringConvertible {
    public var results: [TestResult]

    public init(results: [TestResult]) { self.results = results }

    public var passed: Int { results.count(where: \.isPassed) }
    public var failed: Int { results.count - passed }

    /// `N passed, M failed`.
    public var description: String { "\(passed) passed, \(failed) failed" }
}

/// Runs test files; see the file comment.
public enum TestRunner {
    /// The arguments after argv[0] that every test program gets, as in QBE's runner.
    public static let programArguments = ["a", "b", "c"]

    /// Runs one test file in this process. A crash in the test crashes the process: use
    /// `runIsolated` to survive it. `compile` turns the file into a module; its errors
    /// fail the test with their description.
    public static func runTestFile(
        path: String, compile: (TestSource) throws -> CompiledModule,
        linkLibraries: [String] = [], compiler: String = "gcc"
    ) -> TestResult {
        do {
            return try run(path: path, compile: compile, linkLibraries: linkLibraries, compiler: compiler)
        } catch let failure as Failure {
            return .failed(path, failure.message)
        } catch {
            return .failed(path, "\(error)")
        }
    }

    /// Runs `executable arguments` as a child that runs one test (see the protocol in
    /// the file comment) and turns its exit and stderr into a result; kills it after
    /// `timeout` seconds.
    /// `environment` entries (`KEY=value`) take precedence over this process's environment;
    /// Swift's backtracer is turned off in the child (a crash there is the test program's,
    /// and the backtracer can leave the child hanging).
    public static func runIsolated(
        path: String, executable: String, arguments: [String], environment: [String] = [],
        timeout: Double? = 60
    ) -> TestResult {
        let termination: System.Termination
        let output: String
        do {
            let (status, bytes) = try System.run(
                executable, arguments, environment: environment + ["SWIFT_BACKTRACE=enable=no"] + KilnLoader.System.environment,
                keepsStandardOutput: false, timeout: timeout)
            termination = status
            output = String(decoding: bytes, as: UTF8.self)
        } catch {
            return .failed(path, "cannot run the test: \(error)")
        }
        let trimmed = output.hasSuffix("\n") ? String(output.dropLast()) : output
        let tail = trimmed.isEmpty ? "" : "\n" + trimmed
        switch termination {
        case .exited(0):
            return TestResult(path: path, failure: nil)
        case .exited(1):
            return .failed(path, trimmed.isEmpty ? "failed (no message)" : trimmed)
        case .exited(let status):
            return .failed(path, "the test process exited with status \(status)" + tail)
        case .signaled(let signal):
            return .failed(path, "killed by \(System.signalName(signal))" + tail)
        case .timedOut:
            return .failed(path, "timed out after \(timeout ?? 0) seconds" + tail)
        }
    }

    /// For the child side of `runIsolated`: writes a failure's message to stderr and
    /// returns the exit status of the protocol (0 passed, 1 failed).
    public static func exitStatus(reporting result: TestResult) -> Int32 {
        guard let failure = result.failure else { return 0 }
        System.flushAllStreams()
        System.writeStandardError(failure + "\n")
        return 1
    }

    // MARK: One test

    private struct Failure: Error {
        var message: String
    }

    private static func run(
        path: String, compile: (TestSource) throws -> CompiledModule, linkLibraries: [String], compiler: String
    ) throws -> TestResult {
        let text = String(decoding: try System.readFile(path), as: UTF8.self)
        let test: TestFile
        do {
            test = try TestFile.parse(text: text)
        } catch {
            throw Failure(message: "\(path):\(error.line): \(error.message)")
        }
        let module: CompiledModule
        do {
            module = try compile(TestSource(path: path, text: text))
        } catch {
            throw Failure(message: "does not compile: \(error)")
        }

        let directory = try System.makeTemporaryDirectory(prefix: "kiln-test-")
        var files = ["stdout"]
        defer { System.removeDirectory(directory, files: files) }

        var driver: UnsafeMutableRawPointer?
        defer { if let driver { System.closeLibrary(driver) } }
        var libraries = linkLibraries
        if let source = test.driver {
            let exported = module.functions.filter(\.isExported).map(\.name).filter { unquoted($0) != "main" }
            files += ["driver.c", "trampolines.c", "driver.so"]
            let library = try buildDriver(
                source, exportedFunctions: exported, in: directory, compiler: compiler)
            driver = try System.openLibrary(library)
            libraries.insert(library, at: 0)
        }

        // `loaded` is last used below, before the deferred dlclose: the module (and
        // its loader's own handle on the driver) goes first.
        let loaded = try Loader(linkLibraries: libraries).load(module)
        var entry: UnsafeRawPointer?
        if let index = loaded.functionIndex(named: "main"), module.functions[index].isExported {
            entry = try loaded.stub(ofFunction: index)
        }
        if let driver {
            for (index, function) in module.functions.enumerated() where function.isExported {
                guard unquoted(function.name) != "main" else { continue }
                guard let slot = System.lookUp(TestFile.slotSymbol(for: function.name), in: driver) else {
                    throw Failure(message: "the driver has no \(TestFile.slotSymbol(for: function.name))")
                }
                // The stub, not the entry: compaction may move the code while the driver runs.
                slot.storeBytes(of: UInt(bitPattern: try loaded.stub(ofFunction: index)), as: UInt.self)
            }
            if entry == nil { entry = System.lookUp("main", in: driver).map { UnsafeRawPointer($0) } }
        }
        guard let entry else { throw Failure(message: LoadError.noMain(module: module.name).description) }

        let outputPath = directory + "/stdout"
        let status = try System.withStandardOutput(redirectedTo: outputPath) {
            // The crate (and with it the loader and its code) must outlive the call.
            let status = Crate.callMain(entry, arguments: [path] + programArguments, environment: nil)
            loaded.loader.keepUntilExit()  // exit handlers the program registered still need its code
            return status
        }
        let output = String(decoding: try System.readFile(outputPath), as: UTF8.self)
        if let expected = test.expectedOutput {
            if let difference = firstDifference(expected: expected, actual: output) {
                return .failed(path, difference)
            }
        } else if status != 0 {
            return .failed(path, "main returned \(status)")
        }
        return TestResult(path: path, failure: nil)
    }

    /// Builds the driver and the trampolines into `directory/driver.so`.
    private static func buildDriver(
        _ source: String, exportedFunctions: [String], in directory: String, compiler: String
    ) throws -> String {
        let trampolines: String
        do {
            trampolines = try TestFile.trampolineSource(forExportedFunctions: exportedFunctions)
        } catch {
            throw Failure(message: error.message)
        }
        try System.writeFile(directory + "/driver.c", source)
        try System.writeFile(directory + "/trampolines.c", trampolines)
        let library = directory + "/driver.so"
        let arguments = ["-shared", "-fPIC", "-Wl,-Bsymbolic", "-o", library,
                         directory + "/driver.c", directory + "/trampolines.c"]
        let termination: System.Termination
        let output: [UInt8]
        do {
            (termination, output) = try System.run(compiler, arguments)
        } catch {
            throw Failure(message: "cannot run \(compiler) to build the driver (is it installed?): \(error)")
        }
        guard termination == .exited(0) else {
            throw Failure(message: "\(compiler) failed to build the driver:\n" + String(decoding: output, as: UTF8.self))
        }
        return library
    }

    /// A message for the first line where `actual` differs from `expected`, or nil.
    static func firstDifference(expected: String, actual: String) -> String? {
        guard expected != actual else { return nil }
        func lines(_ text: String) -> [Substring] {
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            if lines.last == "" { lines.removeLast() }
            return lines
        }
        let expectedLines = lines(expected), actualLines = lines(actual)
        guard expectedLines != actualLines else {
            return "output differs only in the newline at its end"
        }
        var line = 0
        while line < expectedLines.count, line < actualLines.count, expectedLines[line] == actualLines[line] {
            line += 1
        }
        func show(_ lines: [Substring]) -> String {
            line < lines.count ? "\"\(lines[line])\"" : "end of output"
        }
        return "output differs at line \(line + 1): expected \(show(expectedLines)), got \(show(actualLines))"
    }
}
