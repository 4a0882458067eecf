// Programs on the managed heap, run through the `kiln` command: the examples
// with their expected output, in the normal mode and under the collection
// stress modes (a collection, verified, at every allocation or every Nth,
// alone and together with code compaction), from IL and from crate files;
// out-of-memory as a clear error naming the allocating function.

import Foundation
import Testing

let binaryTreesDepth6 = """
    stretch tree of depth 7\t check: 255
    64\t trees of depth 4\t check: 1984
    16\t trees of depth 6\t check: 2032
    long lived tree of depth 6\t check: 127

    """

let strings300 = """
    300 keys, 300 found with the right value, 1690 bytes of keys, longest chain 11, missing key: -1
    first key in the list: key299

    """

let closuresOutput = (0..<10).map { "adder \($0): 100 -> \(100 + $0 * $0)\n" }.joined()
    + "sum of the results: 1285\ncounter: 1 2 3\n"

@Suite struct ManagedProgramTests {
    static let examples: [(file: String, arguments: [String], expected: String)] = [
        ("examples/binary-trees.ssa", ["6"], binaryTreesDepth6),
        ("examples/strings.ssa", ["300"], strings300),
        ("examples/closures.ssa", [], closuresOutput),
    ]

    static let modes = ["", "collect", "collect:7,compact", "collect:3"]

    @Test(arguments: modes)
    func examplesPrintTheirExpectedOutput(_ stress: String) throws {
        for example in Self.examples {
            let path = packageRoot.appendingPathComponent(example.file).path
            let result = try runKiln(["run", path, "--stats"] + example.arguments, environment: ["KILN_STRESS": stress])
            #expect(result.status == 0, "\(example.file) under KILN_STRESS=\(stress): \(result.error)")
            #expect(result.output == example.expected, "\(example.file) under KILN_STRESS=\(stress)")
            if stress.hasPrefix("collect"), !example.file.hasSuffix("closures.ssa") {
                // The stress mode collected (and verified) many times.
                let line = result.error.split(separator: "\n").first { $0.hasPrefix("collections:") } ?? ""
                let full = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
                #expect(full > 100, "\(example.file): \(line)")
            }
        }
    }

    @Test func disassemblyShowsStackMapsBesideSafepoints() throws {
        let path = packageRoot.appendingPathComponent("examples/binary-trees.ssa").path
        let result = try runKiln(["dis", path])
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.split(separator: "\n")
        // The second recursive call of $bottomUp keeps %left in a slot across it.
        let calls = lines.filter { $0.contains("call") && $0.contains("$bottomUp") && $0.contains("stack map: rbp-0x") }
        #expect(!calls.isEmpty, "\(result.output)")
        // Every allocation's slow path is a safepoint with a map.
        let slow = lines.filter { $0.contains("call") && $0.contains("kiln.heap.allocate") }
        #expect(!slow.isEmpty && slow.allSatisfy { $0.contains("; stack map:") }, "\(slow)")
        #expect(result.output.contains("  stack maps:\n"))
    }

