// SSE scalar arithmetic, bitwise logic on whole registers, and comparisons
// that set the integer flags.
//
// Forms and opcodes (the precision picks the prefix):
//   scalar op xmm, xmm/m      F3 (single) / F2 (double)  0F 51 58 59 5C 5D 5E 5F
//   logic  op xmm, xmm/m128   none (ps)   / 66 (pd)      0F 54 55 56 57
//   pxor xmm, xmm/m128        66 0F EF
//   ucomiss/ucomisd xmm, xmm/m   none / 66  0F 2E
//   comiss/comisd   xmm, xmm/m   none / 66  0F 2F
//
// Flags after (u)comis: unordered (a NaN) sets ZF, PF and CF; less sets CF;
// equal sets ZF; greater clears all three. So `a`/`ae`/`b`/`be` test the
// ordering, and `p` is needed to tell "equal" from "unordered". `ucomis`
// raises an invalid-operation exception only for signalling NaNs, `comis`
// for any NaN; QBE's float comparisons use `ucomis`.
//
// Negation and absolute value are `xorps`/`andps` with a sign-bit mask loaded
// from memory (usually RIP-relative); `xorps x, x` is the idiomatic zero.

/// The precision of a floating-point operation: QBE's `s` and `d`.
public enum Precision: UInt8, CaseIterable, Hashable, Sendable {
    /// 32-bit float (`ss`, `ps` instructions).
    case single
    /// 64-bit double (`sd`, `pd` instructions).
    case double

    /// The mandatory prefix of a scalar instruction: F3 or F2.
    var scalarPrefix: UInt8 { self == .single ? 0xF3 : 0xF2 }
    /// The mandatory prefix of a packed instruction: none or 66.
    var packedPrefix: UInt8 { self == .single ? 0 : 0x66 }
}

/// A scalar SSE arithmetic operation; the raw value is the second opcode byte.
public enum ScalarOperation: UInt8, CaseIterable, Hashable, Sendable {
    case sqrt = 0x51, add = 0x58, mul = 0x59, sub = 0x5C, min = 0x5D, div = 0x5E, max = 0x5F

    /// The Intel mnemonic at `precision` (`addss`, `sqrtsd`).
    public func name(_ precision: Precision) -> String {
        "\(self)" + (precision == .single ? "ss" : "sd")
    }
}

/// A bitwise operation on whole XMM registers; the raw value is the second opcode byte.
public enum PackedLogicOperation: UInt8, CaseIterable, Hashable, Sendable {
    /// `destination &= source`.
    case and = 0x54
    /// `destination = ~destination & source`.
    case andn = 0x55
    /// `destination |= source`.
    case or = 0x56
    /// `destination ^= source`.
    case xor = 0x57

    /// The Intel mnemonic at `precision` (`xorps`, `andpd`).
    public func name(_ precision: Precision) -> String {
        "\(self)" + (precision == .single ? "ps" : "pd")
    }
}

extension CodeBuffer {
    // MARK: Scalar arithmetic

    /// `opss`/`opsd destination, source` (`addsd xmm0, xmm1`, `sqrtss xmm0, xmm1`).
    ///
    /// The upper lanes of `destination` are kept; for `sqrt` the result is
    /// the square root of `source`, and `destination` only supplies those lanes.
    /// `min`/`max` return `source` when either operand is NaN.
    public mutating func scalar(_ op: ScalarOperation, _ precision: Precision, _ destination: XMM, _ source: XMM) {
        encode(
            prefix: precision.scalarPrefix, opcode: 0x0F00 | UInt32(op.rawValue),
            reg: destination.rawValue, rm: source.rawValue)
    }

    /// `opss`/`opsd destination, [source]`, a 32- or 64-bit memory operand.
    public mutating func scalar(_ op: ScalarOperation, _ precision: Precision, _ destination: XMM, _ source: Memory) {
        encode(
            prefix: precision.scalarPrefix, opcode: 0x0F00 | UInt32(op.rawValue),
            reg: destination.rawValue, memory: source)
    }

    // MARK: Logic

    /// `andps`/`andnps`/`orps`/`xorps` (or the `pd` forms) between registers.
    public mutating func packedLogic(
        _ op: PackedLogicOperation, _ precision: Precision, _ destination: XMM, _ source: XMM
    ) {
        encode(
            prefix: precision.packedPrefix, opcode: 0x0F00 | UInt32(op.rawValue),
            reg: destination.rawValue, rm: source.rawValue)
    }

    /// The logic operations with a 16-byte, 16-byte-aligned memory operand.
    public mutating func packedLogic(
        _ op: PackedLogicOperation, _ precision: Precision, _ destination: XMM, _ source: Memory
    ) {
        encode(
            prefix: precision.packedPrefix, opcode: 0x0F00 | UInt32(op.rawValue),
            reg: destination.rawValue, memory: source)
    }

    /// `pxor destination, source`: integer xor of whole registers.
    public mutating func pxor(_ destination: XMM, _ source: XMM) {
        encode(prefix: 0x66, opcode: 0x0FEF, reg: destination.rawValue, rm: source.rawValue)
    }

    // MARK: Comparison

    /// `ucomiss`/`ucomisd first, second`: sets ZF, PF, CF (quiet on quiet NaNs).
    public mutating func ucomis(_ precision: Precision, _ first: XMM, _ second: XMM) {
        encode(prefix: precision.packedPrefix, opcode: 0x0F2E, reg: first.rawValue, rm: second.rawValue)
    }

    /// `ucomiss`/`ucomisd first, [second]`.
    public mutating func ucomis(_ precision: Precision, _ first: XMM, _ second: Memory) {
        encode(prefix: precision.packedPrefix, opcode: 0x0F2E, reg: first.rawValue, memory: second)
    }

    /// `comiss`/`comisd first, second`: as `ucomis`, but signals on any NaN.
    public mutating func comis(_ precision: Precision, _ first: XMM, _ second: XMM) {
        encode(prefix: precision.packedPrefix, opcode: 0x0F2F, reg: first.rawValue, rm: second.rawValue)
    }

    /// `comiss`/`comisd first, [second]`.
    public mutating func comis(_ precision: Precision, _ first: XMM, _ second: Memory) {
        encode(prefix: precision.packedPrefix, opcode: 0x0F2F, reg: first.rawValue, memory: second)
    }
}
