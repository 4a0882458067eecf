// Relocation records: every reference compiled code makes outside itself.
//
// Compiled code never contains an address it cannot find again. Each place
// where a machine-code or data field depends on where something else lives is
// a `Relocation`: the field's offset in its object, how the value is computed,
// and what it points to. Records are plain data: one routine applies them
// (`Relocation.value(target:fieldAddress:)`), `kiln dis` prints them, and crate
// files will store them, so code can be placed, moved and relinked.
//
// Names used across Kiln: a *code object* is one compiled function (bytes plus
// records); a *data object* is one data definition; a *symbol* is the name that
// links them; a *slot* is an 8-byte cell holding an absolute address, through
// which code reaches things that may be far away (C functions, external data).

/// What a relocated field points at.
public enum RelocationTarget: Hashable, Sendable, CustomStringConvertible {
    /// The entry of a function of the same module, by index.
    case function(Int)
    /// The start of a data object of the same module, by index.
    case data(Int)
    /// A symbol defined outside the module (C library or another module), by name.
    case external(String)
    /// The slot holding the address of an external symbol (code does `call [rip + slot]`).
    case slot(String)
    /// A thread-local data object of the module: the field gets its offset in the thread block.
    case threadLocal(Int)

    public var description: String {
        switch self {
        case .function(let index): "function #\(index)"
        case .data(let index): "data #\(index)"
        case .external(let name): "$\(name)"
        case .slot(let name): "slot($\(name))"
        case .threadLocal(let index): "thread data #\(index)"
        }
    }
}

/// How a relocated field's value is computed from the target address S, the addend A and
/// the field's own address P.
public enum RelocationKind: UInt8, Sendable, CustomStringConvertible {
    /// 32-bit signed `S + A - P` (rip-relative operands and rel32 branches; A folds in the
    /// distance from the field to the end of the instruction, usually -4).
    case pcRelative32
    /// 64-bit `S + A` (movabs immediates, pointers in data).
    case absolute64
    /// 32-bit `S + A`, which must fit in 32 bits (`w` data items holding addresses).
    case absolute32
    /// 32-bit signed `S + A`, where S is an offset, not an address (thread-block offsets).
    case offset32

    public var description: String {
        switch self {
        case .pcRelative32: "pc32"
        case .absolute64: "abs64"
        case .absolute32: "abs32"
        case .offset32: "off32"
        }
    }

    /// The size of the field in bytes.
    public var size: Int { self == .absolute64 ? 8 : 4 }
}

/// One relocation record.
public struct Relocation: Hashable, Sendable, CustomStringConvertible {
    /// Byte offset of the field in its object.
    public var offset: UInt32
    public var kind: RelocationKind
    public var target: RelocationTarget
    public var addend: Int64

    public init(offset: UInt32, kind: RelocationKind, target: RelocationTarget, addend: Int64 = 0) {
        self.offset = offset
        self.kind = kind
        self.target = target
        self.addend = addend
    }

    public var description: String {
        let sign = addend < 0 ? "-" : "+"
        return "\(String(offset, radix: 16)): \(kind) \(target) \(sign) \(addend.magnitude)"
    }

    /// Why a relocation could not be applied.
    public enum Failure: Error, Equatable, Sendable {
        /// The value does not fit in the field (a target more than 2 GiB away, say).
        case outOfRange(value: Int64, kind: RelocationKind)
    }

    /// The bytes to store in the field, little-endian, given the target's address (or offset)
    /// and the address where the field lives.
    public func fieldBytes(targetValue: UInt64, fieldAddress: UInt64) throws(Failure) -> [UInt8] {
        switch kind {
        case .pcRelative32:
            let value = Int64(bitPattern: targetValue &+ UInt64(bitPattern: addend) &- fieldAddress)
            guard value >= Int64(Int32.min), value <= Int64(Int32.max) else { throw .outOfRange(value: value, kind: kind) }
            return littleEndian(UInt64(bitPattern: value), count: 4)
        case .absolute64:
            return littleEndian(targetValue &+ UInt64(bitPattern: addend), count: 8)
        case .absolute32:
            let value = targetValue &+ UInt64(bitPattern: addend)
            guard value <= UInt64(UInt32.max) else { throw .outOfRange(value: Int64(bitPattern: value), kind: kind) }
            return littleEndian(value, count: 4)
        case .offset32:
            let value = Int64(bitPattern: targetValue &+ UInt64(bitPattern: addend))
            guard value >= Int64(Int32.min), value <= Int64(Int32.max) else { throw .outOfRange(value: value, kind: kind) }
            return littleEndian(UInt64(bitPattern: value), count: 4)
        }
    }
}

@inline(__always)
func littleEndian(_ value: UInt64, count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}
