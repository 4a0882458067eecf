// The stack and the odd ones out: push, pop, ud2, int3, endbr64, and the
// multi-byte nops used to align loop heads and function entries.
//
// Opcodes: push r64 50+r, pop r64 58+r (REX.B for r8-r15), push imm8 6A ib,
// push imm32 68 id (sign-extended to 64), ud2 0F 0B, int3 CC,
// endbr64 F3 0F 1E FA.
//
// The nops are the forms the Intel optimization manual recommends, one
// instruction for each length 1-9 (0F 1F /0 with growing addressing modes,
// plus a 0x66 prefix). Longer padding is a run of 9-byte nops and a tail.

extension CodeBuffer {
    /// `push source`: rsp -= 8, then stores `source` at [rsp].
    public mutating func push(_ source: GPR) {
        emitPrefixes(0, source.rawValue >> 3)
        emit(0x50 | source.low3)
    }

    /// `pop destination`: loads [rsp] into `destination`, then rsp += 8.
    public mutating func pop(_ destination: GPR) {
        emitPrefixes(0, destination.rawValue >> 3)
        emit(0x58 | destination.low3)
    }

    /// `push imm`: pushes the immediate sign-extended to 64 bits.
    public mutating func push(imm: Int32) {
        if Int64(imm).fitsInt8 {
            emit(0x6A)
            emit(UInt8(truncatingIfNeeded: imm))
        } else {
            emit(0x68)
            emitInt32(imm)
        }
    }

    /// `ud2`: raises #UD; marks code that must never run.
    public mutating func ud2() {
        emit(0x0F)
        emit(0x0B)
    }

    /// `int3`: a breakpoint trap.
    public mutating func int3() {
        emit(0xCC)
    }

    /// `endbr64`: an indirect-branch landing pad for CET; a nop on older CPUs.
    public mutating func endbr64() {
        emit(0xF3)
        emit(0x0F)
        emit(0x1E)
        emit(0xFA)
    }

    /// Emits exactly `length` bytes of nops, using as few instructions as possible.
    public mutating func nop(length: Int) {
        precondition(length >= 0, "nop length \(length) is negative")
        var remaining = length
        while remaining > 0 {
            let size = min(remaining, 9)
            emit(Self.nops[size - 1])
            remaining -= size
        }
    }

    /// Pads with nops until `count` is a multiple of `alignment` (a power of two).
    public mutating func align(to alignment: Int) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment \(alignment) is not a power of two")
        nop(length: (alignment - used % alignment) % alignment)
    }

    /// The recommended single-instruction nop of each length 1-9.
    private static let nops: [[UInt8]] = [
        [0x90],
        [0x66, 0x90],
        [0x0F, 0x1F, 0x00],
        [0x0F, 0x1F, 0x40, 0x00],
        [0x0F, 0x1F, 0x44, 0x00, 0x00],
        [0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00],
        [0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00],
        [0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
        [0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
    ]
}
