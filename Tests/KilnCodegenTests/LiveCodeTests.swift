// Live code under programs that Kiln did not write: C translated to IL by
// cproc (Tests/Programs, the translation committed beside each C file), run
// through the real `kiln` while the compaction stress mode moves code at every
// entry into the runtime. Each of these crashed before the runtime stopped
// every thread and kept the callers of setjmp in place.

import Foundation
import Testing

/// A C file of Tests/Programs built as a shared object in `directory`.
func buildLibrary(_ name: String, in directory: String) throws -> String {
    let library = directory + "/lib\(name).so"
    let result = try run("/usr/bin/env", ["gcc", "-O2", "-shared", "-fPIC", "-o", library,
                                          packageRoot.appendingPathComponent("Tests/Programs/\(name).c").path, "-lpthread"])
    guard result.status == 0 else { throw RunError(message: "gcc: \(result.error)") }
    return library
}

func programPath(_ name: String) -> String {
    packageRoot.appendingPathComponent("Tests/Programs/\(name).ssa").path
}

@Suite struct LiveCodeTests {
    @Test func threadsACLibraryStartedCallKilnCodeWhileItMoves() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let library = try buildLibrary("workers", in: directory)
        for stress in ["compact", "compact:3"] {
            let result = try runKiln(["run", "--link", library, programPath("workers-main"), "--stats", "--", "300", "20000"],
                                     environment: ["KILN_STRESS": stress])
            #expect(result.status == 0, "\(stress): \(result.error)")
            #expect(result.output == "0 wrong results\n", "\(stress): \(result.output)")
            // The program compacted while four threads of the library ran its function.
            #expect(result.error.contains("compactions:"), "\(result.error)")
        }
    }

    /// Threads that cannot be stopped (they block every signal while running Kiln code):
    /// nothing moves while they run, `--stats` says so, and every result stays right. A
    /// thread that blocks signals but waits in the kernel does not stop compaction. Threads
    /// that start and exit all the time are stopped or gone, never half seen.
    @Test(arguments: ["blocking", "quiet", "churn"]) func threadsThatBlockTheSignalOrComeAndGo(mode: String) throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let library = try buildLibrary("workers", in: directory)
        let result = try runKiln(["run", "--link", library, programPath("workers-main"), "--stats", "--", "200", "5000", "2", mode],
                                 environment: ["KILN_STRESS": "compact"])
        #expect(result.status == 0, "\(mode): \(result.error)")
        #expect(result.output == "0 wrong results\n", "\(mode): \(result.output)")
        func figure(_ label: String) -> Int {
            guard let range = result.error.range(of: label) else { return -1 }
            return Int(result.error[range.upperBound...].prefix { $0.isNumber }) ?? -1
        }
        switch mode {
        case "blocking":
            // They are seen and reported. (A compaction still happens when one finds them
            // preempted in C, away from Kiln code: then they are quiet and the stubs gated.)
            #expect(figure("(all time: ") > 0, "\(result.error)")
        case "quiet":
            // Compaction goes on. (A quiet thread is sometimes caught just woken, before it
            // is back in the kernel: on a busy machine that puts off a compaction or two.)
            #expect(figure("compactions put off: ") * 10 <= figure("compactions: "), "\(result.error)")
            #expect(figure("compactions: ") >= 200, "\(result.error)")
        default:
            #expect(figure("compactions: ") >= 200, "\(result.error)")
        }
    }

    @Test func longjmpReturnsIntoCodeThatCompactionWouldHaveMoved() throws {
        for stress in ["", "compact", "compact:2"] {
            let result = try runKiln(["run", programPath("longjmp")], environment: stress.isEmpty ? [:] : ["KILN_STRESS": stress])
            #expect(result.status == 0, "\(stress): \(result.error)")
            // 300 longjmps of 7 and 100 faults caught by the program's own SIGSEGV handler.
            #expect(result.output == "2200\n", "\(stress): \(result.output) \(result.error)")
        }
    }
}

