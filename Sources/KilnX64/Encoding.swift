// The shared machinery of every instruction: prefixes, REX, opcode, ModRM,
// SIB, displacement. Instruction files only choose opcodes and operands.
//
// Byte order of an instruction, as emitted here:
//
//     [66|F2|F3] [REX] opcode (1-3 bytes) ModRM [SIB] [disp8|disp32] [imm]
//
// REX is 0100WRXB: W selects 64-bit operand size; R, X, B extend the ModRM
// reg field, the SIB index and the ModRM rm / SIB base / opcode register. It
// is emitted when any of those bits is set, and also empty (0x40) when a byte
// operand names register 4-7, which then means spl/bpl/sil/dil, not ah..bh.
//
// ModRM special cases, all handled in `emitAddress`:
// - rm = 100 means "a SIB byte follows", so a base of rsp or r12 (low bits
//   100) always takes a SIB byte with index 100 (none).
// - mod = 00 with rm = 101 means RIP + disp32, and SIB base = 101 with mod 00
//   means "no base + disp32", so a base of rbp or r13 (low bits 101) with a
//   zero displacement still takes mod = 01 and a disp8 of 0.
// - An index without a base is SIB base = 101 with mod = 00 and a disp32.
// - SIB index = 100 without REX.X means "no index": rsp cannot be an index
//   (`IndexRegister` has no such case), but r12 can.
// - disp8 is used when the displacement fits in -128...127, else disp32.

/// REX prefix bits; OR them together and pass as `rex:`.
enum REX {
    /// REX.W: 64-bit operand size.
    static let w: UInt8 = 0x08
    /// An otherwise empty REX, needed to reach spl/bpl/sil/dil.
    static let force: UInt8 = 0x40
}

extension Width {
    /// The operand-size prefix: 0x66 for 16 bits, none otherwise.
    var sizePrefix: UInt8 { self == .b16 ? 0x66 : 0 }
    /// REX.W for 64 bits.
    var sizeREX: UInt8 { self == .b64 ? REX.w : 0 }
    /// The size of a full immediate at this width: 64-bit operations take imm32.
    var immediateBytes: Int { Swift.min(bytes, 4) }
}

/// The empty REX needed when `register` is used as a byte register 4-7.
@inline(__always) func byteREX(_ register: UInt8) -> UInt8 {
    (register >= 4 && register < 8) ? REX.force : 0
}

extension Int64 {
    /// Whether the value survives a round trip through a sign-extended imm8.
    var fitsInt8: Bool { self >= -128 && self <= 127 }
    /// Whether the value survives a round trip through a sign-extended imm32.
    var fitsInt32: Bool { self >= Int64(Int32.min) && self <= Int64(Int32.max) }
}

extension CodeBuffer {
    // MARK: Pieces

    @inline(__always)
    mutating func emitPrefixes(_ prefix: UInt8, _ rex: UInt8) {
        if prefix != 0 { emit(prefix) }
        if rex != 0 { emit(0x40 | (rex & 0x0F)) }
    }

    /// Emits a 1-, 2- or 3-byte opcode written as one number: 0x0FAF is 0F AF.
    @inline(__always)
    mutating func emitOpcode(_ opcode: UInt32) {
        if opcode > 0xFFFF { emit(UInt8(truncatingIfNeeded: opcode >> 16)) }
        if opcode > 0xFF { emit(UInt8(truncatingIfNeeded: opcode >> 8)) }
        emit(UInt8(truncatingIfNeeded: opcode))
    }

    @inline(__always)
    mutating func emitInt32(_ value: Int32) {
        emit32(UInt32(bitPattern: value))
    }

    /// Emits the low `width.bytes` bytes of `value` as an immediate (at most 4).
    @inline(__always)
    mutating func emitImmediate(_ value: Int64, _ width: Width) {
        switch width {
        case .b8: emit(UInt8(truncatingIfNeeded: value))
        case .b16: emit16(UInt16(truncatingIfNeeded: value))
        case .b32, .b64: emit32(UInt32(truncatingIfNeeded: value))
        }
    }

    // MARK: Whole instructions

    /// An instruction whose ModRM names two registers (mod = 11).
    ///
    /// `reg` and `rm` are hardware numbers 0-15 (or a /digit in `reg`).
    mutating func encode(prefix: UInt8 = 0, rex: UInt8 = 0, opcode: UInt32, reg: UInt8, rm: UInt8) {
        let rex = rex | ((reg & 8) >> 1) | ((rm & 8) >> 3)
        emitPrefixes(prefix, rex)
        emitOpcode(opcode)
        emit(0xC0 | ((reg & 7) << 3) | (rm & 7))
    }

