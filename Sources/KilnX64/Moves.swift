// Data movement between integer registers and memory: mov in all its forms,
// the widening moves movzx/movsx/movsxd, and lea.
//
// Forms and opcodes:
//   mov r/m, r        88 (byte) / 89      mov r, r/m        8A / 8B
//   mov r/m, imm      C6 /0 ib / C7 /0 iw/id (64-bit: imm32 sign-extended)
//   mov r, imm        B0+r ib / B8+r iw/id (32-bit form zero-extends to 64)
//   movabs r64, imm64 REX.W B8+r io
//   movzx r, r/m8     0F B6    movzx r, r/m16    0F B7
//   movsx r, r/m8     0F BE    movsx r, r/m16    0F BF    movsxd r64, r/m32   REX.W 63
//   lea r, m          8D
//
// Writing a 32-bit register zero-extends into the full 64-bit register, which
// is why `movzx` from 32 to 64 bits is a plain 32-bit `mov`, and why
// `mov(.b64, r, imm:)` uses the 5-byte `mov r32, imm32` for any constant in
// 0...UInt32.max. Writing an 8- or 16-bit register leaves the upper bits alone.

extension CodeBuffer {
    /// `mov destination, source` between registers (0x89, r/m = destination).
    ///
    /// At `.b32` this zero-extends into the upper half of `destination`.
    public mutating func mov(_ width: Width, _ destination: GPR, _ source: GPR) {
        encode(
            width, opcode8: 0x88, opcode: 0x89, reg: source.rawValue, regIsRegister: true,
            rm: destination.rawValue)
    }

    /// `mov destination, [source]`: a load.
    public mutating func mov(_ width: Width, _ destination: GPR, _ source: Memory) {
        encode(
            width, opcode8: 0x8A, opcode: 0x8B, reg: destination.rawValue, regIsRegister: true,
            memory: source)
    }

    /// `mov [destination], source`: a store.
    public mutating func mov(_ width: Width, _ destination: Memory, _ source: GPR) {
        encode(
            width, opcode8: 0x88, opcode: 0x89, reg: source.rawValue, regIsRegister: true,
            memory: destination)
    }

    /// `mov [destination], imm`: a store of a constant; at `.b64` the imm32 is
    /// sign-extended. `.b8` and `.b16` accept signed or unsigned bit patterns.
    public mutating func mov(_ width: Width, _ destination: Memory, imm: Int32) {
        let value = Int64(imm)
        checkImmediate(value, width)
        encode(
            width, opcode8: 0xC6, opcode: 0xC7, reg: 0, regIsRegister: false, memory: destination,
            immediateSize: width.immediateBytes)
        emitImmediate(value, width)
    }

    /// `mov destination, imm`, in the shortest form that produces `imm` in the
    /// register at `width`.
    ///
    /// At `.b64`: `mov r32, imm32` (zero-extending, 5-6 bytes) for
    /// 0...UInt32.max, `mov r/m64, imm32` (sign-extending, 7 bytes) for other
    /// Int32 values, and `movabs` (10 bytes) for the rest. At `.b32`, `.b16`
    /// and `.b8` the value must fit the width as a signed or unsigned number.
    /// To patch the constant later, use `movabs(_:imm64:)`, whose field never moves.
    public mutating func mov(_ width: Width, _ destination: GPR, imm: Int64) {
        switch width {
        case .b64:
            if imm >= 0 && imm <= Int64(UInt32.max) {
                mov(.b32, destination, imm: imm)
            } else if imm.fitsInt32 {
                encode(prefix: 0, rex: REX.w, opcode: 0xC7, reg: 0, rm: destination.rawValue)
                emitInt32(Int32(imm))
            } else {
                movabs(destination, imm64: imm)
            }
        case .b32:
            precondition(
                imm >= Int64(Int32.min) && imm <= Int64(UInt32.max),
                "immediate \(imm) does not fit 32 bits")
            emitPrefixes(0, destination.rawValue >> 3)
            emit(0xB8 | destination.low3)
            emit32(UInt32(truncatingIfNeeded: imm))
        case .b16, .b8:
            precondition(imm.fitsInt32, "immediate \(imm) does not fit \(width.bits) bits")
            checkImmediate(imm, width)
            let rex = (destination.rawValue >> 3) | (width == .b8 ? byteREX(destination.rawValue) : 0)
            emitPrefixes(width.sizePrefix, rex)
            emit((width == .b8 ? 0xB0 : 0xB8) | destination.low3)
            emitImmediate(imm, width)
        }
    }

