// Edits the optimisation passes share: substituting values for temporaries,
// dropping instructions and phis, interning constants.
//
// A pass that removes code first decides, then rebuilds the flat arrays once:
// blocks keep their order and their ranges stay contiguous, so every shape
// listed at the top of Function.swift survives. Nothing here changes the
// control-flow graph.

import KilnIL

/// A map from temporaries to the values that replace them.
struct Substitution {
    /// For each temporary, its replacement, or `.none` to keep it.
    var replacement: [Value]

    init(tempCount: Int) {
        replacement = Array(repeating: .none, count: tempCount)
    }

    /// The value that stands for `value` once every replacement is applied.
    func resolve(_ value: Value) -> Value {
        var current = value
        while current.isTemp, Int(current.index) < replacement.count {
            let next = replacement[Int(current.index)]
            if next.isNone || next == current { break }
            current = next
        }
        return current
    }

    /// Whether some temporary is replaced.
    var isEmpty: Bool { !replacement.contains { !$0.isNone } }
}

extension Function {
    /// Replaces every use of a temporary by its substitute: operands, phi arguments, jump arguments.
    mutating func apply(_ substitution: Substitution) {
        for index in instructions.indices {
            instructions[index].arg0 = substitution.resolve(instructions[index].arg0)
            instructions[index].arg1 = substitution.resolve(instructions[index].arg1)
        }
        for index in phiArguments.indices {
            phiArguments[index].value = substitution.resolve(phiArguments[index].value)
        }
        for index in blocks.indices {
            blocks[index].jump.arg = substitution.resolve(blocks[index].jump.arg)
        }
    }

    /// Drops the instructions and phis the predicates reject, keeping block ranges contiguous.
    /// Phi arguments of dropped phis are dropped too.
    mutating func compact(keepingInstruction keepInstruction: (Int) -> Bool,
                          keepingPhi keepPhi: (Int) -> Bool = { _ in true }) {
        var newInstructions: [Instruction] = []
        newInstructions.reserveCapacity(instructions.count)
        var newPhis: [Phi] = []
        var newArguments: [PhiArgument] = []
        for blockIndex in blocks.indices {
            let block = blocks[blockIndex]
            let phiStart = newPhis.count
            for index in block.phiRange where keepPhi(index) {
                var phi = phis[index]
                let argumentStart = newArguments.count
                newArguments.append(contentsOf: arguments(of: phi))
                phi.argumentStart = UInt32(argumentStart)
                newPhis.append(phi)
            }
            let instructionStart = newInstructions.count
            for index in block.instructionRange where keepInstruction(index) {
                newInstructions.append(instructions[index])
            }
            blocks[blockIndex].phiStart = UInt32(phiStart)
            blocks[blockIndex].phiCount = UInt32(newPhis.count - phiStart)
            blocks[blockIndex].instructionStart = UInt32(instructionStart)
            blocks[blockIndex].instructionCount = UInt32(newInstructions.count - instructionStart)
        }
        instructions = newInstructions
        phis = newPhis
        phiArguments = newArguments
    }

    /// Drops the phi arguments the predicate rejects (phis themselves stay).
    mutating func removePhiArguments(where reject: (_ phiBlock: Int, PhiArgument) -> Bool) {
        var newArguments: [PhiArgument] = []
        newArguments.reserveCapacity(phiArguments.count)
        for blockIndex in blocks.indices {
            for index in blocks[blockIndex].phiRange {
                let start = newArguments.count
                for argument in arguments(of: phis[index]) where !reject(blockIndex, argument) {
                    newArguments.append(argument)
                }
                phis[index].argumentStart = UInt32(start)
                phis[index].argumentCount = UInt32(newArguments.count - start)
            }
        }
        phiArguments = newArguments
    }
}

/// Finds or adds constants of one function without a linear search per lookup.
///
/// A function's constants are distinct (the parser stores each once, and every pass adds
/// them through a pool), so a constant operand's index is its identity. The table is built
/// on the first lookup, with a cheap multiplicative hash (hashing every constant through
/// Swift's `Hasher` in every pass cost more than the passes' own work).
struct ConstantPool {
    /// Open addressing: constant index + 1, 0 for an empty slot.
    private var slots: [UInt32] = []

    init(_ function: Function) {}

    @inline(__always) static func hash(_ constant: Constant) -> Int {
        var value = constant.bits &* 0x9E37_79B9_7F4A_7C15
        value ^= UInt64(constant.symbol.index) &* 0xC2B2_AE3D_27D4_EB4F
        value ^= UInt64(constant.kind.rawValue) | UInt64(constant.floatKind.rawValue) << 2
            | (constant.isThreadLocal ? 16 : 0) | (constant.isExtern ? 32 : 0) | (constant.isUndefined ? 64 : 0)
        return Int(truncatingIfNeeded: value ^ (value >> 31))
    }

