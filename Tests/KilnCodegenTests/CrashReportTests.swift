// Crash reports: programs in Tests/Programs/crashes that fault, abort, overflow
// their stack or call what nothing defines, run through the `kiln` binary. Each
// report must name the signal, the frames of generated code by function and IL
// line, and end the process with 128 + the signal (70 for runtime errors), with
// what the program left in stdout's buffer written out.

import Foundation
import Testing

@Suite struct CrashReportTests {
    /// The path of crash program `name`.
    static func program(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tests/Programs/crashes/\(name).ssa").path
    }

    /// The 1-based line of `program` that holds `text`.
    static func line(of text: String, in program: String) throws -> Int {
        let lines = try String(contentsOfFile: program, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let index = try #require(lines.firstIndex { $0.contains(text) }, "\(text) is not in \(program)")
        return index + 1
    }

    /// `$function at FILE:LINE` as the report names a frame, for the line holding `text`.
    static func frame(_ function: String, at text: String, in name: String) throws -> String {
        let path = program(name)
        return "$\(function) at \(path):\(try line(of: text, in: path)) in crate \(path)"
    }

    /// The report's frame lines, in order.
    static func frames(_ report: String) -> [String] {
        report.split(separator: "\n").filter { $0.hasPrefix("  #") }.map(String.init)
    }

    static let stressModes: [[String: String]] = [[:], ["KILN_STRESS": "compact"]]

    @Test(arguments: stressModes)
    func storeToAddressZero(_ environment: [String: String]) throws {
        let result = try run(try kilnExecutable(), ["run", Self.program("store-null")], environment: environment)
        #expect(result.status == 128 + SIGSEGV, "\(result.error)")
        #expect(result.output == "buffered before the crash\n")
        #expect(result.error.hasPrefix("kiln: the program crashed: SIGSEGV (access to unmapped memory) at address 0x0, pc 0x"), "\(result.error)")
        let frames = Self.frames(result.error)
        try #require(frames.count == 2, "\(result.error)")
        #expect(frames[0].hasPrefix("  #0 0x"))
        #expect(frames[0].hasSuffix(try Self.frame("store", at: "storew 7", in: "store-null")), "\(frames[0])")
        #expect(frames[1].hasSuffix(try Self.frame("main", at: "call $store", in: "store-null")), "\(frames[1])")
        #expect(!result.error.contains("Thread 0"), "Swift's crash dump was printed")
    }

    @Test func divisionByZero() throws {
        let result = try run(try kilnExecutable(), ["run", Self.program("divide-zero")])
        #expect(result.status == 128 + SIGFPE, "\(result.error)")
        #expect(result.error.hasPrefix("kiln: the program crashed: SIGFPE (integer division by zero), pc 0x"), "\(result.error)")
        let frames = Self.frames(result.error)
        try #require(frames.count == 2, "\(result.error)")
        #expect(frames[0].hasSuffix(try Self.frame("divide", at: "div %a", in: "divide-zero")), "\(frames[0])")
        #expect(frames[1].hasSuffix(try Self.frame("main", at: "call $divide", in: "divide-zero")), "\(frames[1])")
    }

    @Test func illegalInstruction() throws {
        let result = try run(try kilnExecutable(), ["run", Self.program("hlt")])
        #expect(result.status == 128 + SIGILL, "\(result.error)")
        #expect(result.error.hasPrefix("kiln: the program crashed: SIGILL (illegal instruction), pc 0x"), "\(result.error)")
        let frames = Self.frames(result.error)
        #expect(frames.count == 1, "\(result.error)")
        #expect(frames.first?.hasSuffix(try Self.frame("main", at: "\thlt", in: "hlt")) == true, "\(result.error)")
    }

    @Test func abortFromTheProgram() throws {
        let result = try run(try kilnExecutable(), ["run", Self.program("abort")])
        #expect(result.status == 128 + SIGABRT, "\(result.error)")
        #expect(result.output == "about to abort\n")
        #expect(result.error.hasPrefix("kiln: the program crashed: SIGABRT (abort), pc 0x"), "\(result.error)")
        let frames = Self.frames(result.error)
        // The C frames of abort (named by their symbols where libc exports one), then main.
        #expect(frames.contains { $0.hasSuffix(" in abort (libc.so.6)") }, "\(result.error)")
        #expect(frames.last?.hasSuffix(try Self.frame("main", at: "call $abort", in: "abort")) == true, "\(result.error)")
    }

    @Test func stackOverflow() throws {
        let result = try run(try kilnExecutable(), ["run", Self.program("recursion")])
        #expect(result.status == 128 + SIGSEGV, "\(result.error)")
        #expect(result.error.hasPrefix("kiln: stack overflow (SIGSEGV at address 0x"), "\(result.error)")
        let frames = Self.frames(result.error)
        let deep = try Self.frame("deep", at: "call $deep(w %m)", in: "recursion")
        #expect(frames.first?.hasSuffix(deep) == true, "\(result.error)")
        #expect(frames.last?.hasSuffix(try Self.frame("main", at: "call $deep(w 0)", in: "recursion")) == true, "\(result.error)")
        // Recursion is one line and a count, not a hundred thousand lines.
        #expect(frames.count <= 4, "\(result.error)")
        #expect(result.error.contains("more times)"), "\(result.error)")
    }

    @Test func stackOverflowInAThreadTheProgramStarted() throws {
        let result = try run(try kilnExecutable(), ["run", Self.program("thread-recursion")])
        #expect(result.status == 128 + SIGSEGV, "\(result.error)")
        #expect(result.error.hasPrefix("kiln: stack overflow (SIGSEGV"), "\(result.error)")
        let worker = try Self.frame("worker", at: "call $deep(w 0)", in: "thread-recursion")
        #expect(Self.frames(result.error).contains { $0.hasSuffix(worker) }, "\(result.error)")
    }

    @Test func framesOfCBetweenFramesOfKiln() throws {
        let result = try run(try kilnExecutable(), ["run", Self.program("qsort-comparator")])
        #expect(result.status == 128 + SIGFPE, "\(result.error)")
        let frames = Self.frames(result.error)
        #expect(frames.first?.hasSuffix(try Self.frame("compare", at: "div %x", in: "qsort-comparator")) == true, "\(result.error)")
        #expect(frames.contains { $0.contains("qsort") && $0.hasSuffix("(libc.so.6)") }, "\(result.error)")
        #expect(frames.last?.hasSuffix(try Self.frame("main", at: "call $qsort", in: "qsort-comparator")) == true, "\(result.error)")
    }

    @Test(arguments: stressModes)
    func aProgramsOwnHandlerRunsInstead(_ environment: [String: String]) throws {
        let result = try run(try kilnExecutable(), ["run", Self.program("own-handler")], environment: environment)
        #expect(result.status == 3, "\(result.error)")
        #expect(result.output == "the program's own handler ran\n")
        #expect(result.error.isEmpty, "\(result.error)")
    }

    @Test func runtimeErrorsPrintTheBacktrace() throws {
        let result = try run(try kilnExecutable(), ["run", Self.program("undefined-symbol")])
        #expect(result.status == 70, "\(result.error)")
        let path = Self.program("undefined-symbol")
        #expect(result.error.hasPrefix("kiln: error: \(path): call to undefined symbol $no_such_function_anywhere from $helper\n"),
                "\(result.error)")
        let frames = Self.frames(result.error)
        try #require(frames.count == 2, "\(result.error)")
        #expect(frames[0].hasSuffix(try Self.frame("helper", at: "call $no_such", in: "undefined-symbol")), "\(frames[0])")
        #expect(frames[1].hasSuffix(try Self.frame("main", at: "call $helper", in: "undefined-symbol")), "\(frames[1])")
    }
}
