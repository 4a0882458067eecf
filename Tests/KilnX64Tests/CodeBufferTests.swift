// The byte buffer and the operand types: growth, little-endian fields,
// patching, the patch sites that relocations are made from, and the choices
// the encoder makes between short and long forms.

import KilnX64
import Testing

@Suite struct CodeBufferTests {
    @Test func growsPastItsInitialCapacityKeepingEveryByte() {
        var buffer = CodeBuffer(capacity: 16)
        for i in 0..<100_000 { buffer.emit(UInt8(truncatingIfNeeded: i &* 7)) }
        buffer.emit32(0xDEAD_BEEF)
        let bytes = buffer.bytes
        #expect(bytes.count == 100_004)
        #expect(bytes.indices.dropLast(4).allSatisfy { bytes[$0] == UInt8(truncatingIfNeeded: $0 &* 7) })
        #expect(buffer.read32(at: 100_000) == 0xDEAD_BEEF)
    }

    @Test func fieldsAreLittleEndianAndPatchable() {
        var buffer = CodeBuffer()
        buffer.emit16(0x0102)
        buffer.emit32(0x0304_0506)
        buffer.emit64(0x0708_090A_0B0C_0D0E)
        #expect(buffer.bytes == [0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08, 0x07])
        buffer.patch32(at: 2, 0xAABB_CCDD)
        buffer.patch8(at: 0, 0xFF)
        buffer.patch64(at: 6, 1)
        #expect(buffer.read32(at: 2) == 0xAABB_CCDD)
        #expect(buffer.read64(at: 6) == 1)
        #expect(buffer[0] == 0xFF)
        #expect(buffer.withUnsafeBytes { $0.count } == 14)
    }

    @Test func externalBranchesReturnTheirDisplacementSite() {
        var buffer = CodeBuffer()
        buffer.nop(length: 3)
        #expect(buffer.call(rel32: 0) == PatchSite(offset: 4, instructionEnd: 8))
        #expect(buffer.jmp(rel32: 0) == PatchSite(offset: 9, instructionEnd: 13))
        #expect(buffer.jcc(.b, rel32: 0) == PatchSite(offset: 15, instructionEnd: 19))
    }

    @Test func movabsReturnsItsImmediateSite() {
        var buffer = CodeBuffer()
        buffer.ret()
        let site = buffer.movabs(.r9, imm64: 0)
        #expect(site == PatchSite(offset: 3, instructionEnd: 11))
        buffer.patch64(at: site.offset, 0x1122_3344_5566_7788)
        #expect(buffer.bytes == [0xC3, 0x49, 0xB9, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
    }

    @Test func ripRelativeOperandsRecordTheirDisplacementSite() {
        var buffer = CodeBuffer()
        buffer.alu(.cmp, .b32, .rip(0), imm: 1000)  // 81 3D disp32 imm32
        #expect(buffer.lastRIPRelativeSite == PatchSite(offset: 2, instructionEnd: 10))
        #expect(buffer.lastRIPRelativeSite?.pcRelativeAddend == -8)
        buffer.movsd(.xmm8, .rip(0))  // F2 44 0F 10 05 disp32
        #expect(buffer.lastRIPRelativeSite == PatchSite(offset: 15, instructionEnd: 19))
        buffer.shift(.shl, .b64, .rip(-4), count: 3)  // 48 C1 25 disp32 ib
        #expect(buffer.lastRIPRelativeSite == PatchSite(offset: 22, instructionEnd: 27))
        #expect(buffer.read32(at: 22) == UInt32(bitPattern: -4))
    }

    @Test func immediatesTakeTheShortFormExactlyWhenTheyFitASignedByte() {
        for (imm, short) in [(127, true), (128, false), (-128, true), (-129, false), (0, true)] as [(Int32, Bool)] {
            let register = encoded { $0.alu(.sub, .b64, .rbx, imm: imm) }
            #expect(register[1] == (short ? 0x83 : 0x81), "sub rbx, \(imm)")
            #expect(register.count == (short ? 4 : 7), "sub rbx, \(imm)")
            let memory = encoded { $0.alu(.add, .b32, Memory(base: .rax), imm: imm) }
            #expect(memory.count == (short ? 3 : 6), "add dword ptr [rax], \(imm)")
            let multiply = encoded { $0.imul(.b32, .rax, .rcx, imm: imm) }
            #expect(multiply[0] == (short ? 0x6B : 0x69), "imul eax, ecx, \(imm)")
        }
    }