    private mutating func rebuild(_ constants: [Constant]) {
        var size = 16
        while size < constants.count * 2 + 2 { size *= 2 }
        slots = [UInt32](repeating: 0, count: size)
        let mask = size - 1
        for (index, constant) in constants.enumerated() {
            var slot = ConstantPool.hash(constant) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = UInt32(index + 1)
        }
    }

    /// The operand for `constant`, appending it to the function's table if new.
    mutating func value(_ constant: Constant, in function: inout Function) -> Value {
        if slots.count < function.constants.count * 2 + 2 { rebuild(function.constants) }
        let mask = slots.count - 1
        var slot = ConstantPool.hash(constant) & mask
        while slots[slot] != 0 {
            let index = slots[slot] - 1
            if function.constants[Int(index)] == constant { return .constant(index) }
            slot = (slot + 1) & mask
        }
        let index = UInt32(function.constants.count)
        function.constants.append(constant)
        slots[slot] = index + 1
        return .constant(index)
    }
}

extension Opcode {
    /// Whether swapping the two operands leaves the result unchanged (integer operations only:
    /// for floats, the NaN that propagates depends on the order).
    var isCommutativeInteger: Bool {
        switch self {
        case .add, .mul, .and, .or, .xor, .ceqw, .cnew, .ceql, .cnel: true
        default: false
        }
    }

    /// The comparison that gives the same result with the operands swapped, for integer comparisons.
    var swappedComparison: Opcode? {
        switch self {
        case .ceqw, .cnew, .ceql, .cnel: self
        case .csltw: .csgtw
        case .csgtw: .csltw
        case .cslew: .csgew
        case .csgew: .cslew
        case .cultw: .cugtw
        case .cugtw: .cultw
        case .culew: .cugew
        case .cugew: .culew
        case .csltl: .csgtl
        case .csgtl: .csltl
        case .cslel: .csgel
        case .csgel: .cslel
        case .cultl: .cugtl
        case .cugtl: .cultl
        case .culel: .cugel
        case .cugel: .culel
        default: nil
        }
    }

    /// Whether the result depends only on the operands: no memory, no side effect, no trap
    /// other than integer division's (an identical earlier division traps first).
    var isPure: Bool {
        switch self {
        case .add, .sub, .neg, .div, .rem, .udiv, .urem, .mul, .and, .or, .xor, .sar, .shr, .shl:
            true
        case .extsb, .extub, .extsh, .extuh, .extsw, .extuw, .exts, .truncd,
             .stosi, .stoui, .dtosi, .dtoui, .swtof, .uwtof, .sltof, .ultof, .cast, .copy:
            true
        default:
            isComparison && self != .ceqr && self != .cner
        }
    }
}

/// Marks on names, reused from function to function: which names a function's temporaries
/// already use. One array indexed by name, stamped per function, so marking costs nothing
/// per name beyond a store (no hashing), and nothing is cleared between functions.
public final class NameMarks {
    private var stamp: [UInt32] = []
    private var generation: UInt32 = 0

    public init() {}

    /// Starts a new function: every name unmarked.
    func begin() { generation &+= 1 }

    func mark(_ name: Name) {
        let index = Int(name.index)
        if index >= stamp.count { stamp.append(contentsOf: repeatElement(0, count: index + 1 - stamp.count + 64)) }
        stamp[index] = generation
    }

    func isMarked(_ name: Name) -> Bool {
        let index = Int(name.index)
        return index < stamp.count && stamp[index] == generation
    }
}

/// Names for new temporaries: `<base>.<n>`, unique among the function's temporaries.
///
/// The name table is the module's, so a name taken by another function is free here; only
/// this function's names count, and the caller keeps a counter per base, so naming costs the
/// same in the thousandth function as in the first.
struct TempNamer {
    private let marks: NameMarks

    init(_ function: Function, marks: NameMarks) {
        self.marks = marks
        marks.begin()
        for temp in function.temps { marks.mark(temp.name) }
    }

    /// A fresh name `<base text><separator><n>` with n counting up from `counter`, which is
    /// left one past the number used.
    mutating func fresh(_ base: Name, separator: String = ".", counter: inout Int, names: inout NameTable) -> Name {
        let text = names.text(base)
        while true {
            let name = names.intern("\(text)\(separator)\(counter)")
            counter += 1
            if !marks.isMarked(name) {
                marks.mark(name)
                return name
            }
        }
    }
}
