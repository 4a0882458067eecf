// The tagged word: what a value of Kiln's IL class `r` holds.
//
// A word whose low bit is 0 is an integer, the value shifted left by one (so
// the all-zero word is the integer 0, and zeroed memory holds only
// integers). A word whose low bit is 1 is a reference: the address of an
// object's header word plus one. Headers are 8-byte aligned, so a reference
// has its three low bits 001 and nothing else is ever mistaken for one.
//
// A reference is only as good as the moment it was read: the collector moves
// objects, and a `Value` held in a Swift variable is not a root. Across
// anything that may collect (an allocation, `ManagedHeap.collect`) keep it in
// a handle (Handles.swift) or another root slot, and read it back after.

/// A tagged word of the class `r`: an integer (low bit 0) or a reference to a managed object
/// (low bit 1). A plain value; it owns nothing and is not a root, so a reference in it is
/// stale after the next collection (see the file comment).
@frozen public struct Value: Hashable, Sendable, CustomStringConvertible {
    /// The word as generated code sees it.
    public var bits: UInt64

    /// The word `bits`, whatever it holds.
    @inlinable @inline(__always)
    public init(bits: UInt64) { self.bits = bits }

    /// The tagged integer for `integer`: `integer << 1`, losing the top bit (as `rtag` does).
    @inlinable @inline(__always)
    public init(integer: Int) { bits = UInt64(bitPattern: Int64(integer)) &<< 1 }

    /// The reference to the object whose header is at `address` (8-byte aligned, not checked).
    @inlinable @inline(__always)
    public init(unsafeObjectAt address: UInt) { bits = UInt64(address) | 1 }

    /// The integer 0, which is also what zeroed memory holds.
    public static let zero = Value(bits: 0)

    /// Whether the word is a reference (low bit 1), as `risref` answers.
    @inlinable @inline(__always)
    public var isReference: Bool { bits & 1 != 0 }

    /// The integer of a tagged integer (arithmetic shift right by one, as `runtag` does); for a
    /// reference, the same shift of its bits, which means nothing.
    @inlinable @inline(__always)
    public var integer: Int { Int(Int64(bitPattern: bits) >> 1) }

    /// The address of the header of the object a reference refers to (the word minus one).
    /// Meaningless for an integer; valid only until the next collection.
    @inlinable @inline(__always)
    public var unsafeObjectAddress: UInt { UInt(bits &- 1) }

    public var description: String {
        isReference ? "ref 0x" + String(bits &- 1, radix: 16) : "int \(integer)"
    }
}
