// SSE2 data movement: scalar moves between XMM registers and memory, whole
// register copies, and bit-for-bit transfers between GPRs and XMMs.
//
// Forms and opcodes (prefix, opcode):
//   movss xmm, xmm/m32   F3 0F 10      movss m32, xmm   F3 0F 11
//   movsd xmm, xmm/m64   F2 0F 10      movsd m64, xmm   F2 0F 11
//   movaps xmm, xmm/m128    0F 28      movaps m128, xmm    0F 29
//   movapd xmm, xmm/m128 66 0F 28      movapd m128, xmm 66 0F 29
//   movd xmm, r/m32      66 0F 6E      movd r/m32, xmm  66 0F 7E
//   movq xmm, r/m64  66 REX.W 0F 6E    movq r/m64, xmm  66 REX.W 0F 7E
//
// Register allocation note: `movss`/`movsd` between registers merge into the
// low lane and keep the destination's upper bits (a false dependency); a
// plain register-to-register copy of a float is better done with `movaps`,
// which copies all 128 bits. Loads with `movss`/`movsd` zero the upper lanes.
// `movaps`/`movapd` with memory require 16-byte alignment.

extension CodeBuffer {
    /// `movss destination, source`: the low 32 bits; the rest of `destination` stays.
    public mutating func movss(_ destination: XMM, _ source: XMM) {
        encode(prefix: 0xF3, opcode: 0x0F10, reg: destination.rawValue, rm: source.rawValue)
    }

    /// `movss destination, dword ptr [source]`: loads a float, zeroing the upper lanes.
    public mutating func movss(_ destination: XMM, _ source: Memory) {
        encode(prefix: 0xF3, opcode: 0x0F10, reg: destination.rawValue, memory: source)
    }

    /// `movss dword ptr [destination], source`: stores a float.
    public mutating func movss(_ destination: Memory, _ source: XMM) {
        encode(prefix: 0xF3, opcode: 0x0F11, reg: source.rawValue, memory: destination)
    }

    /// `movsd destination, source`: the low 64 bits; the rest of `destination` stays.
    public mutating func movsd(_ destination: XMM, _ source: XMM) {
        encode(prefix: 0xF2, opcode: 0x0F10, reg: destination.rawValue, rm: source.rawValue)
    }

    /// `movsd destination, qword ptr [source]`: loads a double, zeroing the upper lane.
    public mutating func movsd(_ destination: XMM, _ source: Memory) {
        encode(prefix: 0xF2, opcode: 0x0F10, reg: destination.rawValue, memory: source)
    }

    /// `movsd qword ptr [destination], source`: stores a double.
    public mutating func movsd(_ destination: Memory, _ source: XMM) {
        encode(prefix: 0xF2, opcode: 0x0F11, reg: source.rawValue, memory: destination)
    }

    /// `movaps destination, source`: copies all 128 bits (the usual float copy).
    public mutating func movaps(_ destination: XMM, _ source: XMM) {
        encode(opcode: 0x0F28, reg: destination.rawValue, rm: source.rawValue)
    }

    /// `movaps destination, xmmword ptr [source]`: an aligned 16-byte load.
    public mutating func movaps(_ destination: XMM, _ source: Memory) {
        encode(opcode: 0x0F28, reg: destination.rawValue, memory: source)
    }

    /// `movaps xmmword ptr [destination], source`: an aligned 16-byte store.
    public mutating func movaps(_ destination: Memory, _ source: XMM) {
        encode(opcode: 0x0F29, reg: source.rawValue, memory: destination)
    }

    /// `movapd destination, source`: copies all 128 bits.
    public mutating func movapd(_ destination: XMM, _ source: XMM) {
        encode(prefix: 0x66, opcode: 0x0F28, reg: destination.rawValue, rm: source.rawValue)
    }

    /// `movd destination, source`: the 32 bits of a GPR into the low lane, zeroing the rest.
    public mutating func movd(_ destination: XMM, _ source: GPR) {
        encode(prefix: 0x66, opcode: 0x0F6E, reg: destination.rawValue, rm: source.rawValue)
    }

    /// `movd destination, source`: the low 32 bits of an XMM into a GPR (zero-extended).
    public mutating func movd(_ destination: GPR, _ source: XMM) {
        encode(prefix: 0x66, opcode: 0x0F7E, reg: source.rawValue, rm: destination.rawValue)
    }

    /// `movq destination, source`: the 64 bits of a GPR into the low lane, zeroing the rest.
    public mutating func movq(_ destination: XMM, _ source: GPR) {
        encode(prefix: 0x66, rex: REX.w, opcode: 0x0F6E, reg: destination.rawValue, rm: source.rawValue)
    }

    /// `movq destination, source`: the low 64 bits of an XMM into a GPR.
    public mutating func movq(_ destination: GPR, _ source: XMM) {
        encode(prefix: 0x66, rex: REX.w, opcode: 0x0F7E, reg: source.rawValue, rm: destination.rawValue)
    }
}
