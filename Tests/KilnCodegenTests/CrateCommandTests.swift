// The crate surfaces of the command, run as a user runs them: programs made of
// several crates, crate files, `kiln dis` on linked crates, `kiln run --watch`
// reloading a running program, and the whole conformance corpus under the
// compaction stress mode.

import Foundation
import Testing

/// Runs `kiln` with extra environment variables.
func runKiln(_ arguments: [String], environment extra: [String: String] = [:]) throws
    -> (status: Int32, output: String, error: String)
{
    try run(try kilnExecutable(), arguments, environment: extra)
}

extension Int32 {
    func expectZero() { #expect(self == 0) }
}

/// A fresh directory for one test's files.
func scratchDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "kiln-crates-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

let utilCrate = """
    export data $counter = { l 40 }
    export function l $twice(l %x) {
    @start
    	%y =l add %x, %x
    	%c =l loadl $counter
    	%c1 =l add %c, 1
    	storel %c1, $counter
    	ret %y
    }
    """

let mainCrate = """
    export function w $main() {
    @start
    	%a =l call $twice(l 21)
    	%c =l loadl $counter
    	%z =w call $printf(l $fmt, ..., l %a, l %c)
    	ret 0
    }
    data $fmt = { b "%ld %ld\\n", b 0 }
    """

@Suite struct CrateCommandTests {
    @Test func programsOfSeveralCrates() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try mainCrate.write(toFile: directory + "/main.ssa", atomically: true, encoding: .utf8)
        try utilCrate.write(toFile: directory + "/util.ssa", atomically: true, encoding: .utf8)
        let result = try runKiln(["run", directory + "/main.ssa", directory + "/util.ssa", "--stats"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == "42 41\n")
        #expect(result.error.contains("call slots bound: 2"), "\(result.error)")
        // Order does not matter: crates are linked by their exports.
        let reversed = try runKiln(["run", directory + "/util.ssa", directory + "/main.ssa"])
        #expect(reversed.output == "42 41\n")
        // The same export twice is an error naming both crates.
        try utilCrate.write(toFile: directory + "/again.ssa", atomically: true, encoding: .utf8)
        let twice = try runKiln(["run", directory + "/main.ssa", directory + "/util.ssa", directory + "/again.ssa"])
        #expect(twice.status == 1)
        #expect(twice.error.contains("$twice is exported by both \(directory)/util.ssa and \(directory)/again.ssa"), "\(twice.error)")
        // A missing address import fails at link time, naming it and its user.
        let alone = try runKiln(["run", directory + "/main.ssa"])
        #expect(alone.status == 1)
        #expect(alone.error.contains("undefined symbol $counter, used by $main"), "\(alone.error)")
    }

    @Test func crateFilesMixWithILFiles() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try mainCrate.write(toFile: directory + "/main.ssa", atomically: true, encoding: .utf8)
        try utilCrate.write(toFile: directory + "/util.ssa", atomically: true, encoding: .utf8)
        let build = try runKiln(["build", directory + "/util.ssa"])
        #expect(build.status == 0, "\(build.error)")
        let crate = directory + "/util.kcrate"
        let result = try runKiln(["run", directory + "/main.ssa", crate])
        #expect(result.output == "42 41\n", "\(result.error)")
        try runKiln(["build", directory + "/main.ssa", "-o", directory + "/main.kcrate"]).status.expectZero()
        #expect(try runKiln(["run", directory + "/main.kcrate", crate]).output == "42 41\n")
        // A damaged crate file is refused with the reason, and nothing runs.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: crate)))
        bytes[bytes.count - 3] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/bad.kcrate"))
        let damaged = try runKiln(["run", directory + "/main.ssa", directory + "/bad.kcrate"])
        #expect(damaged.status == 1 && damaged.output.isEmpty)
        #expect(damaged.error.contains("error: \(directory)/bad.kcrate: not a usable crate file: byte 32: checksum mismatch"), "\(damaged.error)")
        try Data(bytes.prefix(100)).write(to: URL(fileURLWithPath: directory + "/short.kcrate"))
        let short = try runKiln(["run", directory + "/main.ssa", directory + "/short.kcrate"])
        #expect(short.status == 1)
        #expect(short.error.contains("error: \(directory)/short.kcrate: not a usable crate file"), "\(short.error)")
    }