    /// An instruction whose ModRM names a register (or /digit) and a memory operand.
    ///
    /// `immediateSize` is the number of bytes the caller emits after this call;
    /// a RIP-relative displacement is measured from the end of those.
    mutating func encode(
        prefix: UInt8 = 0, rex: UInt8 = 0, opcode: UInt32, reg: UInt8, memory: Memory,
        immediateSize: Int = 0
    ) {
        var rex = rex | ((reg & 8) >> 1)
        switch memory.form {
        case .base(let base):
            rex |= base.rawValue >> 3
        case .baseIndex(let base, let index, _):
            rex |= (base.rawValue >> 3) | ((index.rawValue & 8) >> 2)
        case .index(let index, _):
            rex |= (index.rawValue & 8) >> 2
        case .absolute, .rip, .ripLabel:
            break
        }
        emitPrefixes(prefix, rex)
        emitOpcode(opcode)
        emitAddress(reg: reg & 7, memory, immediateSize: immediateSize)
    }

    /// An integer instruction at `width`: chooses the byte opcode or the
    /// full-size one, the 0x66 prefix, REX.W, and an empty REX for
    /// spl/bpl/sil/dil. `regIsRegister` is false when `reg` is a /digit.
    mutating func encode(
        _ width: Width, opcode8: UInt32, opcode: UInt32, reg: UInt8, regIsRegister: Bool, rm: UInt8
    ) {
        var rex = width.sizeREX
        if width == .b8 {
            rex |= byteREX(rm)
            if regIsRegister { rex |= byteREX(reg) }
        }
        encode(
            prefix: width.sizePrefix, rex: rex, opcode: width == .b8 ? opcode8 : opcode,
            reg: reg, rm: rm)
    }

    /// The memory form of `encode(_:opcode8:opcode:reg:regIsRegister:rm:)`.
    mutating func encode(
        _ width: Width, opcode8: UInt32, opcode: UInt32, reg: UInt8, regIsRegister: Bool,
        memory: Memory, immediateSize: Int = 0
    ) {
        var rex = width.sizeREX
        if width == .b8 && regIsRegister { rex |= byteREX(reg) }
        encode(
            prefix: width.sizePrefix, rex: rex, opcode: width == .b8 ? opcode8 : opcode,
            reg: reg, memory: memory, immediateSize: immediateSize)
    }

    // MARK: Addressing

    /// ModRM (with `reg` already reduced to three bits), SIB and displacement.
    mutating func emitAddress(reg: UInt8, _ memory: Memory, immediateSize: Int) {
        let reg = reg << 3
        let displacement = memory.displacement
        switch memory.form {
        case .base(let base):
            let mod = Self.mod(displacement, base)
            if base.low3 == 4 {
                emit(mod | reg | 0b100)
                emit(0x24)  // SIB: scale 1, no index, base rsp/r12
            } else {
                emit(mod | reg | base.low3)
            }
            emitDisplacement(mod, displacement)
        case .baseIndex(let base, let index, let scale):
            let mod = Self.mod(displacement, base)
            emit(mod | reg | 0b100)
            emit(scale.rawValue << 6 | (index.rawValue & 7) << 3 | base.low3)
            emitDisplacement(mod, displacement)
        case .index(let index, let scale):
            emit(reg | 0b100)
            emit(scale.rawValue << 6 | (index.rawValue & 7) << 3 | 0b101)
            emitInt32(displacement)
        case .absolute:
            emit(reg | 0b100)
            emit(0x25)  // SIB: no index, no base, disp32
            emitInt32(displacement)
        case .rip:
            emit(reg | 0b101)
            lastRIPRelativeSite = PatchSite(offset: used, instructionEnd: used + 4 + immediateSize)
            emitInt32(displacement)
        case .ripLabel(let label):
            emit(reg | 0b101)
            lastRIPRelativeSite = PatchSite(offset: used, instructionEnd: used + 4 + immediateSize)
            emitRelative32(to: label, addend: displacement, trailingBytes: immediateSize)
        }
    }

    /// The ModRM mod bits for a based address: none, disp8 or disp32.
    /// rbp and r13 (low bits 101) cannot use mod 00, so they take a disp8 of 0.
    @inline(__always)
    static func mod(_ displacement: Int32, _ base: GPR) -> UInt8 {
        if displacement == 0 && base.low3 != 0b101 { return 0b00 << 6 }
        if Int64(displacement).fitsInt8 { return 0b01 << 6 }
        return 0b10 << 6
    }

    @inline(__always)
    mutating func emitDisplacement(_ mod: UInt8, _ displacement: Int32) {
        switch mod {
        case 0b01 << 6: emit(UInt8(truncatingIfNeeded: displacement))
        case 0b10 << 6: emitInt32(displacement)
        default: break
        }
    }
}
