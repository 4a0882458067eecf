// QBE's test format and the `kiln test` runner: block extraction, drivers
// built with gcc and linked to JIT code through trampolines, output capture,
// and isolation of crashing tests in child processes.
//
// Tests that build a driver need gcc; without it they fail with the runner's
// "cannot run gcc" message.

import KilnCode
import KilnCodegen
import KilnIL
import KilnTooling
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Compiles IL text into a module named `name`: the one `compile` of these tests.
func compile(_ name: String, _ text: String) -> CompiledModule {
    let (module, diagnostics) = parseAndVerify(SourceFile(name: name, text: text))
    precondition(diagnostics.isEmpty, "the scenario \(name) does not verify: \(diagnostics)")
    return try! compileModule(module)
}

/// Writes `text` to a fresh file under /tmp and returns its path.
func temporaryFile(_ name: String, _ text: String) -> String {
    let path = "/tmp/kiln-tooling-test-\(getpid())-\(name)"
    let file = fopen(path, "w")!
    fputs(text, file)
    fclose(file)
    return path
}

@Suite struct TestFormatTests {
    @Test func extractsDriverAndOutput() throws {
        let text = """
            # a comment before
            export function w $add3(w %x) {
            @start
            \tret 0
            }
            # >>> driver
            # #include <stdio.h>
            #
            # int main() { return 0; }
            # <<<
            # >>> output
            # 7 11
            #  indented
            # <<<
            """
        let test = try TestFile.parse(text: text)
        #expect(test.driver == "#include <stdio.h>\n\nint main() { return 0; }\n")
        #expect(test.expectedOutput == "7 11\n indented\n")
    }

    @Test func fileWithoutBlocks() throws {
        #expect(try TestFile.parse(text: "export function w $main() {\n@s\n\tret 0\n}\n")
                == TestFile(driver: nil, expectedOutput: nil))
        #expect(try TestFile.parse(text: "# >>> output\n# <<<\n") == TestFile(driver: nil, expectedOutput: ""))
    }

    @Test func malformedBlocks() {
        #expect(throws: TestFile.ParseError(line: 2, message: "'# >>> driver' has no closing '# <<<'")) {
            try TestFile.parse(text: "function $f() {}\n# >>> driver\n# int x;\n")
        }
        #expect(throws: TestFile.ParseError(line: 3, message: "line inside '# >>> output' does not start with '# '")) {
            try TestFile.parse(text: "# >>> output\n# 1\n2\n# <<<\n")
        }
        #expect(throws: TestFile.ParseError.self) { try TestFile.parse(text: "# >>> input\n# <<<\n") }
    }

    @Test func trampolineSource() throws {
        let source = try TestFile.trampolineSource(forExportedFunctions: ["add3", "\"foo.bar\""])
        #expect(source.contains(#"\"kiln_slot_add3\": .quad 0"#))
        #expect(source.contains(#"movq \"kiln_slot_foo.bar\"@GOTPCREL(%rip), %r11"#))
        #expect(source.contains(#".globl \"foo.bar\""#))
        #expect(throws: TestFile.ParseError.self) { try TestFile.trampolineSource(forExportedFunctions: ["\"a\\\"b\""]) }
    }
}

/// Modules the runner tests compile their files to, by scenario name.
enum Scenario {
    static let driver = """
        # >>> driver
        # #include <stdio.h>
        # extern long add3(long);
        # extern long twicePlusOne(long);
        # extern long dotted(void) __asm__("foo.bar");
        # long helper(long x) { return 2 * x; }
        # int main(int argc, char **argv) {
        #     printf("%ld %ld %ld\\n", add3(4), twicePlusOne(5), dotted());
        #     printf("%s %d %s\\n", argv[1], argc, argv[3]);
        #     return 0;
        # }
        # <<<

        """

    /// The IL of `driver`'s functions; `twicePlusOne` calls the driver's `helper`.
    static let driven = compile("driven", """
        export function l $add3(l %x) {
        @start
        	%r =l add %x, 3
        	ret %r
        }
        export function l $twicePlusOne(l %x) {
        @start
        	%r =l call $helper(l %x)
        	%s =l add %r, 1
        	ret %s
        }
        export function l $"foo.bar"() {
        @start
        	ret 99
        }
        """)

    static func returning(_ value: Int64) -> CompiledModule {
        compile("status", "export function w $main() {\n@start\n\tret \(value)\n}\n")
    }

    /// `main` prints a line, then executes `hlt`, which traps.
    static let crash = compile("crash", """
        export function w $main() {
        @start
        	%r =w call $puts(l $message)
        	hlt
        }
        data $message = { b "before the crash", b 0 }
        """)

    static func module(named name: String) -> CompiledModule? {
        switch name {
        case "driven": driven
        case "status0": returning(0)
        case "status3": returning(3)
        case "crash": crash
        default: nil
        }
    }

    /// Runs `text` as a test file compiled to scenario `name`, in a child process: this
    /// test binary, filtered down to `RunnerChild`. Running `main` redirects descriptor 1,
    /// which would capture the progress lines of tests running beside it in this process.
    static func runInChild(_ name: String, _ text: String) -> TestResult {
        let path = temporaryFile("child-\(name)-\(text.hashValue).ssa", text)
        defer { unlink(path) }
        return TestRunner.runIsolated(
            path: path, executable: CommandLine.arguments[0],
            arguments: ["--testing-library", "swift-testing", "--filter", "KilnToolingTests.RunnerChild"],
            environment: ["KILN_LOADER_CHILD=\(name)", "KILN_LOADER_CHILD_FILE=\(path)"])
    }