    @Test func displacementsTakeDisp8ExactlyWhenTheyFitASignedByte() {
        let cases: [(Int32, Int)] = [(0, 2), (127, 3), (128, 6), (-128, 3), (-129, 6)]
        for (displacement, length) in cases {
            let bytes = encoded { $0.mov(.b32, .rax, Memory(base: .rcx, displacement: displacement)) }
            #expect(bytes.count == length, "mov eax, [rcx\(displacement)]")
        }
        // rbp and r13 cannot use mod 00: a zero displacement costs a disp8.
        #expect(encoded { $0.mov(.b32, .rax, Memory(base: .rbp)) } == [0x8B, 0x45, 0x00])
        #expect(encoded { $0.mov(.b32, .rax, Memory(base: .r13)) } == [0x41, 0x8B, 0x45, 0x00])
        // rsp and r12 need a SIB byte.
        #expect(encoded { $0.mov(.b32, .rax, Memory(base: .rsp)) } == [0x8B, 0x04, 0x24])
        #expect(encoded { $0.mov(.b32, .rax, Memory(base: .r12)) } == [0x41, 0x8B, 0x04, 0x24])
        // r12 can be an index (REX.X distinguishes it from "no index").
        #expect(encoded { $0.mov(.b32, .rax, Memory(base: .rax, index: .r12)) } == [0x42, 0x8B, 0x04, 0x20])
    }

    @Test func movOfAConstantPicksTheShortestForm() {
        #expect(encoded { $0.mov(.b64, .rax, imm: 0) }.count == 5)
        #expect(encoded { $0.mov(.b64, .r8, imm: 0xFFFF_FFFF) }.count == 6)
        #expect(encoded { $0.mov(.b64, .rax, imm: -1) }.count == 7)
        #expect(encoded { $0.mov(.b64, .rax, imm: 1 << 32) }.count == 10)
        #expect(encoded { $0.mov(.b64, .rax, imm: Int64.min) }.count == 10)
    }

    @Test func byteRegistersFourToSevenGetAnEmptyREX() {
        for register in [GPR.rsp, .rbp, .rsi, .rdi] {
            #expect(encoded { $0.mov(.b8, register, .rax) }[0] == 0x40, "mov \(register.name(.b8)), al")
            #expect(encoded { $0.setcc(.e, register) }[0] == 0x40, "sete \(register.name(.b8))")
            #expect(encoded { $0.movzx(.b32, .rax, .b8, register) }[0] == 0x40, "movzx eax, \(register.name(.b8))")
        }
        for register in [GPR.rax, .rcx, .rdx, .rbx] {
            #expect(encoded { $0.mov(.b8, register, .rax) }.count == 2, "mov \(register.name(.b8)), al")
            #expect(encoded { $0.mov(.b32, register, .rsp) }.count == 2, "mov \(register.name(.b32)), esp")
        }
    }

    @Test func nopsAndAlignmentEmitExactLengths() {
        for length in 0...40 {
            #expect(encoded { $0.nop(length: length) }.count == length)
        }
        var buffer = CodeBuffer()
        for start in 0..<40 {
            buffer.removeAll()
            buffer.nop(length: start)
            buffer.align(to: 16)
            #expect(buffer.count == (start + 15) / 16 * 16)
        }
    }

    @Test func indexRegistersExcludeRSP() {
        #expect(IndexRegister(.rsp) == nil)
        for register in GPR.allCases where register != .rsp {
            #expect(IndexRegister(register)?.gpr == register)
        }
        #expect(IndexRegister.allCases.count == 15)
    }

    @Test func memoryOperandsReportTheirParts() {
        let memory = Memory(base: .rbx, index: .r9, scale: .x8, displacement: -8)
        #expect(memory.base == .rbx && memory.index == .r9 && memory.scale == .x8)
        #expect(memory.offset(by: 16).displacement == 8)
        #expect(Memory(index: .rcx, scale: .x4).base == nil)
        #expect(Memory.rip(4).isRIPRelative && !memory.isRIPRelative)
        #expect(Memory.absolute(64).base == nil && Memory.absolute(64).index == nil)
    }

    @Test func conditionsNegateInPairs() {
        let pairs: [(Condition, Condition)] = [
            (.o, .no), (.b, .ae), (.e, .ne), (.be, .a), (.s, .ns), (.p, .np), (.l, .ge), (.le, .g),
        ]
        for (condition, opposite) in pairs {
            #expect(condition.negated == opposite)
            #expect(opposite.negated == condition)
        }
    }

    @Test func registerNamesMatchIntel() {
        for register in GPR.allCases {
            for width in Width.allCases {
                #expect(register.name(width) == Intel.name(register, width))
            }
        }
        #expect(XMM.xmm13.name == "xmm13")
    }
}