    @Test func disassemblyShowsTheTOCAndUsers() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try mainCrate.write(toFile: directory + "/main.ssa", atomically: true, encoding: .utf8)
        try utilCrate.write(toFile: directory + "/util.ssa", atomically: true, encoding: .utf8)
        let result = try runKiln(["dis", directory + "/main.ssa", directory + "/util.ssa"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("crate \(directory)/main.ssa: 1 functions, 1 data objects"))
        #expect(result.output.contains("  imports: $kiln.stack_limit $twice $counter $printf $kiln.grow"))
        #expect(result.output.contains("call    $twice: unbound, resolver stub"))
        #expect(result.output.contains("address $counter: 0x"))
        #expect(result.output.contains("(exported by \(directory)/util.ssa)"))
        #expect(result.output.contains("  exports: $twice $counter"))
        #expect(result.output.contains("  users: \(directory)/main.ssa"))
    }

    /// Also under the compaction stress mode, where the program enters the runtime at every
    /// call through its TOC: a reload must not free a TOC whose slot a thread is binding.
    @Test(arguments: ["", "compact"]) func watchReloadsTheRunningProgram(stress: String) throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/live.ssa"
        // $main loops calling $value and C; $setup hands $bye's stub to C (on_exit).
        let version1 = """
            export function w $main() {
            @start
            	call $setup()
            	%i =w copy 0
            @loop
            	%v =w call $value()
            	%z =w call $printf(l $fmt, ..., w %v)
            	%f =w call $fflush(l 0)
            	%u =w call $usleep(w 10000)
            	%i =w add %i, 1
            	%stop =w ceqw %v, 3
            	jnz %stop, @end, @check
            @check
            	%more =w csltw %i, 1500
            	jnz %more, @loop, @end
            @end
            	# The watcher reloads on its own thread and reports after; let it.
            	%w =w call $usleep(w 300000)
            	ret 0
            }
            function $setup() {
            @start
            	%r =w call $on_exit(l $bye, l 0)
            	ret
            }
            function w $value() {
            @start
            	ret 1
            }
            function $bye() {
            @start
            	%z =w call $puts(l $byemsg)
            	ret
            }
            data $fmt = { b "%d\\n", b 0 }
            data $byemsg = { b "bye", b 0 }
            """
        try version1.write(toFile: path, atomically: false, encoding: .utf8)
        let seen = directory + "/seen"
        FileManager.default.createFile(atPath: seen, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try kilnExecutable())
        process.arguments = ["run", "--watch", path]
        if !stress.isEmpty {
            var environment = ProcessInfo.processInfo.environment
            environment["KILN_STRESS"] = stress
            process.environment = environment
        }
        let error = Pipe()
        process.standardOutput = FileHandle(forWritingAtPath: seen)
        process.standardError = error
        try process.run()
        // Each step waits until the program shows the previous one took effect.
        func waitFor(_ line: String) {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if let text = try? String(contentsOfFile: seen, encoding: .utf8), text.contains(line) { return }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        waitFor("1\n")
        // Version 2: $value returns 2; $main, which is running, is unchanged.
        try version1.replacingOccurrences(of: "\tret 1", with: "\tret 2").write(toFile: path, atomically: false, encoding: .utf8)
        waitFor("2\n")
        // Version 3: $value returns 3 (ending the loop) and $bye is gone, though C holds its stub.
        let version3 = version1.replacingOccurrences(of: "\tret 1", with: "\tret 3")
            .replacingOccurrences(of: "\t%r =w call $on_exit(l $bye, l 0)\n", with: "")
            .replacingOccurrences(of: "function $bye() {\n@start\n\t%z =w call $puts(l $byemsg)\n\tret\n}\n", with: "")
        try version3.write(toFile: path, atomically: false, encoding: .utf8)
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errors = String(decoding: errorData, as: UTF8.self)
        let lines = (try? String(contentsOfFile: seen, encoding: .utf8)) ?? ""
        #expect(lines.hasPrefix("1\n"), "\(lines.prefix(40))")
        #expect(lines.contains("1\n2\n"), "no switch from 1 to 2")
        #expect(lines.hasSuffix("2\n3\n"), "\(lines.suffix(40))")
        #expect(errors.contains("kiln: reloaded \(path) v2: 1 changed"), "\(errors)")
        #expect(errors.contains("kiln: reloaded \(path) v3: 2 changed"), "\(errors)")
        #expect(errors.contains("1 removed"), "\(errors)")
        // On its way out C calls the stub of the removed $bye: a clear error, not a jump into freed code.
        #expect(errors.contains("kiln: error: call through the stub of $bye of crate \(path), which a reload removed"), "\(errors)")
        #expect(process.terminationStatus == 70)
    }

