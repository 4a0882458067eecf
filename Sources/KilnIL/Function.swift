// The IR of one function: flat arrays and integer handles.
//
// A function owns its temporaries, constants, blocks, phis and instructions in
// plain arrays. A block is a range of the instruction array plus a range of the
// phi array and a jump; handles (`Value`, `BlockID`) are indices, so a pass that
// rewrites a function builds new arrays instead of chasing pointers, and a
// function can be copied or dropped without a graph walk.
//
// Shapes the parser produces and every later pass may rely on (QBE's own):
// - Parameters are `par*` instructions at the start of the first block, in order.
// - A call is a run of `arg*` instructions (with `argv` at the variadic marker)
//   immediately followed by its `call`, whose first operand is the callee and
//   whose second is the aggregate type of the result, if any.
// - `blit %a, %b, N` is `blit0 %a, %b` followed by `blit1 N`; Kiln's
//   `rstore %v, %o, %i` is `rstore0 %v, %o` followed by `rstore1 %i`.
// - Every block ends in a jump; a block that fell through in the text gets
//   `jmp` to the block after it.

/// A reference to an operand: nothing, a temporary, a constant, or an aggregate type.
///
/// Packed in 32 bits: the top three bits say which, the rest is the index.
public struct Value: Hashable, Sendable {
    public var raw: UInt32

    @usableFromInline static let kindShift: UInt32 = 29
    @usableFromInline static let indexMask: UInt32 = (1 << 29) - 1

    public enum Kind: UInt32, Sendable {
        case none = 0, temp, constant, type
    }

    @inlinable init(kind: Kind, index: UInt32) { raw = kind.rawValue << Value.kindShift | index }

    /// The absent operand.
    public static let none = Value(kind: .none, index: 0)
    /// A temporary of the function.
    @inlinable public static func temp(_ index: UInt32) -> Value { Value(kind: .temp, index: index) }
    /// A constant of the function's constant table.
    @inlinable public static func constant(_ index: UInt32) -> Value { Value(kind: .constant, index: index) }
    /// An aggregate type of the module (operand of `argc`, `parc` and aggregate calls).
    @inlinable public static func type(_ id: TypeID) -> Value { Value(kind: .type, index: id.index) }

    @inlinable public var kind: Kind { Kind(rawValue: raw >> Value.kindShift)! }
    @inlinable public var index: UInt32 { raw & Value.indexMask }
    @inlinable public var isNone: Bool { raw == 0 }
    @inlinable public var isTemp: Bool { kind == .temp }
    @inlinable public var isConstant: Bool { kind == .constant }
    @inlinable public var typeID: TypeID { TypeID(index: index) }
}

/// A handle to a block of a function.
public struct BlockID: Hashable, Comparable, Sendable {
    public var index: UInt32
    @inlinable public init(index: UInt32) { self.index = index }
    public static func < (a: BlockID, b: BlockID) -> Bool { a.index < b.index }
}

/// A temporary (`%name`): its name and class.
public struct Temp: Sendable {
    public var name: Name
    /// The class, once an assignment fixed it; nil for a temporary only ever used.
    public var cls: Class?
    /// Where it was first mentioned.
    public var location: SourceLocation

    public init(name: Name, cls: Class?, location: SourceLocation) {
        self.name = name
        self.cls = cls
        self.location = location
    }
}