    /// `movabs destination, imm64` (REX.W B8+r): always 10 bytes.
    ///
    /// Returns the site of the 8-byte immediate, for an absolute relocation.
    @discardableResult
    public mutating func movabs(_ destination: GPR, imm64: Int64) -> PatchSite {
        emitPrefixes(0, REX.w | (destination.rawValue >> 3))
        emit(0xB8 | destination.low3)
        let site = PatchSite(offset: used, instructionEnd: used + 8)
        emit64(UInt64(bitPattern: imm64))
        return site
    }

    // MARK: Widening moves

    /// `movzx destination, source`: zero-extends `sourceWidth` bits to `width`.
    ///
    /// From `.b8` or `.b16` to a wider width this is 0F B6 / 0F B7. From
    /// `.b32` to `.b64` it is `mov r32, r32`, which zero-extends by itself.
    public mutating func movzx(_ width: Width, _ destination: GPR, _ sourceWidth: Width, _ source: GPR) {
        checkWidening(width, sourceWidth)
        if sourceWidth == .b32 {
            mov(.b32, destination, source)
            return
        }
        let rex = width.sizeREX | (sourceWidth == .b8 ? byteREX(source.rawValue) : 0)
        encode(
            prefix: width.sizePrefix, rex: rex, opcode: sourceWidth == .b8 ? 0x0FB6 : 0x0FB7,
            reg: destination.rawValue, rm: source.rawValue)
    }

    /// `movzx destination, [source]`: a zero-extending load (`.b32` source: `mov r32, m32`).
    public mutating func movzx(_ width: Width, _ destination: GPR, _ sourceWidth: Width, _ source: Memory) {
        checkWidening(width, sourceWidth)
        if sourceWidth == .b32 {
            mov(.b32, destination, source)
            return
        }
        encode(
            prefix: width.sizePrefix, rex: width.sizeREX, opcode: sourceWidth == .b8 ? 0x0FB6 : 0x0FB7,
            reg: destination.rawValue, memory: source)
    }

    /// `movsx destination, source`: sign-extends `sourceWidth` bits to `width`
    /// (0F BE, 0F BF, or `movsxd` = REX.W 63 from `.b32` to `.b64`).
    public mutating func movsx(_ width: Width, _ destination: GPR, _ sourceWidth: Width, _ source: GPR) {
        checkWidening(width, sourceWidth)
        let rex = width.sizeREX | (sourceWidth == .b8 ? byteREX(source.rawValue) : 0)
        encode(
            prefix: width.sizePrefix, rex: rex, opcode: Self.movsxOpcode(sourceWidth),
            reg: destination.rawValue, rm: source.rawValue)
    }

    /// `movsx destination, [source]`: a sign-extending load.
    public mutating func movsx(_ width: Width, _ destination: GPR, _ sourceWidth: Width, _ source: Memory) {
        checkWidening(width, sourceWidth)
        encode(
            prefix: width.sizePrefix, rex: width.sizeREX, opcode: Self.movsxOpcode(sourceWidth),
            reg: destination.rawValue, memory: source)
    }

    private static func movsxOpcode(_ sourceWidth: Width) -> UInt32 {
        switch sourceWidth {
        case .b8: return 0x0FBE
        case .b16: return 0x0FBF
        case .b32, .b64: return 0x63
        }
    }

    private func checkWidening(_ width: Width, _ sourceWidth: Width) {
        precondition(
            width.rawValue > sourceWidth.rawValue && width != .b8,
            "cannot widen \(sourceWidth) to \(width)")
        precondition(sourceWidth != .b32 || width == .b64, "a 32-bit source widens only to .b64")
    }

    // MARK: lea

    /// `lea destination, [address]`: computes the address without touching memory.
    ///
    /// `width` is `.b64` (the usual case) or `.b32` (the address truncated,
    /// then zero-extended; handy for 32-bit arithmetic as `base + index * scale + k`).
    public mutating func lea(_ width: Width, _ destination: GPR, _ address: Memory) {
        precondition(width == .b64 || width == .b32, "lea takes a 32- or 64-bit destination")
        encode(
            prefix: width.sizePrefix, rex: width.sizeREX, opcode: 0x8D, reg: destination.rawValue,
            memory: address)
    }
}
