// Memory operands: every addressing form that a ModRM byte (and SIB byte) can
// express in 64-bit mode, and nothing else.
//
// The forms are base + index * scale + displacement (index and scale
// optional), index * scale + displacement with no base, an absolute 32-bit
// address, and RIP-relative displacement (to a number or to a `Label`). rsp
// can never be an index: its SIB encoding means "no index". That rule is kept
// by the type system — an index is an `IndexRegister`, which has no rsp case —
// rather than checked at run time.
//
// The special cases of the encoding (rsp/r12 bases need a SIB byte, rbp/r13
// bases need a displacement, no base needs a disp32) are the encoder's
// business, see Encoding.swift; a `Memory` value only says what to address.

/// The scale factor applied to an index register.
public enum Scale: UInt8, CaseIterable, Hashable, Sendable {
    case x1 = 0, x2, x4, x8

    /// The multiplier: 1, 2, 4 or 8.
    @inlinable public var factor: Int { 1 << Int(rawValue) }
}

/// A register that may serve as an index: any `GPR` except rsp.
///
/// The raw value is the hardware register number, as for `GPR`. Literal names
/// read the same as registers (`index: .rcx`); converting a `GPR` that came
/// from a register allocator goes through the failable `init(_:)`.
public enum IndexRegister: UInt8, CaseIterable, Hashable, Sendable {
    case rax = 0, rcx, rdx, rbx, rbp = 5, rsi, rdi
    case r8, r9, r10, r11, r12, r13, r14, r15

    /// The index view of `register`, or nil for rsp, which cannot be an index.
    @inlinable public init?(_ register: GPR) {
        self.init(rawValue: register.rawValue)
    }

    /// The general-purpose register with the same number.
    @inlinable public var gpr: GPR {
        // Safe: every IndexRegister raw value is also a GPR raw value.
        GPR(rawValue: rawValue).unsafelyUnwrapped
    }
}

/// A memory operand of an x86-64 instruction.
///
/// The displacement of a RIP-relative operand is measured from the end of the
/// instruction, as the processor does. When the instruction is emitted, the
/// buffer records where that 32-bit field landed in
/// `CodeBuffer.lastRIPRelativeSite`, so a caller can turn it into a relocation.
public struct Memory: Hashable, Sendable {
    @usableFromInline enum Form: Hashable, Sendable {
        case base(GPR)
        case baseIndex(GPR, IndexRegister, Scale)
        case index(IndexRegister, Scale)
        case absolute
        case rip
        case ripLabel(Label)
    }

    @usableFromInline let form: Form

    /// The signed 32-bit displacement (for an absolute operand, the address).
    public let displacement: Int32

    @inlinable init(form: Form, displacement: Int32) {
        self.form = form
        self.displacement = displacement
    }

    /// `[base + displacement]`.
    @inlinable public init(base: GPR, displacement: Int32 = 0) {
        self.init(form: .base(base), displacement: displacement)
    }

    /// `[base + index * scale + displacement]`.
    @inlinable
    public init(base: GPR, index: IndexRegister, scale: Scale = .x1, displacement: Int32 = 0) {
        self.init(form: .baseIndex(base, index, scale), displacement: displacement)
    }

    /// `[index * scale + displacement]`, with no base register (always a disp32).
    @inlinable public init(index: IndexRegister, scale: Scale, displacement: Int32 = 0) {
        self.init(form: .index(index, scale), displacement: displacement)
    }

    /// `[address]`: an absolute address in the low (or, sign-extended, the top) 2 GiB.
    @inlinable public static func absolute(_ address: Int32) -> Memory {
        Memory(form: .absolute, displacement: address)
    }

    /// `[rip + displacement]`, the displacement counted from the end of the instruction.
    @inlinable public static func rip(_ displacement: Int32) -> Memory {
        Memory(form: .rip, displacement: displacement)
    }

    /// `[rip + (label + offset)]`: the address `offset` bytes past `label` in the
    /// same buffer, patched when the label is bound.
    @inlinable public static func rip(_ label: Label, offset: Int32 = 0) -> Memory {
        Memory(form: .ripLabel(label), displacement: offset)
    }

    /// The base register, if there is one.
    public var base: GPR? {
        switch form {
        case .base(let base), .baseIndex(let base, _, _): return base
        case .index, .absolute, .rip, .ripLabel: return nil
        }
    }

    /// The index register, if there is one.
    public var index: IndexRegister? {
        switch form {
        case .baseIndex(_, let index, _), .index(let index, _): return index
        case .base, .absolute, .rip, .ripLabel: return nil
        }
    }

    /// The scale of the index (`.x1` when there is no index).
    public var scale: Scale {
        switch form {
        case .baseIndex(_, _, let scale), .index(_, let scale): return scale
        case .base, .absolute, .rip, .ripLabel: return .x1
        }
    }

    /// Whether the address is relative to the instruction pointer.
    public var isRIPRelative: Bool {
        switch form {
        case .rip, .ripLabel: return true
        case .base, .baseIndex, .index, .absolute: return false
        }
    }

    /// The label a RIP-relative operand points into, if it was made from one.
    public var label: Label? {
        if case .ripLabel(let label) = form { return label }
        return nil
    }

    /// The same address moved by `delta` bytes (for the second word of a
    /// two-word stack slot, say). Traps if the displacement overflows 32 bits.
    public func offset(by delta: Int32) -> Memory {
        Memory(form: form, displacement: displacement + delta)
    }
}

/// The position of a 32- or 64-bit field that a linker may have to patch.
///
/// A PC-relative field (rel32 of a call or jump, RIP-relative disp32) holds
/// `target - instructionEnd`; the instruction may end after the field when an
/// immediate follows it. An absolute field (the imm64 of `movabs`) holds the
/// target address itself.
public struct PatchSite: Hashable, Sendable {
    /// Byte offset of the field from the start of the buffer.
    public var offset: Int
    /// Byte offset just past the instruction that holds the field.
    public var instructionEnd: Int

    /// Makes a site from the field offset and the end of its instruction.
    @inlinable public init(offset: Int, instructionEnd: Int) {
        self.offset = offset
        self.instructionEnd = instructionEnd
    }

    /// The addend A of a PC-relative relocation `S + A - P`, with P the field's
    /// address: `-4` for a plain rel32 or disp32, less when an immediate follows.
    @inlinable public var pcRelativeAddend: Int { offset - instructionEnd }
}
