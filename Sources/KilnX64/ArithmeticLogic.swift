// The eight classic two-operand integer operations (add or adc sbb and sub
// xor cmp) and `test`, in every operand form the code generator needs.
//
// Opcode map: operation n (0-7) uses 8n+0 (r/m8, r8), 8n+1 (r/m, r),
// 8n+2 (r8, r/m8), 8n+3 (r, r/m); immediates use 0x80 /n ib (byte),
// 0x83 /n ib (sign-extended imm8) and 0x81 /n iw/id. The encoder picks 0x83
// whenever the immediate fits in a signed byte. A 64-bit operation takes a
// 32-bit immediate sign-extended to 64 bits; wider constants must be moved
// into a register first (`mov(_:_:imm:)`).
//
// Immediates are checked against the width: `.b8` accepts -128...255,
// `.b16` accepts -32768...65535 (the bit pattern is what counts), `.b32`
// and `.b64` accept any Int32. The short forms with rax as destination
// (0x05 and friends) are not used: they save one byte only for rax.

/// An integer operation of the add/or/adc/sbb/and/sub/xor/cmp family; the
/// raw value is the Intel /digit and the opcode row.
public enum ALUOperation: UInt8, CaseIterable, Hashable, Sendable {
    case add = 0, or, adc, sbb, and, sub, xor, cmp

    /// The Intel mnemonic.
    public var name: String { String(describing: self) }
}

extension CodeBuffer {
    /// `op destination, source` between registers (`add rax, rcx`).
    public mutating func alu(_ op: ALUOperation, _ width: Width, _ destination: GPR, _ source: GPR) {
        let row = UInt32(op.rawValue) << 3
        encode(
            width, opcode8: row, opcode: row + 1, reg: source.rawValue, regIsRegister: true,
            rm: destination.rawValue)
    }

    /// `op destination, [memory]` (`add rax, qword ptr [rbx]`).
    public mutating func alu(_ op: ALUOperation, _ width: Width, _ destination: GPR, _ source: Memory) {
        let row = UInt32(op.rawValue) << 3
        encode(
            width, opcode8: row + 2, opcode: row + 3, reg: destination.rawValue, regIsRegister: true,
            memory: source)
    }

    /// `op [memory], source` (`add qword ptr [rbx], rax`).
    public mutating func alu(_ op: ALUOperation, _ width: Width, _ destination: Memory, _ source: GPR) {
        let row = UInt32(op.rawValue) << 3
        encode(
            width, opcode8: row, opcode: row + 1, reg: source.rawValue, regIsRegister: true,
            memory: destination)
    }

    /// `op destination, imm` (`add rax, 8`); uses the imm8 form when it fits.
    public mutating func alu(_ op: ALUOperation, _ width: Width, _ destination: GPR, imm: Int32) {
        let value = Int64(imm)
        checkImmediate(value, width)
        let short = width != .b8 && value.fitsInt8
        encode(
            width, opcode8: 0x80, opcode: short ? 0x83 : 0x81, reg: op.rawValue, regIsRegister: false,
            rm: destination.rawValue)
        emitImmediate(value, short ? .b8 : width)
    }

    /// `op [memory], imm` (`add qword ptr [rbx], 8`); uses the imm8 form when it fits.
    public mutating func alu(_ op: ALUOperation, _ width: Width, _ destination: Memory, imm: Int32) {
        let value = Int64(imm)
        checkImmediate(value, width)
        let short = width != .b8 && value.fitsInt8
        encode(
            width, opcode8: 0x80, opcode: short ? 0x83 : 0x81, reg: op.rawValue, regIsRegister: false,
            memory: destination, immediateSize: short ? 1 : width.immediateBytes)
        emitImmediate(value, short ? .b8 : width)
    }

    // MARK: test

    /// `test first, second` between registers: sets flags from `first & second`.
    public mutating func test(_ width: Width, _ first: GPR, _ second: GPR) {
        encode(
            width, opcode8: 0x84, opcode: 0x85, reg: second.rawValue, regIsRegister: true,
            rm: first.rawValue)
    }

    /// `test [memory], register`.
    public mutating func test(_ width: Width, _ first: Memory, _ second: GPR) {
        encode(
            width, opcode8: 0x84, opcode: 0x85, reg: second.rawValue, regIsRegister: true,
            memory: first)
    }

    /// `test register, imm` (0xF6 /0 ib, 0xF7 /0 iw/id: there is no imm8 form).
    public mutating func test(_ width: Width, _ first: GPR, imm: Int32) {
        let value = Int64(imm)
        checkImmediate(value, width)
        encode(width, opcode8: 0xF6, opcode: 0xF7, reg: 0, regIsRegister: false, rm: first.rawValue)
        emitImmediate(value, width)
    }

    /// `test [memory], imm`.
    public mutating func test(_ width: Width, _ first: Memory, imm: Int32) {
        let value = Int64(imm)
        checkImmediate(value, width)
        encode(
            width, opcode8: 0xF6, opcode: 0xF7, reg: 0, regIsRegister: false, memory: first,
            immediateSize: width.immediateBytes)
        emitImmediate(value, width)
    }

    /// Traps unless `value` fits an immediate field of `width` (signed or
    /// unsigned bit pattern for 8 and 16 bits; any Int32 otherwise).
    func checkImmediate(_ value: Int64, _ width: Width) {
        switch width {
        case .b8:
            precondition(value >= -128 && value <= 255, "immediate \(value) does not fit 8 bits")
        case .b16:
            precondition(value >= -32768 && value <= 65535, "immediate \(value) does not fit 16 bits")
        case .b32, .b64:
            break
        }
    }
}
