// The command line's own conventions, checked through the real `kiln` binary:
// --version, unknown options, inputs told apart by their contents rather than
// their extensions, `kiln dis` naming a crate file's lines by its IL file, the
// form and exit status of errors in every subcommand, --write-code creating its
// directory, --stats when the program calls exit().

import Foundation
import Testing

@Suite struct CommandLineTests {
    @Test func versionIsPrinted() throws {
        let result = try runKiln(["--version"])
        #expect(result.status == 0)
        #expect(result.output == "kiln 0.1.0 (crate file format 3)\n", "\(result.output)")
    }

    @Test func unknownOptionsAreNamedAsSuch() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try mainCrate.write(toFile: directory + "/x.ssa", atomically: true, encoding: .utf8)
        let run = try runKiln(["run", "--bogus", directory + "/x.ssa"])
        #expect(run.status == 64)
        #expect(run.error.hasPrefix("error: unknown option '--bogus'\n"), "\(run.error)")
        for command in ["check", "build", "compile", "dis", "test"] {
            let result = try runKiln([command, "--bogus", directory + "/x.ssa"])
            #expect(result.status == 64, "\(command): \(result.status)")
            #expect(result.error.hasPrefix("error: Unknown option '--bogus'"), "\(command): \(result.error)")
        }
        let none = try runKiln(["run"])
        #expect(none.status == 64)
        #expect(none.error.hasPrefix("error: name at least one IL file or crate file"), "\(none.error)")
        let noFiles = try runKiln(["check"])
        #expect(noFiles.status == 64)
        #expect(noFiles.error.hasPrefix("error: Missing expected argument"), "\(noFiles.error)")
    }

    @Test func inputsAreToldApartByTheirContents() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try mainCrate.write(toFile: directory + "/main.txt", atomically: true, encoding: .utf8)
        try utilCrate.write(toFile: directory + "/util.ssa", atomically: true, encoding: .utf8)
        #expect(try runKiln(["check", directory + "/main.txt"]).status == 0)
        try runKiln(["build", directory + "/util.ssa", "-o", directory + "/util.bin"]).status.expectZero()
        // An IL file named .txt first, then a crate file named .bin: both crates; then the
        // program's arguments.
        let result = try runKiln(["run", directory + "/main.txt", directory + "/util.bin", "extra"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == "42 41\n")
        // A later argument that is neither an IL extension nor a crate file goes to the
        // program, so here $counter has no definition.
        let alone = try runKiln(["run", directory + "/main.txt", directory + "/util.txt"])
        #expect(alone.status == 1)
        #expect(alone.error.contains("undefined symbol $counter"), "\(alone.error)")
        let listing = try runKiln(["dis", directory + "/main.txt", directory + "/util.bin", "twice"])
        #expect(listing.status == 0, "\(listing.error)")
        #expect(listing.output.contains("function $twice"), "\(listing.output)")
    }

    @Test func disassemblyOfACrateFileNamesTheILFile() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = directory + "/util.ssa"
        try utilCrate.write(toFile: source, atomically: true, encoding: .utf8)
        try runKiln(["build", source, "-o", directory + "/util.kcrate"]).status.expectZero()
        // The IL file is still there, unchanged: its lines are shown with their text.
        let withText = try runKiln(["dis", directory + "/util.kcrate", "twice"])
        #expect(withText.status == 0, "\(withText.error)")
        #expect(withText.output.contains("# \(source):4: %y =l add %x, %x"), "\(withText.output)")
        #expect(!withText.output.contains("util.kcrate:"), "\(withText.output)")
        // Changed since: the lines are named by the recorded file, without text.
        try ("\n" + utilCrate).write(toFile: source, atomically: true, encoding: .utf8)
        let named = try runKiln(["dis", directory + "/util.kcrate", "twice"])
        #expect(named.output.contains("# \(source):4\n"), "\(named.output)")
    }

    @Test func errorsStartWithErrorAndExitWithOne() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = directory + "/missing.ssa"
        for command in ["check", "build", "compile", "dis", "run"] {
            let result = try runKiln([command, missing])
            #expect(result.status == 1, "\(command): \(result.status)")
            #expect(result.error == "error: \(missing): no such file\n", "\(command): \(result.error)")
        }
        try mainCrate.write(toFile: directory + "/main.ssa", atomically: true, encoding: .utf8)
        let dis = try runKiln(["dis", directory + "/main.ssa", "nothing"])
        #expect(dis.status == 1)
        #expect(dis.error.hasPrefix("error: no function $nothing"), "\(dis.error)")
        let unwritable = try runKiln(["build", directory + "/main.ssa", "-o", directory + "/no/such/dir/x.kcrate"])
        #expect(unwritable.status == 1)
        #expect(unwritable.error.hasPrefix("error: \(directory)/no/such/dir/x.kcrate: cannot write"), "\(unwritable.error)")
        // Every problem of a failed link is a line of its own.
        try "export function w $main() {\n@start\n\tret 0\n}\ndata $p = { l $nowhere_c }\ndata $q = { l $nowhere_d }\n"
            .write(toFile: directory + "/unlinked.ssa", atomically: true, encoding: .utf8)
        let unlinked = try runKiln(["run", directory + "/unlinked.ssa"])
        #expect(unlinked.status == 1)
        let lines = unlinked.error.split(separator: "\n")
        #expect(lines.count == 2 && lines.allSatisfy { $0.hasPrefix("error: ") }, "\(unlinked.error)")
        #expect(unlinked.error.contains("undefined symbol $nowhere_c, used by $p"), "\(unlinked.error)")
        #expect(unlinked.error.contains("undefined symbol $nowhere_d, used by $q"), "\(unlinked.error)")
        // A located problem in the IL keeps the compiler's form, file:line:col first.
        try "function $f() {\n@start\n\tret %x\n}\n".write(toFile: directory + "/bad.ssa", atomically: true, encoding: .utf8)
        let bad = try runKiln(["run", directory + "/bad.ssa"])
        #expect(bad.status == 1)
        #expect(bad.error.hasPrefix("\(directory)/bad.ssa:3:"), "\(bad.error)")
    }

    @Test func writeCodeCreatesItsDirectory() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try utilCrate.write(toFile: directory + "/util.ssa", atomically: true, encoding: .utf8)
        let target = directory + "/code/nested"
        let result = try runKiln(["compile", "--write-code", target, directory + "/util.ssa"])
        #expect(result.status == 0, "\(result.error)")
        let written = try FileManager.default.contentsOfDirectory(atPath: target)
        #expect(written == ["twice.bin"], "\(written)")
        try "".write(toFile: directory + "/plain", atomically: true, encoding: .utf8)
        let blocked = try runKiln(["compile", "--write-code", directory + "/plain", directory + "/util.ssa"])
        #expect(blocked.status == 1)
        #expect(blocked.error == "error: \(directory)/plain: exists and is not a directory\n", "\(blocked.error)")
    }

    @Test func statsArePrintedWhenTheProgramCallsExit() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            export function w $main() {
            @start
            	%r =w call $puts(l $text)
            	call $exit(w 3)
            	ret 0
            }
            data $text = { b "leaving", b 0 }
            """.write(toFile: directory + "/exit.ssa", atomically: true, encoding: .utf8)
        let result = try runKiln(["run", "--stats", directory + "/exit.ssa"])
        #expect(result.status == 3, "\(result.error)")
        #expect(result.output == "leaving\n")
        #expect(result.error.hasPrefix("code heap: "), "\(result.error)")
        #expect(result.error.contains("runtime entries: "), "\(result.error)")
        let quiet = try runKiln(["run", directory + "/exit.ssa"])
        #expect(quiet.status == 3 && quiet.error.isEmpty, "\(quiet.error)")
    }
}

extension CommandLineTests {
    @Test func exportSymbolsLetsALibraryOpenedByTheProgramCallTheCrates() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try "long scale_\(suffix)(long);\nlong via_c(long x) { return scale_\(suffix)(x) + 1; }\n"
            .write(toFile: directory + "/module.c", atomically: true, encoding: .utf8)
        let build = try run("/usr/bin/gcc", ["-shared", "-fPIC", "-o", directory + "/module.so", directory + "/module.c"])
        #expect(build.status == 0, "\(build.error)")
        try """
            export function w $main(w %argc, l %argv) {
            @start
            	%p =l add %argv, 8
            	%path =l loadl %p
            	%h =l call $dlopen(l %path, w 2)
            	jnz %h, @found, @missing
            @missing
            	%e =l call $dlerror()
            	%r =w call $printf(l $failed, ..., l %e)
            	ret 1
            @found
            	%f =l call $dlsym(l %h, l $symbol)
            	%v =l call %f(l 4)
            	%s =w call $printf(l $result, ..., l %v)
            	ret 0
            }
            data $symbol = { b "via_c", b 0 }
            data $failed = { b "dlopen: %s\\n", b 0 }
            data $result = { b "via_c(4) = %ld\\n", b 0 }
            """.write(toFile: directory + "/main.ssa", atomically: true, encoding: .utf8)
        try "export function l $scale_\(suffix)(l %x) {\n@start\n\t%y =l mul %x, 10\n\tret %y\n}\n"
            .write(toFile: directory + "/util.ssa", atomically: true, encoding: .utf8)
        let crates = [directory + "/main.ssa", directory + "/util.ssa"]
        let without = try runKiln(["run"] + crates + [directory + "/module.so"])
        #expect(without.status == 1)
        #expect(without.output.contains("undefined symbol: scale_\(suffix)"), "\(without.output)")
        let with = try runKiln(["run", "--export-symbols"] + crates + [directory + "/module.so"])
        #expect(with.status == 0, "\(with.error)")
        #expect(with.output == "via_c(4) = 41\n", "\(with.output)")
        let after = try runKiln(["run"] + crates + ["--export-symbols", directory + "/module.so"])
        #expect(after.output == "via_c(4) = 41\n", "\(after.output)")
    }
}