/// A constant operand: integer or float bits, or the address of a symbol plus an offset.
public struct Constant: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// Raw bits (integers and floats).
        case bits
        /// The address of `symbol` plus `bits` as a signed offset.
        case address
    }
    /// How a bits constant was written, so it prints back the same way.
    public enum FloatKind: UInt8, Sendable { case none, single, double }

    public var kind: Kind
    public var bits: UInt64
    public var floatKind: FloatKind
    public var symbol: Name
    /// `thread $x`: the address of the current thread's instance.
    public var isThreadLocal: Bool
    /// `extern $x`: the address taken from outside the program (QBE: through the GOT).
    public var isExtern: Bool
    /// A value no definition reaches (made by SSA construction, never parsed): any bits will
    /// do, so it reads as 0, and a copy of it may be left out.
    public var isUndefined: Bool = false

    public init(bits: UInt64, floatKind: FloatKind = .none) {
        self.kind = .bits
        self.bits = bits
        self.floatKind = floatKind
        self.symbol = Name(index: 0)
        self.isThreadLocal = false
        self.isExtern = false
    }

    /// The undefined value (see `isUndefined`).
    public static var undefined: Constant {
        var constant = Constant(bits: 0)
        constant.isUndefined = true
        return constant
    }

    public init(symbol: Name, offset: Int64 = 0, isThreadLocal: Bool = false, isExtern: Bool = false) {
        self.kind = .address
        self.bits = UInt64(bitPattern: offset)
        self.floatKind = .none
        self.symbol = symbol
        self.isThreadLocal = isThreadLocal
        self.isExtern = isExtern
    }
}

/// One instruction. 20 bytes; the class and sub-word fields say what the result is.
public struct Instruction: Sendable {
    public var op: Opcode
    /// The class of the result (for instructions without result, the class that selects operand types).
    public var cls: Class
    /// For `call`, `par*` and `arg*`: the sub-word type written, if any (nil otherwise).
    public var subWord: SubWord?
    /// The temporary defined, or `.none`.
    public var to: Value
    public var arg0: Value
    public var arg1: Value
    public var location: SourceLocation

    @inlinable
    public init(_ op: Opcode, _ cls: Class, to: Value = .none, _ arg0: Value = .none, _ arg1: Value = .none,
                subWord: SubWord? = nil, at location: SourceLocation) {
        self.op = op
        self.cls = cls
        self.subWord = subWord
        self.to = to
        self.arg0 = arg0
        self.arg1 = arg1
        self.location = location
    }
}

/// A phi node: its result and a range of `Function.phiArguments`.
public struct Phi: Sendable {
    public var to: Value
    public var cls: Class
    public var argumentStart: UInt32
    public var argumentCount: UInt32
    public var location: SourceLocation

    public init(to: Value, cls: Class, argumentStart: UInt32, argumentCount: UInt32, location: SourceLocation) {
        self.to = to
        self.cls = cls
        self.argumentStart = argumentStart
        self.argumentCount = argumentCount
        self.location = location
    }
}

/// One incoming value of a phi.
public struct PhiArgument: Sendable {
    public var block: BlockID
    public var value: Value
    public var location: SourceLocation

    public init(block: BlockID, value: Value, location: SourceLocation) {
        self.block = block
        self.value = value
        self.location = location
    }
}

/// How a block ends.
public struct Jump: Sendable {
    public enum Kind: UInt8, Sendable {
        /// Not yet known (only while parsing).
        case none
        case jmp, jnz
        /// `ret` with no value.
        case ret
        /// `ret VAL`; the function's return type says how the value is passed.
        case retValue
        case hlt
    }
    public var kind: Kind
    public var arg: Value
    public var target: BlockID
    /// The false target of `jnz`.
    public var otherTarget: BlockID
    public var location: SourceLocation

    public init(kind: Kind, arg: Value = .none, target: BlockID = BlockID(index: 0),
                otherTarget: BlockID = BlockID(index: 0), at location: SourceLocation) {
        self.kind = kind
        self.arg = arg
        self.target = target
        self.otherTarget = otherTarget
        self.location = location
    }

    /// The blocks this jump may go to, in order.
    public var successors: [BlockID] {
        switch kind {
        case .jmp: [target]
        case .jnz: [target, otherTarget]
        default: []
        }
    }
}

/// A basic block: a label, ranges of phis and instructions, and a jump.
public struct Block: Sendable {
    public var name: Name
    public var phiStart: UInt32
    public var phiCount: UInt32
    public var instructionStart: UInt32
    public var instructionCount: UInt32
    public var jump: Jump
    /// Whether the label has been defined (labels may be used before their definition).
    public var isDefined: Bool
    /// Whether the text ended this block by falling through to the next label.
    public var fallsThrough: Bool
    public var location: SourceLocation

