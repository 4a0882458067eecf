// Live intervals: where each register holds a value, as sorted half-open
// ranges of positions, and the positions where it is read or written.
//
// Instructions are numbered in layout order, two positions each: reads happen
// at the even position, writes at the odd one. An interval is a sorted list
// of disjoint ranges; the gaps are lifetime holes, where another interval may
// use the same register.
//
// Storage is flat: every register's ranges lie in one array, register r's at
// `ranges[first[r] ..< first[r + 1]]`, and the same for use positions. They
// are built by one backward walk over the blocks, in which each register's
// ranges arrive from the latest to the earliest: the walk keeps a linked list
// per register (its head is the earliest range so far, so extending or
// cutting it is constant time) and then lays the lists out in order. A part
// of an interval waiting for a location (`Piece`) is a window on that
// array, with its first start and last end clipped: splitting a piece costs
// a binary search and copies nothing.

/// Every register's live ranges and use positions.
struct IntervalStore {
    /// Register r's ranges: `starts[first[r] ..< first[r + 1]]` (and `ends`), sorted.
    var first: [Int32]
    var starts: [Int32]
    var ends: [Int32]
    /// Register r's read and write positions, ascending: `uses[useFirst[r] ..< useFirst[r + 1]]`.
    var useFirst: [Int32]
    var uses: [Int32]

    /// The range indices of register `register`.
    @inline(__always) func rangeIndices(_ register: Int) -> Range<Int> {
        Int(first[register])..<Int(first[register + 1])
    }

    /// Whether the register is live anywhere.
    @inline(__always) func isLive(_ register: Int) -> Bool { first[register] < first[register + 1] }

    /// The first use of `register` at or after `position`.
    func firstUse(of register: Int, atOrAfter position: Int32) -> Int32? {
        var low = Int(useFirst[register]), high = Int(useFirst[register + 1])
        let end = high
        while low < high {
            let middle = (low + high) / 2
            if uses[middle] < position { low = middle + 1 } else { high = middle }
        }
        return low < end ? uses[low] : nil
    }
}

/// Builds an `IntervalStore` during a backward walk: ranges arrive latest first.
struct IntervalBuilder {
    var head: [Int32]
    var nodeStart: [Int32] = [], nodeEnd: [Int32] = [], nodeNext: [Int32] = []
    var useHead: [Int32]
    var usePosition: [Int32] = [], useNext: [Int32] = []

    init(registerCount: Int, expectedRanges: Int) {
        head = [Int32](repeating: -1, count: registerCount)
        useHead = [Int32](repeating: -1, count: registerCount)
        nodeStart.reserveCapacity(expectedRanges)
        nodeEnd.reserveCapacity(expectedRanges)
        nodeNext.reserveCapacity(expectedRanges)
        usePosition.reserveCapacity(expectedRanges)
        useNext.reserveCapacity(expectedRanges)
    }

    /// Adds `start ..< end`, merging it into the earliest range when they touch.
    @inline(__always) mutating func add(_ register: Int, _ start: Int32, _ end: Int32) {
        guard start < end else { return }
        let earliest = Int(head[register])
        if earliest >= 0, end >= nodeStart[earliest] {
            nodeStart[earliest] = min(start, nodeStart[earliest])
            nodeEnd[earliest] = max(end, nodeEnd[earliest])
        } else {
            nodeStart.append(start)
            nodeEnd.append(end)
            nodeNext.append(Int32(earliest))
            head[register] = Int32(nodeStart.count - 1)
        }
    }

    /// Cuts the earliest range to start at `position` (a definition).
    @inline(__always) mutating func define(_ register: Int, at position: Int32) {
        let earliest = Int(head[register])
        if earliest < 0 || nodeStart[earliest] > position {
            nodeStart.append(position)
            nodeEnd.append(position + 1)
            nodeNext.append(Int32(earliest))
            head[register] = Int32(nodeStart.count - 1)
        } else {
            nodeStart[earliest] = position
        }
    }

    /// Records a use position (they arrive in decreasing order).
    @inline(__always) mutating func use(_ register: Int, at position: Int32) {
        usePosition.append(position)
        useNext.append(useHead[register])
        useHead[register] = Int32(usePosition.count - 1)
    }

