// Whole programs compiled and run: the conformance corpus in QBE's test format
// (Tests/Conformance, expected outputs taken from QBE's own amd64 build), and
// the benchmark programs, whose output must match gcc's build of the same C.
//
// Each program runs in a child process through `kiln test` / `kiln run`, so a
// crash in generated code fails one test instead of the whole suite.

import Foundation
import Testing

/// The package's root folder (this file is Tests/KilnCodegenTests/ProgramTests.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The built `kiln` executable, next to the test bundle (or KILN_BINARY).
func kilnExecutable() throws -> String {
    var candidates: [String] = []
    if let override = ProcessInfo.processInfo.environment["KILN_BINARY"] { candidates.append(override) }
    let products = Bundle.main.bundleURL.path.hasSuffix(".xctest")
        ? Bundle.main.bundleURL.deletingLastPathComponent() : Bundle.main.bundleURL
    candidates.append(products.appendingPathComponent("kiln").path)
    candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kiln").path)
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw RunError(message: "the kiln executable was not found (looked at \(candidates)); build it with `swift build` or set KILN_BINARY")
    }
    return found
}

struct RunError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Runs a command, with `extra` added to its environment; returns its exit status and
/// standard output and error.
func run(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:]) throws
    -> (status: Int32, output: String, error: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["SWIFT_BACKTRACE"] = "enable=no"
    environment.merge(extra) { $1 }
    process.environment = environment
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
}

func files(in folder: String, withExtension suffix: String) -> [String] {
    let directory = packageRoot.appendingPathComponent(folder)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { $0.hasSuffix(suffix) }.sorted().map { directory.appendingPathComponent($0).path }
}

@Suite struct ProgramTests {
    static let conformanceFiles = files(in: "Tests/Conformance", withExtension: ".ssa")

    @Test func theCorpusIsThere() {
        #expect(ProgramTests.conformanceFiles.count >= 40)
    }

    @Test(arguments: conformanceFiles)
    func conformance(_ path: String) throws {
        let result = try run(try kilnExecutable(), ["test", "--timeout", "30", path])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        #expect(result.output.hasSuffix("1 passed, 0 failed\n"), "\(result.output)")
    }

    /// The benchmark programs at small sizes: Kiln's output must equal gcc's.
    static let benchmarks: [(String, [String])] = [
        ("fib", ["24"]), ("sieve", ["200000", "2"]), ("nbody", ["1000"]), ("mandelbrot", ["200"]),
        ("matmul", ["60"]), ("qsort", ["20000"]), ("strhash", ["20000"]),
    ]

    @Test(arguments: benchmarks.map(\.0))
    func benchmarkProgram(_ name: String) throws {
        let arguments = ProgramTests.benchmarks.first { $0.0 == name }!.1
        let source = packageRoot.appendingPathComponent("Benchmarks/programs/\(name)").path
        let binary = NSTemporaryDirectory() + "kiln-test-\(name)-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: binary) }
        let build = try run("/usr/bin/gcc", ["-O1", "-o", binary, source + ".c", "-lm"])
        try #require(build.status == 0, "gcc failed: \(build.error)")
        let expected = try run(binary, arguments)
        let actual = try run(try kilnExecutable(), ["run", source + ".ssa"] + arguments)
        #expect(actual.status == expected.status, "\(actual.error)")
        #expect(actual.output == expected.output)
    }
}

/// `kiln run` as a user runs it: arguments, `--link`, exit status, errors.
@Suite struct RunCommandTests {
    static let echo = """
        export function w $main(w %argc, l %argv) {
        @start
        	%i =w copy 1
        @loop
        	%more =w csltw %i, %argc
        	jnz %more, @body, @done
        @body
        	%offset =l extsw %i
        	%offset =l mul %offset, 8
        	%slot =l add %argv, %offset
        	%text =l loadl %slot
        	%r =w call $puts(l %text)
        	%i =w add %i, 1
        	jmp @loop
        @done
        	ret 42
        }
        """

    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "kiln-run-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ssa"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func argumentsAndExitStatus() throws {
        let path = try write(RunCommandTests.echo)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let plain = try run(try kilnExecutable(), ["run", path, "a", "b c"])
        #expect(plain.status == 42)
        #expect(plain.output == "a\nb c\n")
        let linked = try run(try kilnExecutable(), ["run", path, "--link", "libm.so.6", "--", "--flag", "x"])
        #expect(linked.status == 42, "\(linked.error)")
        #expect(linked.output == "--flag\nx\n")
    }

    @Test func undefinedSymbolNamesItsUser() throws {
        let path = try write("""
            export function w $main() {
            @start
            	%r =w call $no_such_function_anywhere(w 1)
            	ret %r
            }
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try run(try kilnExecutable(), ["run", path])
        // Calls are bound on first call: the program starts, and fails at that call.
        #expect(result.status == 70)
        #expect(result.error.contains("call to undefined symbol $no_such_function_anywhere from $main"), "\(result.error)")
    }
}