    /// The range of `Function.instructions` that belongs to this block.
    @inlinable public var instructionRange: Range<Int> {
        Int(instructionStart)..<Int(instructionStart + instructionCount)
    }
    /// The range of `Function.phis` that belongs to this block.
    @inlinable public var phiRange: Range<Int> { Int(phiStart)..<Int(phiStart + phiCount) }
}

/// Linkage flags of a function or data definition.
public struct Linkage: Hashable, Sendable {
    public var isExport = false
    public var isThread = false
    public var isCommon = false
    /// `section "name"`: the raw text between the quotes, escapes undecoded.
    public var section: String?
    /// The optional flags string after the section name.
    public var sectionFlags: String?

    public init() {}
}

/// A function definition.
public struct Function: Sendable {
    public var name: Name
    public var linkage: Linkage
    /// The declared return type; nil when the function returns nothing.
    public var returnType: ABIType?
    public var isVariadic: Bool
    public var temps: [Temp] = []
    public var constants: [Constant] = []
    public var blocks: [Block] = []
    public var phis: [Phi] = []
    public var phiArguments: [PhiArgument] = []
    public var instructions: [Instruction] = []
    public var location: SourceLocation

    public init(name: Name, location: SourceLocation) {
        self.name = name
        self.linkage = Linkage()
        self.returnType = nil
        self.isVariadic = false
        self.location = location
    }

    /// The instructions of a block.
    @inlinable public func instructions(of block: BlockID) -> ArraySlice<Instruction> {
        instructions[blocks[Int(block.index)].instructionRange]
    }

    /// The phis of a block.
    @inlinable public func phis(of block: BlockID) -> ArraySlice<Phi> {
        phis[blocks[Int(block.index)].phiRange]
    }

    /// The incoming values of a phi.
    @inlinable public func arguments(of phi: Phi) -> ArraySlice<PhiArgument> {
        phiArguments[Int(phi.argumentStart)..<Int(phi.argumentStart + phi.argumentCount)]
    }

    /// The predecessors of every block in one flat table: block b's are
    /// `blocks[start[b] ..< start[b + 1]]`, in block order (an edge counted once per jump).
    public func predecessorTable() -> (start: [Int32], blocks: [BlockID]) {
        var start = [Int32](repeating: 0, count: blocks.count + 1)
        for block in blocks {
            switch block.jump.kind {
            case .jmp:
                start[Int(block.jump.target.index)] += 1
            case .jnz:
                start[Int(block.jump.target.index)] += 1
                if block.jump.otherTarget != block.jump.target { start[Int(block.jump.otherTarget.index)] += 1 }
            default:
                break
            }
        }
        // Running sums give each list's end; filling backwards leaves each list's start.
        var total: Int32 = 0
        for index in 0..<blocks.count {
            total += start[index]
            start[index] = total
        }
        start[blocks.count] = total
        var result = [BlockID](repeating: BlockID(index: 0), count: Int(total))
        for index in stride(from: blocks.count - 1, through: 0, by: -1) {
            let jump = blocks[index].jump
            let from = BlockID(index: UInt32(index))
            guard jump.kind == .jmp || jump.kind == .jnz else { continue }
            if jump.kind == .jnz, jump.otherTarget != jump.target {
                start[Int(jump.otherTarget.index)] -= 1
                result[Int(start[Int(jump.otherTarget.index)])] = from
            }
            start[Int(jump.target.index)] -= 1
            result[Int(start[Int(jump.target.index)])] = from
        }
        return (start, result)
    }

    /// The number of predecessors of each block (an edge counted once per jump target).
    public func predecessorCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: blocks.count)
        for block in blocks {
            switch block.jump.kind {
            case .jmp:
                counts[Int(block.jump.target.index)] += 1
            case .jnz:
                counts[Int(block.jump.target.index)] += 1
                if block.jump.otherTarget != block.jump.target { counts[Int(block.jump.otherTarget.index)] += 1 }
            default:
                break
            }
        }
        return counts
    }
}
