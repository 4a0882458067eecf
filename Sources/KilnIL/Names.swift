// Interned names.
//
// Every identifier the lexer sees (keywords, opcodes, temporaries, labels,
// globals, type names) becomes a `Name`: a dense integer handle into one
// table owned by the module. Comparing names is comparing integers, and the
// parser keeps per-function maps from names to temporaries and blocks as
// plain arrays indexed by `Name.index`. Keywords are interned first, in a
// fixed order, so recognising one is a range check.
//
// The table is an open-addressing hash over the bytes; lookups from the lexer
// hash the bytes in place and never build a `String`.

/// A handle to an interned identifier (without its sigil).
public struct Name: Hashable, Comparable, Sendable {
    public var index: UInt32
    @inlinable public init(index: UInt32) { self.index = index }
    public static func < (a: Name, b: Name) -> Bool { a.index < b.index }
}

/// The table of interned names: bytes stored once, looked up by hash.
///
/// Owned by a `Module`; names are never removed.
public struct NameTable: Sendable {
    @usableFromInline var bytes: [UInt8] = []
    @usableFromInline var starts: [UInt32] = [0]
    @usableFromInline var slots: [UInt32]
    @usableFromInline var mask: Int

    public init() {
        slots = Array(repeating: UInt32.max, count: 1024)
        mask = 1023
        bytes.reserveCapacity(16 * 1024)
    }

    /// The number of names interned so far.
    public var count: Int { starts.count - 1 }

    /// The text of a name.
    public func text(_ name: Name) -> String {
        let index = Int(name.index)
        return String(decoding: bytes[Int(starts[index])..<Int(starts[index + 1])], as: UTF8.self)
    }

    /// The bytes of a name.
    public func utf8(_ name: Name) -> ArraySlice<UInt8> {
        let index = Int(name.index)
        return bytes[Int(starts[index])..<Int(starts[index + 1])]
    }

    /// Interns a string.
    public mutating func intern(_ text: String) -> Name {
        var copy = text
        return copy.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) @usableFromInline
    static func hash(_ text: UnsafeRawBufferPointer) -> Int {
        // Eight bytes at a time with a multiply-xor mix; names are short and this runs
        // once per name token.
        var value: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(text.count)
        var offset = 0
        while offset + 8 <= text.count {
            let word = text.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            value = (value ^ word) &* 0xFF51_AFD7_ED55_8CCD
            value ^= value >> 32
            offset += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while offset < text.count {
            tail |= UInt64(text[offset]) << shift
            shift += 8
            offset += 1
        }
        value = (value ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        return Int(truncatingIfNeeded: value ^ (value >> 29))
    }

    /// Interns the bytes of a token; returns the existing name when already present.
    public mutating func intern(_ text: UnsafeRawBufferPointer) -> Name {
        var slot = NameTable.hash(text) & mask
        while true {
            let entry = slots[slot]
            if entry == UInt32.max { break }
            if equals(entry, text) { return Name(index: entry) }
            slot = (slot + 1) & mask
        }
        let index = UInt32(count)
        bytes.append(contentsOf: text)
        starts.append(UInt32(bytes.count))
        slots[slot] = index
        if count * 2 > mask { grow() }
        return Name(index: index)
    }

    /// Looks a name up without interning it.
    public func find(_ text: String) -> Name? {
        var copy = text
        return copy.withUTF8 { buffer -> Name? in
            let raw = UnsafeRawBufferPointer(buffer)
            var slot = NameTable.hash(raw) & mask
            while slots[slot] != UInt32.max {
                if equals(slots[slot], raw) { return Name(index: slots[slot]) }
                slot = (slot + 1) & mask
            }
            return nil
        }
    }

    @inline(__always)
    func equals(_ entry: UInt32, _ text: UnsafeRawBufferPointer) -> Bool {
        let start = Int(starts[Int(entry)])
        let length = Int(starts[Int(entry) + 1]) - start
        guard length == text.count else { return false }
        return bytes.withUnsafeBytes { stored in
            // Both ranges are in bounds: `start + length <= bytes.count` by construction.
            length == 0 || sameBytes(stored.baseAddress! + start, text.baseAddress!, length)
        }
    }

    mutating func grow() {
        let newSize = (mask + 1) * 2
        var newSlots = Array(repeating: UInt32.max, count: newSize)
        let newMask = newSize - 1
        bytes.withUnsafeBytes { stored in
            for index in 0..<count {
                let start = Int(starts[index])
                let text = UnsafeRawBufferPointer(rebasing: stored[start..<Int(starts[index + 1])])
                var slot = NameTable.hash(text) & newMask
                while newSlots[slot] != UInt32.max { slot = (slot + 1) & newMask }
                newSlots[slot] = UInt32(index)
            }
        }
        slots = newSlots
        mask = newMask
    }
}

/// Whether two byte ranges of `count` bytes are equal, compared eight bytes at a time.
@inline(__always)
func sameBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var offset = 0
    while offset + 8 <= count {
        if a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) {
            return false
        }
        offset += 8
    }
    while offset < count {
        if a.load(fromByteOffset: offset, as: UInt8.self) != b.load(fromByteOffset: offset, as: UInt8.self) { return false }
        offset += 1
    }
    return true
}
