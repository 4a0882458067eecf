// The `kiln` command: one subcommand per job a user of an IL compiler has.
//
// Each subcommand reads its files, runs the front end and reports diagnostics
// on stderr as `file:line:col: severity: message` with the offending line.
// Every other error is one line that starts with `error: `. Exit statuses: 0 for
// success, 1 for an error in the input or the program's set-up, 64 for a command
// line that cannot be understood (an unknown option, a missing argument), and
// the program's own status for `kiln run`.

import ArgumentParser
import KilnCode
import KilnCodegen
import KilnIL
import KilnTooling
import KilnPasses

@main
struct Kiln: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Compile QBE IL to x86-64 machine code in memory and manage it like a heap.",
        discussion: """
            Kiln reads the textual IL of the QBE compiler backend (plus a small superset for \
            managed references, see docs/IL-EXTENSIONS.md).
            """,
        version: kilnVersion,
        subcommands: [Run.self, Build.self, Check.self, Compile.self, Disassemble.self, Test.self, TestOne.self]
    )

    /// Errors of the command line read like every other error of the command.
    static var _errorPrefix: String { "error: " }
}

/// What `kiln --version` prints: the command's version and the crate-file format it writes.
let kilnVersion = "kiln 0.1.0 (crate file format \(CrateFile.formatVersion))"

/// Reads a file as a source; nil after printing why it cannot be read.
func readSource(_ path: String) -> SourceFile? {
    do {
        return SourceFile(name: path, bytes: try Host.readFile(path))
    } catch {
        printError("error: \(error)")
        return nil
    }
}

/// Writes text to standard error.
func printError(_ text: String) {
    Host.writeStandardError(text + "\n")
}

/// `value` with `digits` decimals (String(format:) would need Foundation).
func fixed(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((value * scale).rounded())
    let whole = scaled / Int(scale), fraction = scaled % Int(scale)
    let text = String(fraction)
    return "\(whole)." + String(repeating: "0", count: max(0, digits - text.count)) + text
}

/// A number in hexadecimal, padded with zeros to `width` digits.
func hex<T: BinaryInteger>(_ value: T, _ width: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - text.count)) + text
}

extension Pass: ExpressibleByArgument {}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Parse and verify IL files; report every error.",
        discussion: """
            Exits with status 0 when every file is valid and 1 otherwise. Each problem is \
            printed to standard error as `file:line:col: error: message`, followed by the \
            offending line and a caret under the column. All errors of a file are reported, \
            not only the first; warnings do not change the exit status.
            """
    )

    @Argument(help: "IL files to check.")
    var files: [String]

    @Flag(name: .long, help: "Print each valid module back as IL on standard output.")
    var print = false

    @Flag(name: .long, help: "Do not print warnings.")
    var noWarnings = false

    @Option(name: .long, help: ArgumentHelp(
        "Run the passes up to PASS and print the module as IL after it.",
        discussion: "Passes, in order: \(Pass.allCases.map(\.rawValue).joined(separator: ", ")).",
        valueName: "PASS"))
    var dumpAfter: Pass?

    func run() throws {
        var failed = false
        for path in files {
            guard let source = readSource(path) else {
                failed = true
                continue
            }
            let (module, diagnostics) = parseAndVerify(source)
            for diagnostic in diagnostics where !(noWarnings && diagnostic.severity == .warning) {
                printError(diagnostic.rendered)
            }
            let hasErrors = diagnostics.contains { $0.severity == .error }
            if hasErrors {
                failed = true
            } else if let last = dumpAfter {
                var module = module
                runPipeline(&module, until: last) { pass, module in
                    if pass == last { Swift.print(module.printed(), terminator: "") }
                }
            } else if print {
                Swift.print(module.printed(), terminator: "")
            }
        }
        if failed { throw ExitCode(1) }
    }
}

/// Parses and verifies a file, printing diagnostics; nil when it has errors.
func frontEnd(_ path: String) -> Module? {
    readSource(path).flatMap(frontEnd)
}

/// Parses and verifies a source, printing diagnostics; nil when it has errors.
func frontEnd(_ source: SourceFile) -> Module? {
    let (module, diagnostics) = parseAndVerify(source)
    for diagnostic in diagnostics { printError(diagnostic.rendered) }
    return diagnostics.contains { $0.severity == .error } ? nil : module
}