    /// The runner's message in a child's failure: its last line. (Swift Testing in the child
    /// writes its start-up lines to stderr before the test body runs.)
    static func message(_ result: TestResult) -> String? {
        result.failure.map { String($0.split(separator: "\n").last ?? "") }
    }
}

/// The child side of `Scenario.runInChild`; skipped in a normal run.
@Suite struct RunnerChild {
    @Test(.enabled(if: getenv("KILN_LOADER_CHILD") != nil)) func child() {
        let name = String(cString: getenv("KILN_LOADER_CHILD")!)
        let path = String(cString: getenv("KILN_LOADER_CHILD_FILE")!)
        let result = TestRunner.runTestFile(path: path, compile: { source in
            guard source.path == path, let module = Scenario.module(named: name) else {
                throw TestFile.ParseError(line: 0, message: "no scenario \(name)")
            }
            return module
        })
        exit(TestRunner.exitStatus(reporting: result))
    }
}

@Suite struct RunnerTests {
    @Test func driverCallsJITCodeAndBack() {
        let result = Scenario.runInChild("driven", Scenario.driver + "# >>> output\n# 7 11 99\n# a 4 c\n# <<<\n")
        #expect(result.isPassed, "\(result)")
    }

    @Test func wrongOutputNamesTheFirstDifferentLine() {
        let result = Scenario.runInChild("driven", Scenario.driver + "# >>> output\n# 7 11 99\n# a 4 b\n# <<<\n")
        #expect(Scenario.message(result) == #"output differs at line 2: expected "a 4 b", got "a 4 c""#)
        let short = Scenario.runInChild("driven", Scenario.driver + "# >>> output\n# 7 11 99\n# <<<\n")
        #expect(Scenario.message(short) == #"output differs at line 2: expected end of output, got "a 4 c""#)
    }

    @Test func withoutExpectedOutputTheStatusMustBeZero() {
        #expect(Scenario.runInChild("status0", "# no blocks\n").isPassed)
        #expect(Scenario.message(Scenario.runInChild("status3", "# no blocks\n")) == "main returned 3")
    }

    @Test func crashIsReportedWithItsSignal() {
        let result = Scenario.runInChild("crash", "# >>> output\n# before the crash\n# <<<\n")
        #expect(result.failure?.hasPrefix("killed by SIGILL") == true, "\(result)")
    }

    // The tests below fail before `main` runs, so they run in this process.

    @Test func compileAndLoadErrorsFailTheTest() {
        let path = temporaryFile("compile-error.ssa", "# nothing\n")
        defer { unlink(path) }
        struct Oops: Error, CustomStringConvertible { var description: String { "1:1: bad" } }
        let result = TestRunner.runTestFile(path: path, compile: { _ in throw Oops() })
        #expect(result.failure == "does not compile: 1:1: bad")
        // An address is bound when the crate is linked (a call would be bound only when
        // made, and fail then).
        let unresolved = TestRunner.runTestFile(path: path, compile: { _ in
            compile("u", "export function l $main() {\n@start\n\tret $kiln_missing\n}\n")
        })
        #expect(unresolved.failure == "u: undefined symbol $kiln_missing, used by $main")
    }

    @Test func missingCompilerIsAClearFailure() {
        let path = temporaryFile("no-compiler.ssa", Scenario.driver)
        defer { unlink(path) }
        let result = TestRunner.runTestFile(path: path, compile: { _ in Scenario.driven },
                                            compiler: "kiln-no-such-compiler")
        #expect(result.failure?.hasPrefix("cannot run kiln-no-such-compiler to build the driver") == true)
    }

    @Test func gccIsAvailable() {
        // The driver tests need gcc; say so plainly when it is missing.
        let found = ["/usr/bin/gcc", "/usr/local/bin/gcc", "/bin/gcc"].contains { (path: String) in access(path, X_OK) == 0 }
        #expect(found, "gcc is not installed: the kiln test runner needs it to build C drivers")
    }
}

@Suite struct IsolationTests {
    @Test func childOutcomes() {
        #expect(TestRunner.runIsolated(path: "ok", executable: "/bin/sh", arguments: ["-c", "exit 0"]).isPassed)
        let failed = TestRunner.runIsolated(path: "f", executable: "/bin/sh", arguments: ["-c", "echo why >&2; exit 1"])
        #expect(failed.failure == "why")
        let crashed = TestRunner.runIsolated(
            path: "c", executable: "/bin/sh", arguments: ["-c", "echo ignored; echo partial >&2; kill -SEGV $$"])
        #expect(crashed.failure == "killed by SIGSEGV\npartial")
        let odd = TestRunner.runIsolated(path: "o", executable: "/bin/sh", arguments: ["-c", "exit 7"])
        #expect(odd.failure == "the test process exited with status 7")
        let slow = TestRunner.runIsolated(path: "s", executable: "/bin/sleep", arguments: ["10"], timeout: 0.3)
        #expect(slow.failure == "timed out after 0.3 seconds")
        let missing = TestRunner.runIsolated(path: "m", executable: "/nonexistent/kiln", arguments: [])
        #expect(missing.failure?.hasPrefix("cannot run the test") == true)
    }

    @Test func summaryLine() {
        let summary = TestSummary(results: [
            TestResult(path: "a", failure: nil), TestResult(path: "b", failure: "x"), TestResult(path: "c", failure: nil),
        ])
        #expect(summary.description == "2 passed, 1 failed")
    }

    @Test func childSideExitStatus() {
        #expect(TestRunner.exitStatus(reporting: TestResult(path: "a", failure: nil)) == 0)
    }
}

