// `kiln test`: run IL files in QBE's self-contained test format.
//
// Each file runs in a child process (the kiln binary itself, through the
// hidden `test-one` subcommand), so a test that crashes or executes `hlt` is
// reported as a failure and the others still run. The last line is
// `N passed, M failed`.

import ArgumentParser
import KilnCode
import KilnCodegen
import KilnIL
import KilnTooling

struct Test: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run IL test files in QBE's format (embedded C driver and expected output).",
        discussion: """
            A file may embed a C driver between `# >>> driver` and `# <<<` and its expected \
            standard output between `# >>> output` and `# <<<` (each line prefixed by `# `). \
            The driver is built with gcc as a shared object and linked; the program runs with \
            the arguments `a b c`; its output must match, or, with no expected output, it must \
            exit with status 0. Ends with the line `N passed, M failed`; exits 1 if any failed.
            """
    )

    @Argument(help: "Test files.")
    var files: [String]

    @Option(name: .customLong("link"), help: ArgumentHelp("A shared object to link against (repeatable).", valueName: "LIB.so"))
    var libraries: [String] = []

    @Option(name: .long, help: "Seconds before a test is stopped.")
    var timeout: Double = 60

    @Flag(name: .shortAndLong, help: "Print passing tests too.")
    var verbose = false

    func run() throws {
        let executable = Host.executablePath
        var results: [TestResult] = []
        for file in files {
            let arguments = ["test-one"] + libraries.flatMap { ["--link", $0] } + [file]
            let result = TestRunner.runIsolated(path: file, executable: executable, arguments: arguments, timeout: timeout)
            if !result.isPassed || verbose { print(result) }
            results.append(result)
        }
        let summary = TestSummary(results: results)
        print(summary)
        if summary.failed > 0 { throw ExitCode(1) }
    }
}

/// The child side of `kiln test`: runs one file in this process.
struct TestOne: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-one", abstract: "Run one test file in this process (used by kiln test).", shouldDisplay: false)

    @Argument var file: String

    @Option(name: .customLong("link")) var libraries: [String] = []

    func run() throws {
        let result = TestRunner.runTestFile(path: file, compile: compileTest, linkLibraries: libraries)
        throw ExitCode(TestRunner.exitStatus(reporting: result))
    }
}

/// The compiler `kiln test` plugs into the runner: front end, then code generation.
func compileTest(_ source: TestSource) throws -> CompiledModule {
    let file = SourceFile(name: source.path, text: source.text)
    let (module, diagnostics) = parseAndVerify(file)
    let errors = diagnostics.filter { $0.severity == .error }
    if !errors.isEmpty {
        struct FrontEndErrors: Error, CustomStringConvertible { var description: String }
        throw FrontEndErrors(description: errors.map(\.rendered).joined(separator: "\n"))
    }
    return try compileModule(module)
}