/// No allocation while the world is stopped: `kiln` runs with a malloc that aborts when the
/// thread that stopped the world allocates (Tests/Programs/allocation-guard.c, preloaded).
/// A stopped thread may hold a malloc lock; an allocation there could hang the process.
@Suite struct StoppedWorldAllocationTests {
    func guardLibrary(in directory: String) throws -> String {
        let library = directory + "/libguard.so"
        let result = try run("/usr/bin/env", ["gcc", "-O2", "-shared", "-fPIC", "-o", library,
                                              packageRoot.appendingPathComponent("Tests/Programs/allocation-guard.c").path])
        guard result.status == 0 else { throw RunError(message: "gcc: \(result.error)") }
        return library
    }

    @Test func compactionsUnderForeignThreadsAllocateNothing() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let guardLibrary = try guardLibrary(in: directory)
        let workers = try buildLibrary("workers", in: directory)
        let result = try runKiln(["run", "--link", workers, programPath("workers-main"), "--", "100", "5000"],
                                 environment: ["KILN_STRESS": "compact", "LD_PRELOAD": guardLibrary, "KILN_GUARD_REPORT": "1"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == "0 wrong results\n")
        #expect(!result.error.contains("while the world is stopped"), "\(result.error)")
        // The guard saw the stops (one per compaction at least).
        let stops = result.error.split(separator: "\n").first { $0.hasPrefix("allocation-guard: stops ") }
            .flatMap { Int($0.dropFirst("allocation-guard: stops ".count)) } ?? 0
        #expect(stops >= 100, "\(result.error)")
    }

