// Procs run by the real `kiln`: the example programs (a ring of 10,000 procs,
// recursion across many stack segments with stack and variadic arguments, C
// calls and callbacks from procs), in every stress mode of the code heap, and
// the ways a program can misuse them.

import Foundation
import Testing

private func example(_ name: String) -> String {
    packageRoot.appendingPathComponent("examples/procs/\(name).ssa").path
}

/// Writes `text` as an IL file in a fresh directory; returns its path.
private func writeProgram(_ text: String) throws -> String {
    let directory = try scratchDirectory()
    let path = directory + "/program.ssa"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite struct ProcTests {
    static let stressModes = ["", "compact", "compact:5"]

    /// Without a stress mode even when the suite runs under one: there every call would walk
    /// 10,000 parked stacks (`aRingWhileCodeMoves` covers the stress modes).
    @Test func aRingOfTenThousandProcs() throws {
        let result = try runKiln(["run", example("ring")], environment: ["KILN_STRESS": ""])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == "ring of 10000 procs, 1000000 hops: last proc 10001\n")
    }

    /// In the stress modes every call between crates and into C compacts the code heap,
    /// walking every parked proc's stack: a smaller ring.
    @Test(arguments: ["compact", "compact:5"]) func aRingWhileCodeMoves(stress: String) throws {
        let result = try runKiln(["run", example("ring"), "--", "300", "20"], environment: ["KILN_STRESS": stress])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == "ring of 300 procs, 6000 hops: last proc 301\n")
    }

    /// Recursion 100,000 deep grows a proc's stack over many segments (each function has
    /// arguments on the stack, which move with its frame to a new segment) and back.
    @Test(arguments: stressModes) func recursionAcrossSegments(stress: String) throws {
        let result = try runKiln(["run", example("deep-recursion")], environment: ["KILN_STRESS": stress])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == """
            proc 2: sum(100000) = 5000750008, vsum = 45
            proc 3: sum(10) = 133, vsum = 45
            proc 1: sum(1000) = 507508, vsum = 0

            """)
    }

    /// printf with arguments on the stack and qsort calling back into Kiln code run on the
    /// C stack; the callback may ask who it is and yield (which does nothing there).
    @Test(arguments: stressModes) func procsCallC(stress: String) throws {
        let result = try runKiln(["run", example("c-calls")], environment: ["KILN_STRESS": stress])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == "proc 2 sorted: 1 3 7 19 23 42 56 88 (callbacks in proc 2)\n")
    }

    /// Messages are managed objects: lists passed around a ring, one new cell per hop, while
    /// the collector moves them in mailboxes and in the frames of parked procs (every
    /// allocation collects, and verifies the heap, in the stress modes).
    @Test(arguments: ["", "collect", "collect:3", "collect:7,compact"]) func messagesAreManagedValues(stress: String) throws {
        let arguments = stress.isEmpty ? [] : ["--", "20", "5"]
        let result = try runKiln(["run", example("messages")] + arguments, environment: ["KILN_STRESS": stress])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == (stress.isEmpty ? "50 procs, 20 rounds: a list of 1000 cells, 0 wrong\n"
                                                 : "20 procs, 5 rounds: a list of 100 cells, 0 wrong\n"))
    }

    /// Links tell a proc when another ends and how; `receive_within` gives up after its time.
    @Test(arguments: ["", "compact"]) func linksAndTimeLimits(stress: String) throws {
        let result = try runKiln(["run", example("links")], environment: ["KILN_STRESS": stress])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == """
            proc 2 returned
            proc 3 was ended by the runtime
            proc 2 returned
            nothing came: timed_out = 1
            got 42: timed_out = 0

            """)
        #expect(result.error.contains("kiln: proc 3 in $down ended: its stack would grow past"), "\(result.error)")
    }

    /// A fault in a proc's own code (a store to address 0, a division by zero) ends that
    /// proc with a one-line report; its link gets the notice and the program goes on.
    @Test func aFaultEndsOnlyItsProc() throws {
        let path = try writeProgram("""
            function $store(r %unused) {
            @start
            	storel 1, 0
            	ret
            }
            function $divide(r %unused) {
            @start
            	%z =l call $zero()
            	%q =l div 7, %z
            	ret
            }
            function l $zero() {
            @start
            	ret 0
            }
            export function w $main() {
            @start
            	%a =l call $kiln.spawn(l $store, r 0)
            	%la =w call $kiln.link(l %a)
            	%b =l call $kiln.spawn(l $divide, r 0)
            	%lb =w call $kiln.link(l %b)
            	%m =r call $kiln.receive()
            	%n =r call $kiln.receive()
            	%v =l runtag %m
            	%w =l runtag %n
            	call $printf(l $fmt, ..., l %v, l %w)
            	ret 5
            }
            data $fmt = { b "notices %ld %ld; main goes on\\n", b 0 }
            """)
        let result = try runKiln(["run", path])
        #expect(result.status == 5, "\(result.error)")
        #expect(result.output == "notices -4294967298 -4294967299; main goes on\n")
        #expect(result.error.contains("kiln: proc 2 in $store at "), "\(result.error)")
        #expect(result.error.contains("ended: Segmentation fault at address 0x0"), "\(result.error)")
        #expect(result.error.contains("kiln: proc 3 in $divide at "), "\(result.error)")
        #expect(result.error.contains("ended: Floating point exception"), "\(result.error)")
    }

    /// A proc that spins in a loop of calls without waiting is preempted at a call once its
    /// time slice is over: main runs again, stops it, and the program ends.
    @Test(arguments: ["", "compact"]) func aSpinningProcIsPreempted(stress: String) throws {
        let result = try runKiln(["run", "--stats", example("preempt")], environment: ["KILN_STRESS": stress])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == "main ran again while the spinner spun; the spinner stopped (spun: 1)\n")
        // --stats counts the procs and the preemption.
        #expect(result.error.contains("procs: 2 spawned, at most 2 alive, "), "\(result.error)")
        #expect(!result.error.contains(" 0 preemptions"), "\(result.error)")
    }

    /// A reload while 100 procs wait inside the function it replaces: they finish in the old
    /// code (kept while they are there), a proc spawned afterwards runs the new.
    @Test(arguments: ["", "compact"]) func procsParkedInReloadedCodeFinishThere(stress: String) throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let worker = """
            export function $work(r %x) {
            @start
            	%m =r call $kiln.receive()
            	call $puts(l $old)
            	ret
            }
            export function w $probe() {
            @start
            	ret 1
            }
            data $old = { b "old", b 0 }
            data $new = { b "new", b 0 }
            """
        let main = """
            export function w $main() {
            @start
            	%i =l copy 0
            @spawn
            	%p =l call $kiln.spawn(l $work, r 0)
            	%i =l add %i, 1
            	%c =w csltl %i, 100
            	jnz %c, @spawn, @parked
            @parked
            	call $kiln.yield()
            	call $puts(l $ready)
            	%f =w call $fflush(l 0)
            	%tries =l copy 0
            @wait
            	%m =r call $kiln.receive_within(l 20000000)
            	%v =w call $probe()
            	%tries =l add %tries, 1
            	%reloaded =w ceqw %v, 2
            	jnz %reloaded, @send, @again
            @again
            	%more =w csltl %tries, 500
            	jnz %more, @wait, @send
            @send
            	%k =l copy 2
            @next
            	%s =w call $kiln.send(l %k, r 0)
            	%k =l add %k, 1
            	%d =w csltl %k, 102
            	jnz %d, @next, @fresh
            @fresh
            	%q =l call $kiln.spawn(l $work, r 0)
            	call $kiln.yield()
            	%s2 =w call $kiln.send(l %q, r 0)
            	call $kiln.yield()
            	ret 0
            }
            data $ready = { b "parked", b 0 }
            """
        try worker.write(toFile: directory + "/worker.ssa", atomically: false, encoding: .utf8)
        try main.write(toFile: directory + "/main.ssa", atomically: false, encoding: .utf8)
        let seen = directory + "/seen"
        FileManager.default.createFile(atPath: seen, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try kilnExecutable())
        process.arguments = ["run", "--watch", directory + "/main.ssa", directory + "/worker.ssa"]
        var environment = ProcessInfo.processInfo.environment
        environment["KILN_STRESS"] = stress
        process.environment = environment
        let error = Pipe()
        process.standardOutput = FileHandle(forWritingAtPath: seen)
        process.standardError = error
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !((try? String(contentsOfFile: seen, encoding: .utf8)) ?? "").contains("parked") {
            Thread.sleep(forTimeInterval: 0.02)
        }
        try worker.replacingOccurrences(of: "call $puts(l $old)", with: "call $puts(l $new)")
            .replacingOccurrences(of: "\tret 1", with: "\tret 2")
            .write(toFile: directory + "/worker.ssa", atomically: false, encoding: .utf8)
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errors = String(decoding: errorData, as: UTF8.self)
        let lines = ((try? String(contentsOfFile: seen, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(process.terminationStatus == 0, "\(errors)")
        #expect(lines.filter { $0 == "old" }.count == 100, "\(lines)")
        #expect(lines.last == "new", "\(lines)")
        // $probe, which nothing runs, is rewritten in place; $work, where procs wait, is not.
        #expect(errors.contains("worker.ssa v2: 2 changed (1 in place)"), "\(errors)")
    }

    /// A proc whose recursion never ends is ended at its stack limit; the others go on.
    @Test func aRunawayProcEndsAlone() throws {
        let path = try writeProgram("""
            function l $down(l %n) {
            @start
            	%m =l add %n, 1
            	%r =l call $down(l %m)
            	ret %r
            }
            function $runaway(r %x) {
            @start
            	%r =l call $down(l 0)
            	ret
            }
            export function w $main() {
            @start
            	%p =l call $kiln.spawn(l $runaway, r 0)
            	%l =w call $kiln.link(l %p)
            	%notice =r call $kiln.receive()
            	%s =w call $kiln.send(l %p, r 0)
            	call $printf(l $fmt, w %s)
            	ret 3
            }
            data $fmt = { b "main goes on; send to the ended proc: %d\\n", b 0 }
            """)
        let result = try runKiln(["run", path])
        #expect(result.status == 3, "\(result.error)")
        #expect(result.output == "main goes on; send to the ended proc: 1\n")
        #expect(result.error.contains("kiln: proc 2 in $down ended: its stack would grow past"), "\(result.error)")
    }

    /// Waiting for a message nobody can send is an error naming the wait, not a hang.
    @Test func everyProcWaiting() throws {
        let path = try writeProgram("""
            export function w $main() {
            @start
            	%m =r call $kiln.receive()
            	ret 0
            }
            """)
        let result = try runKiln(["run", path])
        #expect(result.status == 70)
        #expect(result.error.contains("every proc waits in $kiln.receive"), "\(result.error)")
    }

    /// `receive` would have to wait inside a C callback: refused, naming the caller.
    @Test func waitingInsideACallIntoC() throws {
        let path = try writeProgram("""
            data $numbers = { l 2, l 1 }
            function w $compare(l %a, l %b) {
            @start
            	%m =r call $kiln.receive()
            	ret 0
            }
            export function w $main() {
            @start
            	call $qsort(l $numbers, l 2, l 8, l $compare)
            	ret 0
            }
            """)
        let result = try runKiln(["run", path])
        #expect(result.status == 70)
        #expect(result.error.contains("$kiln.receive from $compare would wait inside a call into C"), "\(result.error)")
    }
}
