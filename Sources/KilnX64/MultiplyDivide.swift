// Multiplication, division and the one-operand integer group: imul in its
// two- and three-operand forms, mul/imul/div/idiv on rdx:rax, neg, not,
// inc, dec, and the sign extensions of the accumulator cdq/cqo.
//
// Forms and opcodes:
//   imul r, r/m            0F AF /r
//   imul r, r/m, imm8      6B /r ib     imul r, r/m, imm  69 /r iw/id
//   not neg mul imul div idiv r/m   F6 (byte) / F7, with /2 /3 /4 /5 /6 /7
//   inc dec r/m            FE (byte) / FF, with /0 /1
//   cdq 99, cqo REX.W 99   (sign-extend eax into edx, rax into rdx)
//
// Division contract for the code generator: the dividend is rdx:rax (edx:eax
// at 32 bits). Before `idiv`, sign-extend with `cdq`/`cqo`; before `div`,
// zero rdx (`alu(.xor, .b32, .rdx, .rdx)`). The quotient lands in rax and the
// remainder in rdx; both division forms trap (#DE) on a zero divisor, and
// `idiv` also traps on Int.min / -1. The one-operand `mul`/`imul` leave the
// double-width product in rdx:rax.

/// An operation of the one-operand group F6/F7; the raw value is the /digit.
public enum UnaryOperation: UInt8, CaseIterable, Hashable, Sendable {
    /// Bitwise complement; flags unchanged.
    case not = 2
    /// Two's complement negation.
    case neg = 3
    /// Unsigned multiply of rax by the operand into rdx:rax.
    case mul = 4
    /// Signed multiply of rax by the operand into rdx:rax.
    case imul = 5
    /// Unsigned divide of rdx:rax by the operand.
    case div = 6
    /// Signed divide of rdx:rax by the operand.
    case idiv = 7

    /// The Intel mnemonic.
    public var name: String { String(describing: self) }
}

extension CodeBuffer {
    // MARK: imul

    /// `imul destination, source`: the low `width` bits of the signed product.
    public mutating func imul(_ width: Width, _ destination: GPR, _ source: GPR) {
        precondition(width != .b8, "imul has no two-operand byte form")
        encode(
            prefix: width.sizePrefix, rex: width.sizeREX, opcode: 0x0FAF, reg: destination.rawValue,
            rm: source.rawValue)
    }

    /// `imul destination, [source]`.
    public mutating func imul(_ width: Width, _ destination: GPR, _ source: Memory) {
        precondition(width != .b8, "imul has no two-operand byte form")
        encode(
            prefix: width.sizePrefix, rex: width.sizeREX, opcode: 0x0FAF, reg: destination.rawValue,
            memory: source)
    }

    /// `imul destination, source, imm`: uses the imm8 form (0x6B) when it fits.
    public mutating func imul(_ width: Width, _ destination: GPR, _ source: GPR, imm: Int32) {
        precondition(width != .b8, "imul has no byte form with an immediate")
        let value = Int64(imm)
        checkImmediate(value, width)
        let short = value.fitsInt8
        encode(
            prefix: width.sizePrefix, rex: width.sizeREX, opcode: short ? 0x6B : 0x69,
            reg: destination.rawValue, rm: source.rawValue)
        emitImmediate(value, short ? .b8 : width)
    }

    /// `imul destination, [source], imm`.
    public mutating func imul(_ width: Width, _ destination: GPR, _ source: Memory, imm: Int32) {
        precondition(width != .b8, "imul has no byte form with an immediate")
        let value = Int64(imm)
        checkImmediate(value, width)
        let short = value.fitsInt8
        encode(
            prefix: width.sizePrefix, rex: width.sizeREX, opcode: short ? 0x6B : 0x69,
            reg: destination.rawValue, memory: source,
            immediateSize: short ? 1 : width.immediateBytes)
        emitImmediate(value, short ? .b8 : width)
    }

    // MARK: The F6/F7 group

    /// `op operand` for not/neg/mul/imul/div/idiv on a register.
    public mutating func unary(_ op: UnaryOperation, _ width: Width, _ operand: GPR) {
        encode(
            width, opcode8: 0xF6, opcode: 0xF7, reg: op.rawValue, regIsRegister: false,
            rm: operand.rawValue)
    }

    /// `op [operand]` for not/neg/mul/imul/div/idiv on memory.
    public mutating func unary(_ op: UnaryOperation, _ width: Width, _ operand: Memory) {
        encode(
            width, opcode8: 0xF6, opcode: 0xF7, reg: op.rawValue, regIsRegister: false,
            memory: operand)
    }

    /// `neg operand`.
    public mutating func neg(_ width: Width, _ operand: GPR) { unary(.neg, width, operand) }
    /// `not operand`.
    public mutating func not(_ width: Width, _ operand: GPR) { unary(.not, width, operand) }
    /// `mul operand`: rdx:rax = rax * operand, unsigned.
    public mutating func mul(_ width: Width, _ operand: GPR) { unary(.mul, width, operand) }
    /// `div operand`: rax, rdx = rdx:rax / operand, rdx:rax % operand, unsigned.
    public mutating func div(_ width: Width, _ operand: GPR) { unary(.div, width, operand) }
    /// `idiv operand`: rax, rdx = rdx:rax / operand, rdx:rax % operand, signed.
    public mutating func idiv(_ width: Width, _ operand: GPR) { unary(.idiv, width, operand) }

    // MARK: inc, dec

    /// `inc operand` (FE/FF /0); unlike `add`, leaves the carry flag alone.
    public mutating func inc(_ width: Width, _ operand: GPR) {
        encode(width, opcode8: 0xFE, opcode: 0xFF, reg: 0, regIsRegister: false, rm: operand.rawValue)
    }

    /// `inc [operand]`.
    public mutating func inc(_ width: Width, _ operand: Memory) {
        encode(width, opcode8: 0xFE, opcode: 0xFF, reg: 0, regIsRegister: false, memory: operand)
    }

    /// `dec operand` (FE/FF /1); leaves the carry flag alone.
    public mutating func dec(_ width: Width, _ operand: GPR) {
        encode(width, opcode8: 0xFE, opcode: 0xFF, reg: 1, regIsRegister: false, rm: operand.rawValue)
    }

    /// `dec [operand]`.
    public mutating func dec(_ width: Width, _ operand: Memory) {
        encode(width, opcode8: 0xFE, opcode: 0xFF, reg: 1, regIsRegister: false, memory: operand)
    }

    // MARK: Accumulator sign extension

    /// `cdq`: sign-extends eax into edx, before a 32-bit `idiv`.
    public mutating func cdq() {
        emit(0x99)
    }

    /// `cqo`: sign-extends rax into rdx, before a 64-bit `idiv`.
    public mutating func cqo() {
        emit(0x48)
        emit(0x99)
    }
}
