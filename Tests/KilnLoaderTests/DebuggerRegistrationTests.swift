// The objects GDB's JIT interface lists follow the code: one per crate version
// with code, made again when a reload replaces it, gone when the code is
// collected or the loader goes. (That GDB reads them: DebuggerTests in
// KilnCodegenTests drives gdb itself.)

import CKilnShim
import KilnCode
import KilnLoader
import Testing

@Suite struct DebuggerRegistrationTests {
    static func source(_ value: Int) -> String {
        """
        export function w $value() {
        @start
        	ret \(value)
        }
        export function w $twice() {
        @start
        	%v =w call $value()
        	%r =w add %v, %v
        	ret %r
        }
        """
    }

    @Test func objectsFollowLoadsReloadsAndCollection() throws {
        let before = kiln_gdb_object_count()
        do {
            let loader = try Loader()
            loader.registerCodeWithDebugger()
            let crate = try loader.load(try compile("debugged.ssa", Self.source(1)))
            let other = try loader.load(try compile("other.ssa", "export function w $other() {\n@start\n\tret 0\n}\n"))
            #expect(kiln_gdb_object_count() == before + 2)
            // A reload that changes a body: the old version's code stays until collected.
            try loader.reload(crate, with: try compile("debugged.ssa", Self.source(2)))
            loader.collectCode()
            #expect(kiln_gdb_object_count() == before + 2)
            loader.compact()
            #expect(kiln_gdb_object_count() == before + 2)
            try loader.unload(other)
            loader.collectCode()
            #expect(kiln_gdb_object_count() == before + 1)
            let twice = unsafeBitCast(try #require(crate.address(ofSymbol: "twice")), to: (@convention(c) () -> Int32).self)
            #expect(twice() == 4)
        }
        #expect(kiln_gdb_object_count() == before)
    }
}
