// The one entry point the front-end tests use, and the input files they read.
//
// `check(_:)` runs the whole front end (parse, verify) on a piece of text and
// returns the module with its diagnostics already rendered as `line:col`; every
// other test goes through it, so a change to the public API edits this file only.
// The input files live in `Inputs/valid` (whole `.ssa` files that must verify)
// and `Inputs/invalid` (many cases per file, format described in `InputCase`).

import Foundation
import KilnIL
import Testing

/// One diagnostic, reduced to what a test compares.
struct Reported: CustomStringConvertible, Equatable {
    var severity: Severity
    var line: Int
    var column: Int
    var message: String

    var description: String { "\(line):\(column): \(severity.rawValue): \(message)" }
}

/// What the front end made of one text.
struct Checked {
    /// The parsed and verified module.
    var module: Module
    /// Every diagnostic, in file order.
    var diagnostics: [Reported]
    /// The raw diagnostics, for tests of rendering.
    var raw: [Diagnostic]

    var errors: [Reported] { diagnostics.filter { $0.severity == .error } }
    var warnings: [Reported] { diagnostics.filter { $0.severity == .warning } }
}

/// Parses and verifies `text` as a file called `name`: the one call into the front end.
func check(_ text: String, name: String = "test.ssa") -> Checked {
    let source = SourceFile(name: name, text: text)
    let (module, diagnostics) = parseAndVerify(source)
    let reported = diagnostics.map { diagnostic in
        let (line, column) = source.lineAndColumn(of: diagnostic.location)
        return Reported(severity: diagnostic.severity, line: line, column: column, message: diagnostic.message)
    }
    return Checked(module: module, diagnostics: reported, raw: diagnostics)
}

/// Parses `text` without verifying it (the round trip compares parser output).
func parseOnly(_ text: String, name: String = "test.ssa") -> (Module, [Diagnostic]) {
    let (module, diagnostics) = parseModule(SourceFile(name: name, text: text))
    return (module, diagnostics.all)
}

// MARK: Expectations

/// A diagnostic a test input announces: `# expect L:C: text` (an error) or `# warning L:C: text`.
struct Expected: CustomStringConvertible {
    var severity: Severity
    var line: Int
    var column: Int
    var substring: String

    var description: String { "\(line):\(column): \(severity.rawValue): …\(substring)…" }

    func matches(_ reported: Reported) -> Bool {
        reported.severity == severity && reported.line == line && reported.column == column
            && reported.message.contains(substring)
    }

    /// Reads every `# expect` and `# warning` line of a text; line numbers are the text's own.
    static func all(in text: String) -> [Expected] {
        var result: [Expected] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            let severity: Severity
            let rest: Substring
            if trimmed.hasPrefix("# expect ") {
                severity = .error
                rest = trimmed.dropFirst("# expect ".count)
            } else if trimmed.hasPrefix("# warning ") {
                severity = .warning
                rest = trimmed.dropFirst("# warning ".count)
            } else {
                continue
            }
            let parts = rest.split(separator: ":", maxSplits: 2)
            guard parts.count == 3, let l = Int(parts[0]), let c = Int(parts[1]) else {
                Issue.record("malformed expectation line: \(line)")
                continue
            }
            result.append(Expected(severity: severity, line: l, column: c,
                                   substring: String(parts[2].drop { $0 == " " })))
        }
        return result
    }
}

/// Pairs every expectation with a distinct diagnostic; records an issue for each
/// expectation left unmatched and for each diagnostic nobody expected.
func expectExactly(_ expected: [Expected], _ reported: [Reported], in what: String,
                   sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    var unmatched = reported
    var missing: [Expected] = []
    for expectation in expected {
        if let index = unmatched.firstIndex(where: expectation.matches) {
            unmatched.remove(at: index)
        } else {
            missing.append(expectation)
        }
    }
    if !missing.isEmpty || !unmatched.isEmpty {
        let text = (missing.map { "missing    \($0)" } + unmatched.map { "unexpected \($0)" }).joined(separator: "\n")
        Issue.record("\(what):\n\(text)\nall reported:\n\(reported.map(\.description).joined(separator: "\n"))",
                     sourceLocation: sourceLocation)
    }
}

// MARK: Input files

/// The `Inputs` folder copied into the test bundle.
let inputsDirectory: URL = {
    guard let url = Bundle.module.url(forResource: "Inputs", withExtension: nil) else {
        fatalError("Inputs folder missing from the test bundle")
    }
    return url
}()

/// The files of `Inputs/<folder>` with the given extension, sorted by name.
func inputFiles(_ folder: String, extension wanted: String) -> [URL] {
    let directory = inputsDirectory.appendingPathComponent(folder)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { $0.hasSuffix("." + wanted) }.sorted().map { directory.appendingPathComponent($0) }
}

func contents(_ url: URL) -> String {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
        fatalError("cannot read \(url.path)")
    }
    return text
}

/// One valid input file.
struct ValidFile: CustomTestStringConvertible, Sendable {
    var name: String
    var text: String
    var testDescription: String { name }

    static let all: [ValidFile] = inputFiles("valid", extension: "ssa").map {
        ValidFile(name: $0.lastPathComponent, text: contents($0))
    }
}

/// One case of an `Inputs/invalid/*.txt` file.
///
/// Format (repeated at the top of every such file): a line `### name` starts a
/// case; the case's text runs to the next `###` line or the end of the file,
/// with trailing blank lines dropped and one final newline kept. Line 1 of the
/// case is the line after its header. Lines `# expect L:C: text` and
/// `# warning L:C: text` (IL comments, so the parser ignores them) name every
/// diagnostic the case must produce: an error (or warning) at line L, column C
/// whose message contains `text`. The case passes when every expectation
/// matches a distinct diagnostic and no diagnostic is left over. Lines before
/// the first `###` are the file's own comments.
struct InputCase: CustomTestStringConvertible, Sendable {
    var file: String
    var name: String
    var text: String
    var testDescription: String { "\(file): \(name)" }

    static func cases(in file: String, text: String) -> [InputCase] {
        var result: [InputCase] = []
        var name: String?
        var lines: [Substring] = []
        func finish() {
            guard let name else { return }
            while let last = lines.last, last.allSatisfy({ $0 == " " || $0 == "\t" }) { lines.removeLast() }
            result.append(InputCase(file: file, name: name, text: lines.joined(separator: "\n") + "\n"))
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("### ") {
                finish()
                name = String(line.dropFirst(4))
                lines = []
            } else {
                lines.append(line)
            }
        }
        finish()
        return result
    }

    static let invalid: [InputCase] = inputFiles("invalid", extension: "txt").flatMap {
        cases(in: $0.lastPathComponent, text: contents($0))
    }
}
