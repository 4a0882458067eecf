// Free space of one heap range: the holes between allocated blocks.
//
// Offsets are relative to the start of the range. Holes are kept sorted by
// offset and never touch each other (freeing coalesces with both neighbours),
// so the list is as short as the heap is fragmented. Allocation is first fit,
// which keeps blocks packed towards the bottom of the range; compaction of
// the code heap rebuilds the list from the blocks that survive.

/// The holes of a heap range of `limit` bytes; see the file comment.
struct FreeList {
    /// Sorted, disjoint, non-adjacent holes.
    private(set) var holes: [Range<Int>]
    let limit: Int

    /// A range that is entirely free.
    init(limit: Int) {
        self.limit = limit
        self.holes = limit > 0 ? [0..<limit] : []
    }

    /// Takes `count` bytes at `alignment` (a power of two) from the lowest hole that fits.
    mutating func allocate(_ count: Int, alignment: Int) -> Int? {
        precondition(count > 0 && alignment > 0 && alignment & (alignment - 1) == 0)
        for (index, hole) in holes.enumerated() {
            let start = align(hole.lowerBound, alignment)
            guard start <= hole.upperBound, hole.upperBound - start >= count else { continue }
            let end = start + count
            var replacement: [Range<Int>] = []
            if hole.lowerBound < start { replacement.append(hole.lowerBound..<start) }
            if end < hole.upperBound { replacement.append(end..<hole.upperBound) }
            holes.replaceSubrange(index...index, with: replacement)
            return start
        }
        return nil
    }

    /// Returns a block to the free space; it must be allocated and inside the range.
    mutating func free(_ block: Range<Int>) {
        precondition(block.lowerBound >= 0 && block.upperBound <= limit && !block.isEmpty)
        // The first hole that starts after the block.
        var low = 0, high = holes.count
        while low < high {
            let middle = (low + high) / 2
            if holes[middle].lowerBound < block.lowerBound { low = middle + 1 } else { high = middle }
        }
        precondition(low == holes.count || holes[low].lowerBound >= block.upperBound, "freeing free space")
        precondition(low == 0 || holes[low - 1].upperBound <= block.lowerBound, "freeing free space")
        let joinsPrevious = low > 0 && holes[low - 1].upperBound == block.lowerBound
        let joinsNext = low < holes.count && holes[low].lowerBound == block.upperBound
        switch (joinsPrevious, joinsNext) {
        case (true, true):
            holes[low - 1] = holes[low - 1].lowerBound..<holes[low].upperBound
            holes.remove(at: low)
        case (true, false):
            holes[low - 1] = holes[low - 1].lowerBound..<block.upperBound
        case (false, true):
            holes[low] = block.lowerBound..<holes[low].upperBound
        case (false, false):
            holes.insert(block, at: low)
        }
    }

    /// Takes exactly `block`, which must lie inside one hole (compaction placing a block
    /// where it planned to).
    mutating func take(_ block: Range<Int>) {
        var low = 0, high = holes.count
        while low < high {
            let middle = (low + high) / 2
            if holes[middle].upperBound <= block.lowerBound { low = middle + 1 } else { high = middle }
        }
        precondition(low < holes.count && holes[low].lowerBound <= block.lowerBound
                     && block.upperBound <= holes[low].upperBound, "taking space that is not free")
        let hole = holes[low]
        var replacement: [Range<Int>] = []
        if hole.lowerBound < block.lowerBound { replacement.append(hole.lowerBound..<block.lowerBound) }
        if block.upperBound < hole.upperBound { replacement.append(block.upperBound..<hole.upperBound) }
        holes.replaceSubrange(low...low, with: replacement)
    }

    /// Replaces the free space with everything outside `used` (sorted, disjoint blocks).
    mutating func rebuild(around used: [Range<Int>]) {
        holes = []
        var cursor = 0
        for block in used {
            if block.lowerBound > cursor { holes.append(cursor..<block.lowerBound) }
            cursor = max(cursor, block.upperBound)
        }
        if cursor < limit { holes.append(cursor..<limit) }
    }

    /// The end of the highest allocated byte: everything from here to `limit` is free.
    var top: Int {
        guard let last = holes.last, last.upperBound == limit else { return limit }
        return last.lowerBound
    }

    /// Bytes not allocated.
    var freeBytes: Int { holes.reduce(0) { $0 + $1.count } }
}
