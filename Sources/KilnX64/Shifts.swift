// Shifts and rotates: shl shr sar rol ror, by the cl register, by an
// immediate count, and by 1.
//
// Opcodes (the operation is the /digit in ModRM.reg):
//   by 1     D0 (byte) / D1        by cl    D2 / D3        by imm8    C0 / C1 ib
//
// The processor masks the count to 5 bits (6 for 64-bit operands), so an
// immediate count is emitted as given. A count of 1 uses the shorter D0/D1
// form. Variable shifts need the count in cl: the register allocator must
// keep rcx free (or move the count there) around them.

/// A shift or rotate; the raw value is the Intel /digit.
public enum ShiftOperation: UInt8, CaseIterable, Hashable, Sendable {
    /// Rotate left.
    case rol = 0
    /// Rotate right.
    case ror = 1
    /// Shift left (the same as `sal`).
    case shl = 4
    /// Logical shift right: zeroes come in.
    case shr = 5
    /// Arithmetic shift right: copies of the sign bit come in.
    case sar = 7

    /// The Intel mnemonic.
    public var name: String { String(describing: self) }
}

extension CodeBuffer {
    /// `op operand, cl`: shifts by the count in cl.
    public mutating func shiftByCL(_ op: ShiftOperation, _ width: Width, _ operand: GPR) {
        encode(
            width, opcode8: 0xD2, opcode: 0xD3, reg: op.rawValue, regIsRegister: false,
            rm: operand.rawValue)
    }

    /// `op [operand], cl`.
    public mutating func shiftByCL(_ op: ShiftOperation, _ width: Width, _ operand: Memory) {
        encode(
            width, opcode8: 0xD2, opcode: 0xD3, reg: op.rawValue, regIsRegister: false,
            memory: operand)
    }

    /// `op operand, count`; a count of 1 takes the short D0/D1 form.
    public mutating func shift(_ op: ShiftOperation, _ width: Width, _ operand: GPR, count: UInt8) {
        if count == 1 {
            encode(
                width, opcode8: 0xD0, opcode: 0xD1, reg: op.rawValue, regIsRegister: false,
                rm: operand.rawValue)
        } else {
            encode(
                width, opcode8: 0xC0, opcode: 0xC1, reg: op.rawValue, regIsRegister: false,
                rm: operand.rawValue)
            emit(count)
        }
    }

    /// `op [operand], count`; a count of 1 takes the short D0/D1 form.
    public mutating func shift(_ op: ShiftOperation, _ width: Width, _ operand: Memory, count: UInt8) {
        if count == 1 {
            encode(
                width, opcode8: 0xD0, opcode: 0xD1, reg: op.rawValue, regIsRegister: false,
                memory: operand)
        } else {
            encode(
                width, opcode8: 0xC0, opcode: 0xC1, reg: op.rawValue, regIsRegister: false,
                memory: operand, immediateSize: 1)
            emit(count)
        }
    }
}