    /// The lists laid out in order.
    func finish() -> IntervalStore {
        let count = head.count
        var first = [Int32](repeating: 0, count: count + 1)
        var starts = [Int32](), ends = [Int32]()
        starts.reserveCapacity(nodeStart.count)
        ends.reserveCapacity(nodeStart.count)
        var useFirst = [Int32](repeating: 0, count: count + 1)
        var uses = [Int32]()
        uses.reserveCapacity(usePosition.count)
        for register in 0..<count {
            first[register] = Int32(starts.count)
            var node = Int(head[register])
            while node >= 0 {
                starts.append(nodeStart[node])
                ends.append(nodeEnd[node])
                node = Int(nodeNext[node])
            }
            useFirst[register] = Int32(uses.count)
            node = Int(useHead[register])
            while node >= 0 {
                uses.append(usePosition[node])
                node = Int(useNext[node])
            }
        }
        first[count] = Int32(starts.count)
        useFirst[count] = Int32(uses.count)
        return IntervalStore(first: first, starts: starts, ends: ends, useFirst: useFirst, uses: uses)
    }
}

/// A part of a register's interval: ranges `low ..< high` of the store, the first starting at
/// `start` and the last ending at `end` (both may be clipped by splits).
struct Piece {
    var register: Reg
    var low: Int32
    var high: Int32
    var start: Int32
    var end: Int32

    var isEmpty: Bool { low >= high }

    @inline(__always) func rangeStart(_ index: Int, _ store: IntervalStore) -> Int32 {
        index == Int(low) ? start : store.starts[index]
    }

    @inline(__always) func rangeEnd(_ index: Int, _ store: IntervalStore) -> Int32 {
        index == Int(high) - 1 ? end : store.ends[index]
    }

    /// The whole interval of `register`.
    static func whole(_ register: Reg, _ store: IntervalStore) -> Piece {
        let indices = store.rangeIndices(Int(register))
        return Piece(register: register, low: Int32(indices.lowerBound), high: Int32(indices.upperBound),
                     start: store.starts[indices.lowerBound], end: store.ends[indices.upperBound - 1])
    }

    /// The index of the first range that ends after `position`, searching from `from`.
    @inline(__always) func firstRange(endingAfter position: Int32, from: Int, _ store: IntervalStore) -> Int {
        var low = from, high = Int(self.high)
        while low < high {
            let middle = (low + high) / 2
            if rangeEnd(middle, store) <= position { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Where the piece's state changes next after `position`: nil when it has ended there;
    /// else whether it covers `position` and the end of that range or the start of the next.
    func state(at position: Int32, _ store: IntervalStore) -> (covers: Bool, next: Int32)? {
        guard end > position else { return nil }
        let index = firstRange(endingAfter: position, from: Int(low), store)
        let rangeStart = rangeStart(index, store)
        return rangeStart <= position ? (true, rangeEnd(index, store)) : (false, rangeStart)
    }

    func covers(_ position: Int32, _ store: IntervalStore) -> Bool {
        state(at: position, store)?.covers ?? false
    }

    /// The part before `position` and the part from it on.
    func split(at position: Int32, _ store: IntervalStore) -> (head: Piece, tail: Piece) {
        let index = firstRange(endingAfter: position, from: Int(low), store)
        var head = self, tail = self
        if index >= Int(high) {
            tail.low = high
            return (head, tail)
        }
        let rangeStart = rangeStart(index, store)
        if rangeStart < position {
            head.high = Int32(index + 1)
            head.end = position
            tail.low = Int32(index)
            tail.start = position
        } else {
            head.high = Int32(index)
            if index > Int(low) { head.end = rangeEnd(index - 1, store) }
            tail.low = Int32(index)
            tail.start = rangeStart
        }
        return (head, tail)
    }

    /// The first position both pieces cover, if any. The walk over both lists of ranges skips,
    /// by binary search, the ranges that end before the other starts: fixed intervals of
    /// registers that calls clobber have a range per call.
    func firstIntersection(with other: Piece, _ store: IntervalStore) -> Int32? {
        guard !isEmpty, !other.isEmpty, start < other.end, other.start < end else { return nil }
        var i = firstRange(endingAfter: other.start, from: Int(low), store)
        var j = other.firstRange(endingAfter: start, from: Int(other.low), store)
        while i < Int(high) && j < Int(other.high) {
            let aStart = rangeStart(i, store), aEnd = rangeEnd(i, store)
            let bStart = other.rangeStart(j, store), bEnd = other.rangeEnd(j, store)
            let from = max(aStart, bStart)
            if from < min(aEnd, bEnd) { return from }
            if aEnd <= bEnd {
                i = aEnd <= bStart ? firstRange(endingAfter: bStart, from: i + 1, store) : i + 1
            } else {
                j = bEnd <= aStart ? other.firstRange(endingAfter: aStart, from: j + 1, store) : j + 1
            }
        }
        return nil
    }
}
