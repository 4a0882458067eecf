// The header word in front of every managed object.
//
// The layout is the one of the fourth design note, widened to 64 bits:
//
//   bit 63     R  raw: the payload is bytes, never scanned for references
//   bit 62     F  forwarded: the collector copied the object; bits 0-47 hold
//                 the address of the copy's header (the old copy is garbage)
//   bit 61     C  code: a closure; field 0 holds an untagged machine address
//                 into the code heap instead of a tagged word (never set
//                 together with R; the object has at least one field)
//   bit 60     M  marked: set on a large object while a collection runs,
//                 clear at every other time
//   bits 48-59    zero
//   bits 0-47     the size: the number of fields of a tagged object, the
//                 number of bytes of a raw one (a byte string's exact length;
//                 there is no terminator)
//
// The payload follows the header: `count` tagged words, or `count` bytes
// rounded up to a whole word with zeros. An object therefore occupies
// 8 + 8 * count bytes (tagged) or 8 + align8(count) bytes (raw), always a
// multiple of 8, at least 8 (an object with no fields is a header alone).
// A plain tagged object's header is its field count, so `rlen` of it is one
// load and a checked field access compares the index with the header.

/// The header word of a managed object (see the file comment for its bits). A plain value.
@frozen public struct ObjectHeader: Hashable, Sendable, CustomStringConvertible {
    /// The word as it is stored in front of the object.
    public var bits: UInt64

    /// Bit 63: the payload is raw bytes.
    public static let rawBit: UInt64 = 1 << 63
    /// Bit 62: the object was copied; the low 48 bits are the copy's header address.
    public static let forwardedBit: UInt64 = 1 << 62
    /// Bit 61: field 0 is an untagged code address (a closure).
    public static let codeBit: UInt64 = 1 << 61
    /// Bit 60: a large object reached by the collection in progress.
    public static let markBit: UInt64 = 1 << 60
    /// Bits 0-47: the size, or the forwarding address.
    public static let sizeMask: UInt64 = (1 << 48) - 1
    /// Bits that must be zero in every header.
    public static let reservedMask: UInt64 = ((1 << 60) - 1) & ~sizeMask

    /// The largest number of fields or bytes an object may have.
    public static let maximumCount = Int(sizeMask)

    /// The header word `bits`, whatever it holds.
    @inlinable @inline(__always)
    public init(bits: UInt64) { self.bits = bits }

    /// The header of a tagged object of `fields` fields (0 ... `maximumCount`, not checked).
    @inlinable @inline(__always)
    public static func tagged(fields: Int) -> ObjectHeader { ObjectHeader(bits: UInt64(fields)) }

    /// The header of a raw object of `bytes` bytes (0 ... `maximumCount`, not checked).
    @inlinable @inline(__always)
    public static func raw(bytes: Int) -> ObjectHeader { ObjectHeader(bits: rawBit | UInt64(bytes)) }

    /// The header of a closure of `fields` fields, field 0 being its code address
    /// (1 ... `maximumCount`, not checked).
    @inlinable @inline(__always)
    public static func closure(fields: Int) -> ObjectHeader { ObjectHeader(bits: codeBit | UInt64(fields)) }

    /// The header of an object forwarded to the copy whose header is at `address`.
    @inlinable @inline(__always)
    public static func forwarded(to address: UInt) -> ObjectHeader { ObjectHeader(bits: forwardedBit | UInt64(address)) }

    @inlinable @inline(__always) public var isRaw: Bool { bits & Self.rawBit != 0 }
    @inlinable @inline(__always) public var isForwarded: Bool { bits & Self.forwardedBit != 0 }
    @inlinable @inline(__always) public var hasCode: Bool { bits & Self.codeBit != 0 }
    @inlinable @inline(__always) public var isMarked: Bool { bits & Self.markBit != 0 }

    /// The number of fields (tagged) or bytes (raw); meaningless once forwarded.
    @inlinable @inline(__always)
    public var count: Int { Int(bits & Self.sizeMask) }

    /// The address of the copy's header, once forwarded.
    @inlinable @inline(__always)
    public var forwardingAddress: UInt { UInt(bits & Self.sizeMask) }

    /// The bytes the object occupies, header included: 8 + 8 * count, or 8 + align8(count)
    /// for a raw object. Meaningless once forwarded.
    @inlinable @inline(__always)
    public var objectBytes: Int {
        let count = bits & Self.sizeMask
        let words = bits & Self.rawBit != 0 ? (count &+ 7) &>> 3 : count
        return Int(truncatingIfNeeded: (words &+ 1) &<< 3)
    }

    /// What is wrong with this word as the header of a live object outside a collection, or nil.
    public var problem: String? {
        if bits & Self.reservedMask != 0 { return "reserved header bits set" }
        if isForwarded { return "forwarded header outside a collection" }
        if isMarked { return "mark bit set outside a collection" }
        if hasCode && isRaw { return "raw object with a code field" }
        if hasCode && count == 0 { return "closure without a code field" }
        return nil
    }

    /// The bytes an object of `count` fields (or bytes, when `raw`) occupies.
    @inlinable @inline(__always)
    public static func objectBytes(count: Int, raw: Bool) -> Int {
        raw ? 8 + ((count + 7) & ~7) : 8 + 8 * count
    }

    public var description: String {
        if isForwarded { return "forwarded to 0x" + String(forwardingAddress, radix: 16) }
        let kind = isRaw ? "raw \(count) bytes" : hasCode ? "closure of \(count) fields" : "\(count) fields"
        return isMarked ? kind + ", marked" : kind
    }
}