    /// A list kept only in a global and one kept only in `thread` data survive collections
    /// that move them (every allocation collects under the stress mode, and the semispaces
    /// alternate, so a stale reference would read overwritten memory).
    @Test func globalAndThreadLocalSlotsAreRoots() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/slots.ssa"
        try """
            data $shared = { r 0 }
            thread data $mine = { r 0, r 0 }
            data $fmt = { b "%ld %ld %ld %ld\n", b 0 }
            function r $list(l %n) {
            @start
            	jmp @loop
            @loop
            	%acc =r phi @start 0, @body %cell
            	%i =l phi @start 0, @body %i1
            	%c =w csltl %i, %n
            	jnz %c, @body, @done
            @body
            	%cell =r rnew 2
            	%t =r rtag %i
            	rstore %t, %cell, 0
            	rstore %acc, %cell, 1
            	%i1 =l add %i, 1
            	jmp @loop
            @done
            	ret %acc
            }
            function l $sum(r %l) {
            @start
            	jmp @loop
            @loop
            	%c =r phi @start %l, @body %next
            	%s =l phi @start 0, @body %s1
            	%isCell =w risref %c
            	jnz %isCell, @body, @done
            @body
            	%v =r rload %c, 0
            	%n =l runtag %v
            	%s1 =l add %s, %n
            	%next =r rload %c, 1
            	jmp @loop
            @done
            	ret %s
            }
            export function w $main() {
            @start
            	%a =r call $list(l 100)
            	storer %a, $shared
            	%b =r call $list(l 200)
            	%slot =l add thread $mine, 8
            	storer %b, %slot
            	%junk =r call $list(l 3000)
            	call $kiln.collect()
            	%x =r loadr $shared
            	%y =r loadr %slot
            	%sx =l call $sum(r %x)
            	%sy =l call $sum(r %y)
            	%first =r loadr thread $mine
            	%isRef =l risref %first
            	%nx =l rlen %x
            	call $printf(l $fmt, ..., l %sx, l %sy, l %isRef, l %nx)
            	ret 0
            }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        for stress in ["", "collect", "collect:5,compact"] {
            let result = try runKiln(["run", path], environment: ["KILN_STRESS": stress])
            #expect(result.status == 0, "\(stress): \(result.error)")
            #expect(result.output == "4950 19900 0 2\n", "\(stress)")
        }
    }

    @Test func theCheckedModeReportsAWrongAccessByFunction() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/bad.ssa"
        try """
            function r $get(r %o, l %i) {
            @start
            	%v =r rload %o, %i
            	ret %v
            }
            function l $length(r %o) {
            @start
            	%n =l rlen %o
            	ret %n
            }
            export function w $main(w %argc) {
            @start
            	%o =r rnew 3
            	%a =r call $get(r %o, l 2)
            	%n =l call $length(r %o)
            	call $printf(l $fmt, ..., l %n)
            	%many =w csgtw %argc, 1
            	jnz %many, @integer, @outside
            @integer
            	%i =l call $length(r 8)
            	ret 0
            @outside
            	%b =r call $get(r %o, l 10)
            	ret 0
            }
            data $fmt = { b "%ld\n", b 0 }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let outside = try runKiln(["run", "--checked", path])
        #expect(outside.status == 70)
        #expect(outside.output == "3\n")
        #expect(outside.error.contains("field 10 of an object of 3 fields"), "\(outside.error)")
        #expect(outside.error.contains("$get of crate"), "\(outside.error)")
        let integer = try runKiln(["run", "--checked", path, "x"])
        #expect(integer.status == 70)
        #expect(integer.error.contains("$length of crate"), "\(integer.error)")
        // Unchecked, the same accesses are undefined: the in-bounds part runs as compiled.
        let unchecked = try runKiln(["run", path])
        #expect(unchecked.output == "3\n")
    }

    /// Collections allocate nothing while the world is stopped (a stopped thread may hold a
    /// malloc lock): `kiln` runs with the malloc of Tests/Programs/allocation-guard.c, which
    /// aborts when the thread that stopped the world allocates.
    @Test func collectionsAllocateNothingWhileTheWorldIsStopped() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let library = directory + "/libguard.so"
        let built = try run("/usr/bin/env", ["gcc", "-O2", "-shared", "-fPIC", "-o", library,
                                             packageRoot.appendingPathComponent("Tests/Programs/allocation-guard.c").path])
        #expect(built.status == 0, "\(built.error)")
        for example in Self.examples {
            let path = packageRoot.appendingPathComponent(example.file).path
            let result = try runKiln(["run", path] + example.arguments,
                                     environment: ["KILN_STRESS": "collect:2,compact", "LD_PRELOAD": library, "KILN_GUARD_REPORT": "1"])
            #expect(result.status == 0, "\(example.file): \(result.error)")
            #expect(result.output == example.expected, "\(example.file)")
            #expect(!result.error.contains("while the world is stopped"), "\(result.error)")
            let stops = result.error.split(separator: "\n").first { $0.hasPrefix("allocation-guard: stops ") }
                .flatMap { Int($0.dropFirst("allocation-guard: stops ".count)) } ?? 0
            #expect(stops >= 10, "\(example.file): \(result.error)")
        }
    }

    @Test func crateFilesKeepTheirStackMaps() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = packageRoot.appendingPathComponent("examples/binary-trees.ssa").path
        let crate = directory + "/binary-trees.kcrate"
        let build = try runKiln(["build", source, "-o", crate])
        #expect(build.status == 0, "\(build.error)")
        let result = try runKiln(["run", crate, "6"], environment: ["KILN_STRESS": "collect"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == binaryTreesDepth6)
    }

    @Test func runningOutOfManagedMemoryNamesTheAllocatingFunction() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/grow.ssa"
        try """
            function r $grow(l %n) {
            @start
            	jmp @loop
            @loop
            	%list =r phi @start 0, @body %cell
            	%i =l phi @start 0, @body %i1
            	%more =w csltl %i, %n
            	jnz %more, @body, @done
            @body
            	%cell =r rnew 3
            	rstore %list, %cell, 0
            	%i1 =l add %i, 1
            	jmp @loop
            @done
            	ret %list
            }
            export function w $main() {
            @start
            	%l =r call $grow(l 1000000)
            	ret 0
            }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        // Not under the stress mode: collecting at every allocation of a million cells would
        // take minutes (this test is about the limit, not about roots).
        let quiet = ["KILN_STRESS": ""]
        let small = try runKiln(["run", "--heap-max", "4M", path], environment: quiet)
        #expect(small.status == 70)
        #expect(small.error.contains("out of managed memory"), "\(small.error)")
        #expect(small.error.contains("$grow of crate"), "\(small.error)")
        // 32 MB of cells fit in 64 MiB.
        let enough = try runKiln(["run", "--heap-max", "64M", path], environment: quiet)
        #expect(enough.status == 0, "\(enough.error)")
        let bad = try runKiln(["run", "--heap-max", "lots", path], environment: quiet)
        #expect(bad.status != 0)
        #expect(bad.error.contains("--heap-max lots: not a size"), "\(bad.error)")
    }
}