    @Test func watchWaitsUntilAChangedFileIsComplete() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/live.ssa", seen = directory + "/seen", errors = directory + "/errors"
        // $main prints $value() every 10 ms until it returns 3.
        func version(_ value: Int) -> String {
            """
            export function w $main() {
            @start
            	%i =w copy 0
            @loop
            	%v =w call $value()
            	%z =w call $printf(l $fmt, ..., w %v)
            	%f =w call $fflush(l 0)
            	%u =w call $usleep(w 10000)
            	%i =w add %i, 1
            	%stop =w ceqw %v, 3
            	jnz %stop, @end, @check
            @check
            	%more =w csltw %i, 3000
            	jnz %more, @loop, @end
            @end
            	# The watcher reloads on its own thread and reports after; let it.
            	%w =w call $usleep(w 300000)
            	ret 0
            }
            function w $value() {
            @start
            	ret \(value)
            }
            data $fmt = { b "%d\\n", b 0 }
            """
        }
        try version(1).write(toFile: path, atomically: false, encoding: .utf8)
        FileManager.default.createFile(atPath: seen, contents: nil)
        FileManager.default.createFile(atPath: errors, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try kilnExecutable())
        process.arguments = ["run", "--watch", path]
        // A settle time well above the gaps below, which the watcher must never read into.
        process.environment = ProcessInfo.processInfo.environment.merging(["KILN_WATCH_SETTLE_MS": "500"]) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: seen)
        process.standardError = FileHandle(forWritingAtPath: errors)
        try process.run()
        func waitFor(_ text: String, in file: String) {
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline {
                if let contents = try? String(contentsOfFile: file, encoding: .utf8), contents.contains(text) { return }
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        waitFor("1\n", in: seen)
        // Truncate, then write the new version a little later, as many editors save.
        try "".write(toFile: path, atomically: false, encoding: .utf8)
        Thread.sleep(forTimeInterval: 0.1)
        try version(2).write(toFile: path, atomically: false, encoding: .utf8)
        waitFor("2\n", in: seen)
        // A version that does not compile is reported and the old one keeps running.
        try version(2).replacingOccurrences(of: "\tret 2", with: "\tret %nothing").write(toFile: path, atomically: false, encoding: .utf8)
        waitFor("does not compile", in: errors)
        // Half a file, then the whole file: only the whole one is read.
        let last = version(3)
        try String(last.prefix(last.count / 2)).write(toFile: path, atomically: false, encoding: .utf8)
        Thread.sleep(forTimeInterval: 0.1)
        try last.write(toFile: path, atomically: false, encoding: .utf8)
        process.waitUntilExit()
        let output = (try? String(contentsOfFile: seen, encoding: .utf8)) ?? ""
        let messages = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(messages)")
        #expect(output.hasPrefix("1\n") && output.contains("1\n2\n") && output.hasSuffix("2\n3\n"), "\(output.suffix(40))")
        #expect(messages.contains("kiln: reloaded \(path) v2: 1 changed"), "\(messages)")
        #expect(messages.contains("kiln: reloaded \(path) v3: 1 changed"), "\(messages)")
        #expect(messages.contains("\(path):22:6: error: temporary %nothing is used but never defined"), "\(messages)")
        #expect(messages.components(separatedBy: "does not compile; still running the old version").count == 2, "\(messages)")
        #expect(!messages.contains("is empty") && !messages.contains("undefined"), "\(messages)")
    }

    /// A program with a `z` object of `size` bytes that prints its resident pages (from
    /// /proc/self/statm), then the object's last byte before and after writing 7 there.
    func zeroFillProgram(size: Int) -> String {
        """
        data $big = { z \(size) }
        data $statm = { b "/proc/self/statm", b 0 }
        data $mode = { b "r", b 0 }
        data $scan = { b "%ld %ld", b 0 }
        data $fmt = { b "%ld %d %d\\n", b 0 }
        export function w $main() {
        @start
        	%size =l alloc8 8
        	%resident =l alloc8 8
        	%f =l call $fopen(l $statm, l $mode)
        	%n =w call $fscanf(l %f, l $scan, ..., l %size, l %resident)
        	%c =w call $fclose(l %f)
        	%p =l add $big, \(size - 1)
        	%before =w loadub %p
        	storeb 7, %p
        	%after =w loadub %p
        	%pages =l loadl %resident
        	%z =w call $printf(l $fmt, ..., l %pages, w %before, w %after)
        	ret 0
        }
        """
    }

    @Test func zeroFilledDataCostsNeitherFileBytesNorMemory() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try zeroFillProgram(size: 16 << 20).write(toFile: directory + "/big.ssa", atomically: true, encoding: .utf8)
        try zeroFillProgram(size: 16).write(toFile: directory + "/small.ssa", atomically: true, encoding: .utf8)
        try runKiln(["build", directory + "/big.ssa"]).status.expectZero()
        let fileSize = try #require(try FileManager.default.attributesOfItem(atPath: directory + "/big.kcrate")[.size] as? Int)
        #expect(fileSize < 4096, "the crate file of a 16 MiB zero object is \(fileSize) bytes")
        /// The resident pages the program saw, after checking its other output.
        func residentPages(_ file: String) throws -> Int {
            let result = try runKiln(["run", directory + "/" + file])
            #expect(result.status == 0, "\(result.error)")
            let fields = result.output.split(separator: " ")
            #expect(fields.dropFirst() == ["0", "7\n"], "\(result.output)")
            return Int(fields.first ?? "") ?? Int.max
        }
        // Zero fill beyond what any loader takes is refused, not written.
        try "data $huge = { z 5000000000, b 1 }\n".write(toFile: directory + "/huge.ssa", atomically: true, encoding: .utf8)
        let huge = try runKiln(["build", directory + "/huge.ssa"])
        #expect(huge.status == 1)
        #expect(huge.error.contains("error: \(directory)/huge.ssa: cannot be loaded: $huge is 5000000001 bytes, more than 268435456"), "\(huge.error)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/huge.kcrate"))
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let baseline = try residentPages("small.ssa")
        // Compiled from IL or loaded from the crate file, 16 MiB of zeros cost well under 2 MiB.
        for file in ["big.ssa", "big.kcrate"] {
            let resident = try residentPages(file)
            #expect((resident - baseline) * page < 2 << 20, "\(file): \(resident) pages, \(baseline) without the object")
        }
    }

    @Test func exitHandlersRunWhileTheCodeIsStillThere() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // atexit is not in libc.so (glibc keeps it in libc_nonshared.a): Kiln provides it.
        try """
            function $bye() {
            @start
            	%r =w call $puts(l $byeText)
            	ret
            }
            function $later(w %status, l %argument) {
            @start
            	%r =w call $puts(l $laterText)
            	ret
            }
            export function w $main() {
            @start
            	%a =w call $atexit(l $bye)
            	%b =w call $on_exit(l $later, l 0)
            	%z =w call $puts(l $mainText)
            	ret 3
            }
            data $byeText = { b "bye", b 0 }
            data $laterText = { b "later", b 0 }
            data $mainText = { b "main", b 0 }
            """.write(toFile: directory + "/exit.ssa", atomically: true, encoding: .utf8)
        let result = try runKiln(["run", directory + "/exit.ssa"])
        #expect(result.output == "main\nlater\nbye\n", "\(result.error)")
        #expect(result.status == 3)
    }

    @Test func theCorpusPassesUnderCompactionStress() throws {
        let files = ProgramTests.conformanceFiles
        let result = try runKiln(["test", "--timeout", "60"] + files, environment: ["KILN_STRESS": "compact"])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        #expect(result.output.hasSuffix("\(files.count) passed, 0 failed\n"), "\(result.output.suffix(300))")
    }
}