    @Test func reloadsAllocateNothingWhileTheWorldIsStopped() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let guardLibrary = try guardLibrary(in: directory)
        let path = directory + "/live.ssa"
        let program = """
            export function w $main() {
            @start
            	%i =w copy 0
            @loop
            	%v =w call $value()
            	%z =w call $printf(l $fmt, ..., w %v)
            	%f =w call $fflush(l 0)
            	%u =w call $usleep(w 5000)
            	%i =w add %i, 1
            	%stop =w ceqw %v, 3
            	jnz %stop, @end, @check
            @check
            	%more =w csltw %i, 2000
            	jnz %more, @loop, @end
            @end
            	ret 0
            }
            function w $value() {
            @start
            	ret 1
            }
            data $fmt = { b "%d\\n", b 0 }
            """
        try program.write(toFile: path, atomically: false, encoding: .utf8)
        let seen = directory + "/seen"
        FileManager.default.createFile(atPath: seen, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try kilnExecutable())
        process.arguments = ["run", "--watch", path]
        var environment = ProcessInfo.processInfo.environment
        environment["LD_PRELOAD"] = guardLibrary
        environment["KILN_GUARD_REPORT"] = "1"
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        let error = Pipe()
        process.standardOutput = FileHandle(forWritingAtPath: seen)
        process.standardError = error
        try process.run()
        func waitFor(_ line: String) {
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline {
                if let text = try? String(contentsOfFile: seen, encoding: .utf8), text.contains(line) { return }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        waitFor("1\n")
        // In place (it fits and nothing runs in it), then fresh with a new function.
        try program.replacingOccurrences(of: "\tret 1", with: "\tret 2").write(toFile: path, atomically: false, encoding: .utf8)
        waitFor("2\n")
        try program.replacingOccurrences(of: "\tret 1", with: "\t%t =w call $three()\n\tret %t")
            .replacingOccurrences(of: "data $fmt", with: "function w $three() {\n@start\n\tret 3\n}\ndata $fmt")
            .write(toFile: path, atomically: false, encoding: .utf8)
        let errors = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = (try? String(contentsOfFile: seen, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(errors)")
        #expect(lines.contains("1\n2\n") && lines.hasSuffix("2\n3\n"), "\(lines.suffix(40))")
        #expect(!errors.contains("while the world is stopped"), "\(errors)")
        #expect(errors.contains("allocation-guard: stops"), "\(errors)")
    }
}

@Suite struct BindingTests {
    /// The first call through a slot binds it; the C library must not notice: dlerror still
    /// has the error dlopen left (a dlsym while binding would clear it), and errno is kept.
    @Test func bindingLeavesErrnoAndDlerrorAlone() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            export function w $main() {
            @start
            	%fd =w call $open(l $missingFile, w 0)
            	%where =l call $__errno_location()
            	%errno =w loadw %where
            	%handle =l call $dlopen(l $missingLibrary, w 2)
            	%message =l call $dlerror()
            	jnz %message, @found, @none
            @found
            	%a =w call $printf(l $withMessage, ..., w %fd, w %errno, l %message)
            	ret 0
            @none
            	%b =w call $printf(l $withoutMessage, ..., w %fd, w %errno)
            	ret 1
            }
            data $missingFile = { b "/nonexistent/kiln-test-file", b 0 }
            data $missingLibrary = { b "/nonexistent/libkiln-test.so", b 0 }
            data $withMessage = { b "%d %d %s\\n", b 0 }
            data $withoutMessage = { b "%d %d (null)\\n", b 0 }
            """.write(toFile: directory + "/state.ssa", atomically: true, encoding: .utf8)
        for stress in ["", "compact"] {
            let result = try runKiln(["run", directory + "/state.ssa"], environment: stress.isEmpty ? [:] : ["KILN_STRESS": stress])
            #expect(result.status == 0, "\(stress): \(result.output) \(result.error)")
            // open failed with ENOENT (2), and dlerror names the library dlopen could not open.
            #expect(result.output.hasPrefix("-1 2 /nonexistent/libkiln-test.so: "), "\(stress): \(result.output)")
        }
    }
}

@Suite struct StressSpecificationTests {
    @Test func anUnknownStressModeIsAnErrorNotIgnored() throws {
        let program = packageRoot.appendingPathComponent("examples/hello.ssa").path
        for good in ["compact", "compact:7", ""] {
            let result = try runKiln(["run", program], environment: ["KILN_STRESS": good])
            #expect(result.status == 0, "\(good): \(result.error)")
        }
        for bad in ["compat", "compact:0", "compact:x", "compact,collectt"] {
            let result = try runKiln(["run", program], environment: ["KILN_STRESS": bad])
            #expect(result.status != 0, "\(bad) was accepted")
            #expect(result.error.contains("KILN_STRESS=\(bad)"), "\(bad): \(result.error)")
        }
    }
}

@Suite struct ForeignThreadWatchTests {
    /// `kiln run --watch` on a program whose function a C library's own threads call in a
    /// loop: editing that function reloads it while they run, and none of them notices
    /// anything but the new code.
    @Test func editingTheFunctionForeignThreadsRun() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let library = try buildLibrary("workers", in: directory)
        let path = directory + "/workers-main.ssa"
        let original = try String(contentsOfFile: programPath("workers-main"), encoding: .utf8)
        try original.write(toFile: path, atomically: false, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try kilnExecutable())
        // Enough rounds to run for a few seconds.
        process.arguments = ["run", "--watch", "--link", library, path, "--stats", "--", "10000", "20000"]
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        environment["KILN_WATCH_SETTLE_MS"] = "50"
        process.environment = environment
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        Thread.sleep(forTimeInterval: 0.5)
        // The same result computed another way: x * x + 1 as (x + 1) * x - x + 1.
        guard let range = original.range(of: "function l $square_plus_one") else {
            Issue.record("no $square_plus_one in the translated program")
            return
        }
        let edited = original.replacingCharacters(in: range, with: "function l $square_plus_one_old")
            + """

            export function l $square_plus_one(l %x) {
            @start
            	%a =l add %x, 1
            	%b =l mul %a, %x
            	%c =l sub %b, %x
            	%d =l add %c, 1
            	ret %d
            }

            """
        try edited.write(toFile: path, atomically: false, encoding: .utf8)
        let errorText = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let outputText = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(errorText)")
        #expect(outputText == "0 wrong results\n", "\(outputText) \(errorText)")
        #expect(errorText.contains("kiln: reloaded \(path) v2"), "\(errorText)")
    }
}
