// Relocation records: every reference compiled code makes outside itself.
//
// Compiled code never contains an address it cannot find again. Each place
// where a machine-code or data field depends on where something else lives is
// a `Relocation`: the field's offset in its object, how the value is computed,
// and what it points to. Records are plain data: one routine applies them
// (`Relocation.fieldValue` and `apply`), `kiln dis` prints them, and crate
// files will store them, so code can be placed, moved and relinked.
//
// Names used across Kiln: a *code object* is one compiled function (bytes plus
// records); a *data object* is one data definition; a *symbol* is the name that
// links them; a *slot* is an 8-byte cell of a crate's TOC holding an absolute
// address, through which code reaches things outside its crate (other crates,
// C functions, external data); a *stub* is the never-moving address that stands
// for a function wherever its address is used as a value.

/// What a relocated field points at.
///
/// The raw values name the kinds in crate files; never renumber them.
public enum RelocationTarget: Hashable, Sendable, CustomStringConvertible {
    /// The entry of a function of the same crate, by index: direct calls (`call rel32`).
    /// Only code may refer to an entry, and only pc-relative: the entry moves when the code
    /// heap compacts, and the records that point at it are applied again.
    case function(Int)
    /// The callback stub of a function of the same crate, by index: the function's address
    /// as a value (stored, passed to C, compared). A stub never moves and always jumps to the
    /// current version of the function.
    case stub(Int)
    /// The start of a data object of the same crate, by index.
    case data(Int)
    /// The stable address of a symbol defined outside the crate (another crate's data or
    /// function stub, or a C symbol), bound when the crate is linked.
    case external(String)
    /// The TOC slot through which code calls a symbol defined outside the crate
    /// (`call [rip + slot]`); the slot starts at a resolver stub and is bound on first call.
    case callSlot(String)
    /// The TOC slot holding the stable address of a symbol defined outside the crate
    /// (`mov reg, [rip + slot]`), bound when the crate is linked.
    case addressSlot(String)
    /// A thread-local data object of the crate: the field gets its offset in the thread block.
    case threadLocal(Int)

    public var description: String {
        switch self {
        case .function(let index): "function #\(index)"
        case .stub(let index): "stub of function #\(index)"
        case .data(let index): "data #\(index)"
        case .external(let name): "$\(name)"
        case .callSlot(let name): "call slot($\(name))"
        case .addressSlot(let name): "address slot($\(name))"
        case .threadLocal(let index): "thread data #\(index)"
        }
    }

    /// The imported symbol's name, for targets outside the crate.
    public var importedName: String? {
        switch self {
        case .external(let name), .callSlot(let name), .addressSlot(let name): name
        case .function, .stub, .data, .threadLocal: nil
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

    /// The value to store in the field (its low `kind.size` bytes, little-endian), given the
    /// target's address (or offset) and the address where the field lives.
    @inlinable
    public func fieldValue(targetValue: UInt64, fieldAddress: UInt64) throws(Failure) -> UInt64 {
        switch kind {
        case .pcRelative32:
            let value = Int64(bitPattern: targetValue &+ UInt64(bitPattern: addend) &- fieldAddress)
            guard value >= Int64(Int32.min), value <= Int64(Int32.max) else { throw .outOfRange(value: value, kind: kind) }
            return UInt64(bitPattern: value)
        case .absolute64:
            return targetValue &+ UInt64(bitPattern: addend)
        case .absolute32:
            let value = targetValue &+ UInt64(bitPattern: addend)
            guard value <= UInt64(UInt32.max) else { throw .outOfRange(value: Int64(bitPattern: value), kind: kind) }
            return value
        case .offset32:
            let value = Int64(bitPattern: targetValue &+ UInt64(bitPattern: addend))
            guard value >= Int64(Int32.min), value <= Int64(Int32.max) else { throw .outOfRange(value: value, kind: kind) }
            return UInt64(bitPattern: value)
        }
    }

    /// Computes the field (see `fieldValue`) and stores it at `field`, unaligned.
    @inlinable
    public func apply(targetValue: UInt64, fieldAddress: UInt64, writingTo field: UnsafeMutableRawPointer) throws(Failure) {
        let value = try fieldValue(targetValue: targetValue, fieldAddress: fieldAddress)
        if kind.size == 8 {
            field.storeBytes(of: value, as: UInt64.self)
        } else {
            field.storeBytes(of: UInt32(truncatingIfNeeded: value), as: UInt32.self)
        }
    }

}

/// A symbol name as it is outside the IL: the quotes of a quoted name dropped
/// (`"foo.bar"` → `foo.bar`). Names without quotes (nearly all) come back as they are.
public func unquoted(_ name: String) -> String {
    let bytes = name.utf8
    guard bytes.first == 0x22, bytes.last == 0x22, bytes.count >= 2 else { return name }
    return String(name.dropFirst().dropLast())
}
