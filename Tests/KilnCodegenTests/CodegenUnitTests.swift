// The code generator's own rules, checked on compiled (not run) code:
// relocations instead of addresses, the SysV classification of aggregates,
// and clear errors for what it does not compile.

import KilnCode
@testable import KilnCodegen
import KilnIL
import Testing

func compiled(_ text: String) throws -> (Module, CompiledModule) {
    let (module, diagnostics) = parseAndVerify(SourceFile(name: "test.ssa", text: text))
    try #require(!diagnostics.contains { $0.severity == .error }, "\(diagnostics)")
    return (module, try compileModule(module))
}

@Suite struct CodegenUnitTests {
    @Test func everyOutsideReferenceIsARelocation() throws {
        let (_, module) = try compiled("""
            data $counter = { w 0 }
            thread data $local = { w 1 }
            function w $helper() {
            @start
            	ret 1
            }
            export function w $main() {
            @start
            	%a =w call $helper()
            	%b =w call $puts(l $counter)
            	%c =w loadw $counter
            	%d =l copy thread $local
            	%e =l copy $stderr
            	call $use(w %c, l %d, l %e)
            	ret 0
            }
            """)
        let main = try #require(module.functions.first { $0.name == "main" })
        let targets = Set(main.relocations.map(\.target))
        #expect(targets.contains(.function(0)))
        #expect(targets.contains(.callSlot("puts")))
        #expect(targets.contains(.data(0)))
        #expect(targets.contains(.threadLocal(1)))
        #expect(targets.contains(.callSlot("kiln.tls.address")))
        // External data is reached through an address slot, never a rel32 to something far away.
        #expect(targets.contains(.addressSlot("stderr")))
        #expect(!targets.contains { if case .external = $0 { true } else { false } })
        for relocation in main.relocations {
            #expect(Int(relocation.offset) + relocation.kind.size <= main.code.count)
        }
    }

    @Test func dataItemsLayOutPackedWithRelocations() throws {
        let (_, module) = try compiled("""
            data $a = { b 1, h 2, w 3, l 4, l $a + 8, w $b, z 3, b "hi" }
            data $b = align 16 { z 8 }
            """)
        let a = module.data[0]
        #expect(a.size == 1 + 2 + 4 + 8 + 8 + 4 + 3 + 2)
        #expect(Array(a.materializedBytes.prefix(7)) == [1, 2, 0, 3, 0, 0, 0])
        #expect(Array(a.materializedBytes.suffix(2)) == Array("hi".utf8))
        #expect(a.relocations == [
            Relocation(offset: 15, kind: .absolute64, target: .data(0), addend: 8),
            Relocation(offset: 23, kind: .absolute32, target: .data(1), addend: 0),
        ])
        #expect(module.data[1].alignment == 16)
    }

    @Test func zeroFillIsCountedNotStored() throws {
        let (_, module) = try compiled("""
            data $big = { z 16777216 }
            data $sparse = { w 7, z 1000, b 0 0 9, z 100000, l 0 }
            data $pointers = { l $big $big, w 0 }
            """)
        #expect(module.data[0].size == 16 << 20)
        #expect(module.data[0].segments.isEmpty)
        #expect(module.data[1].size == 4 + 1000 + 3 + 100_000 + 8)
        #expect(module.data[1].segments == [DataSegment(offset: 0, bytes: [7]), DataSegment(offset: 1006, bytes: [9])])
        // Address fields are written by the loader, so they are zeros in the contents too.
        #expect(module.data[2].size == 20 && module.data[2].segments.isEmpty && module.data[2].relocations.count == 2)
    }

    @Test func aggregateClassification() throws {
        let (module, _) = try compiled("""
            type :ints = { w, w, l }
            type :floats = { d, d }
            type :mixed = { d, w }
            type :big = { l, l, l }
            type :dark = align 8 { 8 }
            type :un = { { b } { s } }
            type :nested = { :floats }
            """)
        func shape(_ index: Int) -> [EightbyteClass]? { classify(TypeID(index: UInt32(index)), in: module).eightbytes }
        #expect(shape(0) == [.integer, .integer])
        #expect(shape(1) == [.sse, .sse])
        #expect(shape(2) == [.sse, .integer])
        #expect(shape(3) == nil)
        #expect(shape(4) == nil)
        #expect(shape(5) == [.integer])
        #expect(shape(6) == [.sse, .sse])
    }

    @Test func referencesLiveAcrossSafepointsAreListedInStackMaps() throws {
        let (module, diagnostics) = parseAndVerify(SourceFile(name: "r.ssa", text: """
            function r $f(r %a) {
            @start
            	%o =r rnew 2
            	call $g()
            	rstore %a, %o, 0
            	ret %o
            }
            function w $h(w %x) {
            @start
            	call $g()
            	ret %x
            }
            """))
        #expect(diagnostics.isEmpty)
        let compiled = try compileModule(module)
        let maps = compiled.functions[0].stackMaps
        // The call of $g (both references live across it), then the allocation's slow path
        // after the body (only %a is live across it: %o is its result).
        #expect(maps.map(\.frameSlots.count) == [2, 1])
        #expect(maps.allSatisfy { $0.frameSlots.allSatisfy { $0 < 0 && $0 % 8 == 0 } })
        #expect(Set(maps[0].frameSlots).count == 2)
        #expect(maps[0].frameSlots.contains(maps[1].frameSlots[0]))
        // Each map sits at a return address: the byte before it ends a call.
        for map in maps { #expect(map.codeOffset > 0 && Int(map.codeOffset) <= compiled.functions[0].code.count) }
        #expect(compiled.functions[1].stackMaps.isEmpty)
    }

    /// `loadsb` read only by `extub` is one `movzx` from memory, not `movsx` then `movzx`;
    /// with a second reader the load stays and the extension is a register `movzx`.
    @Test func narrowLoadAndExtensionBecomeOneLoad() throws {
        func opcodes(_ body: String) throws -> (movsx: Int, movzx: Int) {
            let (_, module) = try compiled("""
                export function w $f(l %p) {
                @start
                \(body)
                }
                """)
            let code = try #require(module.functions.first).code
            var movsx = 0, movzx = 0
            for index in code.indices.dropLast() where code[index] == 0x0F {
                if code[index + 1] == 0xBE { movsx += 1 }
                if code[index + 1] == 0xB6 { movzx += 1 }
            }
            return (movsx, movzx)
        }
        let alone = try opcodes("%a =w loadsb %p\n%b =w extub %a\nret %b")
        #expect(alone.movsx == 0 && alone.movzx == 1)
        let shared = try opcodes("%a =w loadsb %p\n%b =w extub %a\n%c =w add %a, %b\nret %c")
        #expect(shared.movsx == 1 && shared.movzx == 1)
    }
}
