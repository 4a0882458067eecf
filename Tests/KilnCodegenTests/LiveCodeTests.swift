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

    @Test func longjmpReturnsIntoCodeThatCompactionWouldHaveMoved() throws {
        for stress in ["", "compact", "compact:2"] {
            let result = try runKiln(["run", programPath("longjmp")], environment: stress.isEmpty ? [:] : ["KILN_STRESS": stress])
            #expect(result.status == 0, "\(stress): \(result.error)")
            // 300 longjmps of 7 and 100 faults caught by the program's own SIGSEGV handler.
            #expect(result.output == "2200\n", "\(stress): \(result.output) \(result.error)")
        }
    }
}
