// A space: a bump-allocated range of the heap's reservation.
//
// Objects lie packed from `base` up to `top`, each right after the one
// before, so a space can be walked from its base (Cheney's scan does exactly
// that in the space it copies into). Allocation may not pass `limit`, the
// space's capacity; the pages up to it are committed, the rest of the range
// reserved for the space stays inaccessible, so growing never moves anything.
//
// Zero fill: memory handed to allocation must read as zero (a new object's
// fields are the integer 0 and its bytes are 0, and zeroed memory parses as
// a run of empty objects). Every byte at or above `dirtyEnd` is known to be
// zero (pages never written since they were last given back); `prepare`
// writes zeros only below it. A space whose pages are given back after each
// collection therefore never writes zeros at all: the kernel hands out zero
// pages. The nursery keeps its pages and pays for zeroing instead.

/// A bump-allocated range of the reservation; see the file comment. A plain description:
/// the reservation owns the memory.
struct Space {
    /// The first byte; objects start here.
    let base: UInt
    /// Bytes of address space set aside for the space.
    let reserved: Int
    /// The next free byte.
    var top: UInt
    /// Allocation may not pass this address; the pages below it are committed.
    private(set) var limit: UInt
    /// Every byte from here to the end of the reserved range reads as zero.
    private(set) var dirtyEnd: UInt

    init(base: UInt, reserved: Int) {
        self.base = base
        self.reserved = reserved
        top = base
        limit = base
        dirtyEnd = base
    }

    /// One past the last reserved byte.
    var reservedEnd: UInt { base + UInt(reserved) }
    /// Bytes in objects (and handed-out buffers).
    var used: Int { Int(top - base) }
    /// Bytes that may still be allocated before the limit.
    var room: Int { Int(limit - top) }
    /// The capacity: bytes from the base to the limit.
    var capacity: Int { Int(limit - base) }

    /// Large capacities are multiples of a huge page, so commits never split one.
    static let hugePage = 2 << 20

    /// Whether `address` lies in the range reserved for the space.
    @inline(__always)
    func contains(_ address: UInt) -> Bool { address &- base < UInt(reserved) }

    /// Takes `bytes` from the top, or nil when they would pass the limit. The memory is not
    /// zeroed yet: call `prepare` on it before handing it to allocation.
    @inline(__always)
    mutating func take(_ bytes: Int) -> UInt? {
        guard bytes <= Int(limit - top) else { return nil }
        let start = top
        top += UInt(bytes)
        return start
    }

    /// Makes `range` (taken from this space) read as zero, writing zeros only where the space
    /// was written since its pages were last given back.
    mutating func prepare(_ range: Range<UInt>) {
        if range.lowerBound < dirtyEnd {
            let end = min(range.upperBound, dirtyEnd)
            UnsafeMutableRawPointer(bitPattern: range.lowerBound)!
                .initializeMemory(as: UInt8.self, repeating: 0, count: Int(end - range.lowerBound))
        }
        dirtyEnd = max(dirtyEnd, range.upperBound)
    }

    /// Notes that the collector wrote objects up to `top` (Cheney's copies).
    mutating func noteWrittenUpToTop() {
        dirtyEnd = max(dirtyEnd, top)
    }

    /// Sets the capacity to `bytes` (rounded up to a page, and from 16 MiB up to a huge page of
    /// 2 MiB; at most the reservation), committing or giving back pages as needed; false when
    /// the system refuses.
    mutating func setCapacity(_ bytes: Int, in reservation: borrowing Reservation) -> Bool {
        let page = HeapSystem.pageSize
        let bytes = max(bytes, used)
        let wanted = base + UInt(min(alignUp(bytes, bytes >= 16 << 20 ? Self.hugePage : page), reserved))
        if wanted > limit {
            guard reservation.commit(limit..<wanted) else { return false }
        } else if wanted < limit {
            let from = max(wanted, (top + UInt(page) - 1) & ~UInt(page - 1))
            if from < limit { reservation.decommit(from..<limit) }
            dirtyEnd = min(dirtyEnd, from)
        }
        limit = wanted
        return true
    }

    /// Empties the space. With `givingPagesBack`, its pages return to the system (they stay
    /// committed and read as zero); otherwise they keep their contents until `prepare`d.
    mutating func reset(givingPagesBack: Bool, in reservation: borrowing Reservation) {
        if givingPagesBack {
            // Whole pages: the last written page is the space's own up to its end.
            let end = UInt(alignUp(Int(max(dirtyEnd, top)), HeapSystem.pageSize))
            reservation.discard(base..<min(end, limit))
            dirtyEnd = base
        } else {
            dirtyEnd = max(dirtyEnd, top)
        }
        top = base
    }
}
