// Registers, operand widths and condition codes, named as in the Intel manual.
//
// A register's raw value is its hardware number (0-15): the low three bits go
// into a ModRM or SIB field or the low bits of an opcode, the fourth bit into
// REX.R, REX.X or REX.B. Everything else in the encoder derives its bits from
// these raw values, so they must never be renumbered.
//
// The encoder never names the legacy high-byte registers ah, ch, dh and bh.
// With a REX prefix present, byte-register numbers 4-7 mean spl, bpl, sil and
// dil; the encoder adds an empty REX (0x40) whenever a byte operand uses one
// of them, so `GPR.rsp` at `.b8` is always spl.

/// A general-purpose register; the raw value is the hardware register number.
///
/// The register is named by its 64-bit name. The same number reaches the
/// narrower views (`eax`, `ax`, `al`) when an instruction uses a narrower
/// `Width`.
public enum GPR: UInt8, CaseIterable, Hashable, Sendable {
    case rax = 0, rcx, rdx, rbx, rsp, rbp, rsi, rdi
    case r8, r9, r10, r11, r12, r13, r14, r15

    /// The low three bits of the hardware number: the ModRM, SIB or opcode field.
    @inlinable var low3: UInt8 { rawValue & 7 }

    /// Whether the register is r8-r15, which need a REX extension bit.
    @inlinable public var isExtended: Bool { rawValue >= 8 }

    /// The Intel name of this register viewed at `width` (`rax`, `eax`, `ax`, `al`).
    public func name(_ width: Width) -> String {
        let index = Int(rawValue)
        switch width {
        case .b64: return GPR.names64[index]
        case .b32: return GPR.names32[index]
        case .b16: return GPR.names16[index]
        case .b8: return GPR.names8[index]
        }
    }

    private static let names64 = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    ]
    private static let names32 = [
        "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
        "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d",
    ]
    private static let names16 = [
        "ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
        "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w",
    ]
    private static let names8 = [
        "al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil",
        "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b",
    ]
}

/// An SSE register; the raw value is the hardware register number.
public enum XMM: UInt8, CaseIterable, Hashable, Sendable {
    case xmm0 = 0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7
    case xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15

    /// The Intel name, `xmm0` to `xmm15`.
    public var name: String { "xmm\(rawValue)" }
}

/// The width of an integer operation: QBE's `w` is `.b32` and `l` is `.b64`.
///
/// Widths are spelled in bits so that nothing depends on the assembler dialect
/// (AT&T's `l` suffix means 32 bits, QBE's `l` class means 64).
public enum Width: UInt8, CaseIterable, Hashable, Sendable {
    case b8, b16, b32, b64

    /// The width in bits: 8, 16, 32 or 64.
    @inlinable public var bits: Int { 8 << Int(rawValue) }

    /// The width in bytes: 1, 2, 4 or 8.
    @inlinable public var bytes: Int { 1 << Int(rawValue) }
}

/// A condition code, with the Intel `cc` number as raw value.
///
/// The raw value is added to the base opcode of `jcc` (0x70, 0x0F 0x80),
/// `setcc` (0x0F 0x90) and `cmovcc` (0x0F 0x40). Unsigned comparisons use
/// `b ae be a`; signed ones use `l ge le g`.
public enum Condition: UInt8, CaseIterable, Hashable, Sendable {
    /// Overflow.
    case o = 0
    /// No overflow.
    case no
    /// Below (unsigned less than; carry set).
    case b
    /// Above or equal (unsigned; carry clear).
    case ae
    /// Equal (zero set).
    case e
    /// Not equal (zero clear).
    case ne
    /// Below or equal (unsigned).
    case be
    /// Above (unsigned greater than).
    case a
    /// Sign set.
    case s
    /// Sign clear.
    case ns
    /// Parity set; after `ucomiss`/`ucomisd`, the operands were unordered.
    case p
    /// Parity clear; after `ucomiss`/`ucomisd`, the operands were ordered.
    case np
    /// Less than (signed).
    case l
    /// Greater than or equal (signed).
    case ge
    /// Less than or equal (signed).
    case le
    /// Greater than (signed).
    case g

    /// The condition that holds exactly when this one does not.
    ///
    /// Intel numbers conditions in complementary pairs, so this flips bit 0.
    @inlinable public var negated: Condition {
        // Safe: every value 0-15 is a case, and flipping bit 0 stays in range.
        Condition(rawValue: rawValue ^ 1).unsafelyUnwrapped
    }

    /// The Intel suffix of the condition, as in `j\(name)` or `set\(name)`.
    public var name: String { String(describing: self) }
}
