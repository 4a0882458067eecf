// The `kiln` executable, run as a user would: exit status and what it prints.
//
// Package.swift gives this target no dependency on the executable, so the test
// looks for the binary SwiftPM builds next to the test bundle.

import Foundation
import Testing

/// The built `kiln` binary, or nil when it has not been built.
private let kilnBinary: URL? = {
    let bundleFolder = Bundle.module.bundleURL.deletingLastPathComponent()
    var candidates = [bundleFolder.appendingPathComponent("kiln")]
    if let environment = ProcessInfo.processInfo.environment["KILN_BINARY"] {
        candidates.insert(URL(fileURLWithPath: environment), at: 0)
    }
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
}()

/// Runs `kiln` with `arguments`; returns the exit status, standard output and standard error.
private func kiln(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    guard let binary = kilnBinary else {
        Issue.record("the kiln executable was not found next to the test bundle (\(Bundle.module.bundleURL.deletingLastPathComponent().path)); build it with `swift build` or set KILN_BINARY")
        return (-1, "", "")
    }
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

private func input(_ folder: String, _ name: String) -> String {
    inputsDirectory.appendingPathComponent(folder).appendingPathComponent(name).path
}

/// Writes `text` to a fresh temporary file and returns its path.
private func temporaryFile(_ text: String) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-cli-\(UUID().uuidString).ssa")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

@Suite(.serialized) struct CLITests {
    @Test func validFileExitsZeroSilently() throws {
        let path = input("valid", "phi.ssa")
        let result = try kiln(["check", path])
        #expect(result.status == 0)
        #expect(result.err.isEmpty, "\(result.err)")
    }

    @Test func severalValidFiles() throws {
        let result = try kiln(["check", input("valid", "phi.ssa"), input("valid", "call-env.ssa"), input("valid", "kiln-services.ssa")])
        #expect(result.status == 0, "\(result.err)")
    }

    @Test func invalidFileExitsOneWithLocatedErrors() throws {
        let path = try temporaryFile("function $f() {\n@start\n\t%x =w add %y, 1\n\tjmp @start\n}\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try kiln(["check", path])
        #expect(result.status == 1)
        #expect(result.err.contains("\(path):3:12: error: temporary %y is used but never defined"))
        #expect(result.err.contains("\(path):4:2: error: jump to the start block"))
        #expect(result.err.contains("\t%x =w add %y, 1\n\t          ^"))
        #expect(result.out.isEmpty)
    }

    @Test func oneBadFileAmongGoodOnesFails() throws {
        let bad = try temporaryFile("data $d = { w \"s\" }\n")
        defer { try? FileManager.default.removeItem(atPath: bad) }
        let result = try kiln(["check", input("valid", "phi.ssa"), bad])
        #expect(result.status == 1)
        #expect(result.err.contains("\(bad):1:15: error:"))
    }

    @Test func printWritesTheModuleBack() throws {
        let result = try kiln(["check", "--print", input("valid", "phi.ssa")])
        #expect(result.status == 0)
        #expect(result.out.contains("function w $count(w %n) {"))
        #expect(result.out.contains("%i =w phi @start 0, @body %next"))
    }

    @Test func warningsAreShownUnlessSuppressed() throws {
        let path = try temporaryFile("data $d = { b 300 }\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let shown = try kiln(["check", path])
        #expect(shown.status == 0)
        #expect(shown.err.contains("\(path):1:15: warning:"))
        let hidden = try kiln(["check", "--no-warnings", path])
        #expect(hidden.status == 0)
        #expect(hidden.err.isEmpty)
    }

    @Test func missingFileIsAClearError() throws {
        let result = try kiln(["check", "/nonexistent/file.ssa"])
        #expect(result.status == 1)
        #expect(result.err.contains("/nonexistent/file.ssa"))
        #expect(result.err.contains("no such file"))
    }

    @Test func directoryIsAClearError() throws {
        let result = try kiln(["check", FileManager.default.temporaryDirectory.path])
        #expect(result.status == 1)
        #expect(result.err.contains("is a directory"))
    }

    @Test func help() throws {
        let top = try kiln(["--help"])
        #expect(top.status == 0)
        #expect(top.out.contains("check"))
        let sub = try kiln(["check", "--help"])
        #expect(sub.status == 0)
        #expect(sub.out.contains("check"))
        #expect(sub.out.contains("--print"))
        // Every subcommand answers --help, `run` too, whose arguments pass through to the program.
        for (command, mentions) in [("run", "--watch"), ("build", "--output"), ("dis", "TOC"), ("compile", "--times"), ("test", "passed")] {
            for flag in ["--help", "-h"] {
                let help = try kiln([command, flag])
                #expect(help.status == 0, "kiln \(command) \(flag): \(help.err)")
                #expect(help.out.contains(mentions), "kiln \(command) \(flag)")
            }
        }
    }
}
