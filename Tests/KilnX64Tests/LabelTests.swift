// Labels: short and near branch selection at the exact rel8 boundary,
// forward fixups patched on bind (for branches, calls and RIP-relative
// operands with trailing immediates), and misuse reported as errors.

import KilnX64
import Testing

/// The signed 32-bit little-endian value at `offset` in `bytes`.
private func rel32(_ bytes: [UInt8], at offset: Int) -> Int32 {
    Int32(bitPattern: UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8
        | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24)
}

@Suite struct LabelTests {
    /// Binds a label at 0, pads with `gap` bytes, then branches back with `branch`.
    private func backward(gap: Int, _ branch: (inout CodeBuffer, Label) -> Void) throws -> (start: Int, bytes: [UInt8]) {
        var buffer = CodeBuffer()
        let label = buffer.makeLabel()
        try buffer.bind(label)
        buffer.nop(length: gap)
        let start = buffer.count
        branch(&buffer, label)
        try buffer.finish()
        return (start, Array(buffer.bytes[start...]))
    }

    @Test func backwardJumpIsShortUpToMinus128() throws {
        // The short form ends 2 bytes after its start: displacement = -(gap + 2).
        let atLimit = try backward(gap: 126) { $0.jmp(to: $1) }
        #expect(atLimit.bytes == [0xEB, 0x80])
        let justBeyond = try backward(gap: 127) { $0.jmp(to: $1) }
        #expect(justBeyond.bytes.count == 5)
        #expect(justBeyond.bytes[0] == 0xE9)
        #expect(rel32(justBeyond.bytes, at: 1) == -132)
    }

    @Test func backwardConditionalJumpIsShortUpToMinus128() throws {
        let atLimit = try backward(gap: 126) { $0.jcc(.ne, to: $1) }
        #expect(atLimit.bytes == [0x75, 0x80])
        let justBeyond = try backward(gap: 127) { $0.jcc(.ne, to: $1) }
        #expect(Array(justBeyond.bytes[0..<2]) == [0x0F, 0x85])
        #expect(rel32(justBeyond.bytes, at: 2) == -133)
    }

    @Test func branchToItselfIsShort() throws {
        let loop = try backward(gap: 0) { $0.jmp(to: $1) }
        #expect(loop.bytes == [0xEB, 0xFE])
        let conditional = try backward(gap: 0) { $0.jcc(.g, to: $1) }
        #expect(conditional.bytes == [0x7F, 0xFE])
    }

    @Test func forwardJumpsAreNearAndPatchedOnBind() throws {
        var buffer = CodeBuffer()
        let label = buffer.makeLabel()
        buffer.jmp(to: label)  // 0..<5
        buffer.jcc(.l, to: label)  // 5..<11
        buffer.call(to: label)  // 11..<16
        #expect(buffer.bytes == [0xE9, 0, 0, 0, 0, 0x0F, 0x8C, 0, 0, 0, 0, 0xE8, 0, 0, 0, 0])
        #expect(buffer.unboundReferencedLabels == [label])
        buffer.nop(length: 127)
        try buffer.bind(label)  // at 143
        #expect(buffer.offset(of: label) == 143)
        let bytes = buffer.bytes
        #expect(rel32(bytes, at: 1) == 143 - 5)
        #expect(rel32(bytes, at: 7) == 143 - 11)
        #expect(rel32(bytes, at: 12) == 143 - 16)
        #expect(buffer.unboundReferencedLabels.isEmpty)
        try buffer.finish()
    }

    @Test func ripRelativeOperandsToLabelsCountTrailingImmediates() throws {
        var buffer = CodeBuffer()
        let constant = buffer.makeLabel()
        buffer.alu(.cmp, .b32, .rip(constant), imm: 1000)  // 81 3D disp32 imm32: 0..<10
        buffer.mov(.b8, .rip(constant, offset: 3), imm: 7)  // C6 05 disp32 imm8: 10..<17
        buffer.movsd(.xmm1, .rip(constant))  // F2 0F 10 0D disp32: 17..<25
        buffer.ret()
        try buffer.bind(constant)  // at 26
        buffer.emit64(0x4000_0000_0000_0000)
        let bytes = buffer.bytes
        #expect(rel32(bytes, at: 2) == 26 - 10)
        #expect(rel32(bytes, at: 12) == 26 + 3 - 17)
        #expect(rel32(bytes, at: 21) == 26 - 25)
        try buffer.finish()
    }

    @Test func ripRelativeOperandToBoundLabelIsResolvedAtOnce() throws {
        var buffer = CodeBuffer()
        let start = buffer.makeLabel()
        try buffer.bind(start)
        buffer.lea(.b64, .rax, .rip(start))  // 48 8D 05 disp32, ends at 7
        #expect(buffer.bytes == [0x48, 0x8D, 0x05, 0xF9, 0xFF, 0xFF, 0xFF])
    }

    @Test func bindingTwiceIsReportedAndKeepsTheFirstOffset() throws {
        var buffer = CodeBuffer()
        let label = buffer.makeLabel()
        try buffer.bind(label)
        buffer.ret()
        #expect(throws: LabelError.boundTwice(label, offset: 0)) { try buffer.bind(label) }
        #expect(buffer.offset(of: label) == 0)
    }

    @Test func finishingWithAnUnboundReferencedLabelIsReported() throws {
        var buffer = CodeBuffer()
        let used = buffer.makeLabel()
        let unused = buffer.makeLabel()
        buffer.jcc(.e, to: used)
        #expect(buffer.offset(of: unused) == nil)
        #expect(throws: LabelError.unbound(used)) { try buffer.finish() }
        try buffer.bind(used)
        try buffer.finish()  // an unreferenced, unbound label is fine
    }

    @Test func errorsExplainThemselves() {
        var buffer = CodeBuffer()
        let first = buffer.makeLabel()
        #expect("\(LabelError.unbound(first))" == "label L0 is referenced but never bound")
        #expect("\(LabelError.boundTwice(first, offset: 12))" == "label L0 bound twice (first bound at offset 12)")
    }

    @Test func removeAllForgetsBytesAndLabels() throws {
        var buffer = CodeBuffer()
        let label = buffer.makeLabel()
        buffer.jmp(to: label)
        buffer.removeAll()
        let isEmpty = buffer.isEmpty
        #expect(isEmpty)
        try buffer.finish()
        let fresh = buffer.makeLabel()
        #expect(fresh.id == 0)
    }
}
