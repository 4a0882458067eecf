// A fixed-size set of small integers, one bit each.
//
// Passes keep one per block (live temporaries, dominance frontiers) and
// combine them word by word, so it is a plain array of words.

/// A set of integers in `0..<capacity`.
public struct BitSet: Equatable, Sendable {
    @usableFromInline var words: [UInt64]

    public init(capacity: Int) {
        words = Array(repeating: 0, count: (capacity + 63) / 64)
    }

    @inlinable public func contains(_ element: Int) -> Bool {
        words[element >> 6] & (1 << UInt64(element & 63)) != 0
    }

    @inlinable public mutating func insert(_ element: Int) {
        words[element >> 6] |= 1 << UInt64(element & 63)
    }

    @inlinable public mutating func remove(_ element: Int) {
        words[element >> 6] &= ~(1 << UInt64(element & 63))
    }

    /// Adds every element of `other`; returns whether anything was added.
    @inlinable @discardableResult
    public mutating func formUnion(_ other: BitSet) -> Bool {
        var changed = false
        for index in words.indices {
            let merged = words[index] | other.words[index]
            changed = changed || merged != words[index]
            words[index] = merged
        }
        return changed
    }

    /// Removes every element of `other`.
    @inlinable public mutating func subtract(_ other: BitSet) {
        for index in words.indices { words[index] &= ~other.words[index] }
    }

    /// `self = (self - removed) ∪ added`, word by word.
    @inlinable public mutating func assign(_ base: BitSet, minus removed: BitSet, plus added: BitSet) {
        for index in words.indices {
            words[index] = (base.words[index] & ~removed.words[index]) | added.words[index]
        }
    }

    /// The elements in increasing order.
    public var elements: [Int] {
        var result: [Int] = []
        for (index, word) in words.enumerated() {
            var bits = word
            while bits != 0 {
                result.append(index * 64 + bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
        return result
    }
}
