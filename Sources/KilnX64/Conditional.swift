// Instructions that act on a condition without branching: setcc writes 0 or
// 1 into a byte, cmovcc moves only when the condition holds.
//
// Opcodes: setcc r/m8 is 0F 90+cc (ModRM.reg ignored, encoded as 0);
// cmovcc r, r/m is 0F 40+cc /r, at 16, 32 or 64 bits.
//
// setcc writes only the low byte: to get a 0/1 value in a full register, the
// code generator zero-extends afterwards (`movzx(.b32, r, .b8, r)`) or zeroes
// the register with `xor` before the compare that sets the flags. A 32-bit
// cmovcc zero-extends the destination even when the condition is false.

extension CodeBuffer {
    /// `setcc destination`: the low byte of `destination` becomes 1 if
    /// `condition` holds, else 0 (spl/bpl/sil/dil get the REX they need).
    public mutating func setcc(_ condition: Condition, _ destination: GPR) {
        encode(
            prefix: 0, rex: byteREX(destination.rawValue), opcode: 0x0F90 + UInt32(condition.rawValue),
            reg: 0, rm: destination.rawValue)
    }

    /// `setcc byte ptr [destination]`.
    public mutating func setcc(_ condition: Condition, _ destination: Memory) {
        encode(opcode: 0x0F90 + UInt32(condition.rawValue), reg: 0, memory: destination)
    }

    /// `cmovcc destination, source`: moves when `condition` holds.
    public mutating func cmov(_ condition: Condition, _ width: Width, _ destination: GPR, _ source: GPR) {
        precondition(width != .b8, "cmov has no byte form")
        encode(
            prefix: width.sizePrefix, rex: width.sizeREX, opcode: 0x0F40 + UInt32(condition.rawValue),
            reg: destination.rawValue, rm: source.rawValue)
    }

    /// `cmovcc destination, [source]`: loads when `condition` holds (the load
    /// itself may happen, and fault, either way).
    public mutating func cmov(_ condition: Condition, _ width: Width, _ destination: GPR, _ source: Memory) {
        precondition(width != .b8, "cmov has no byte form")
        encode(
            prefix: width.sizePrefix, rex: width.sizeREX, opcode: 0x0F40 + UInt32(condition.rawValue),
            reg: destination.rawValue, memory: source)
    }
}
