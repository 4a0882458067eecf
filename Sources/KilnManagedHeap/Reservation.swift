// A range of reserved address space whose pages are made usable on demand.
//
// The heap never moves its reservations: a space grows by committing more of
// the range reserved when the heap was made (so an object's address stays
// valid while its space grows), and gives memory back by discarding or
// decommitting pages. A reservation costs address space only; a committed
// page costs memory once it is written. The owner is `~Copyable` and unmaps
// everything in `deinit`, so no object placed in it may be used after its
// heap is gone. Which pages are committed is the business of the spaces laid
// out in it (Space.swift, LargeObjectSpace.swift).

/// Reserved address space, inaccessible until committed. Owns the mapping; `deinit` unmaps it.
struct Reservation: ~Copyable {
    /// The first byte of the range.
    let base: UInt
    /// Bytes reserved (whole pages).
    let size: Int

    /// Reserves `size` bytes (rounded up to whole pages); nothing is committed.
    init(size: Int) throws(HeapSystemError) {
        let rounded = alignUp(max(size, HeapSystem.pageSize), HeapSystem.pageSize)
        base = UInt(bitPattern: try HeapSystem.reserve(rounded))
        self.size = rounded
    }

    deinit {
        HeapSystem.unmap(UnsafeMutableRawPointer(bitPattern: base)!, size)
    }

    /// One past the last reserved byte.
    var end: UInt { base + UInt(size) }

    /// Whether `address` lies in the reservation.
    @inline(__always)
    func contains(_ address: UInt) -> Bool { address &- base < UInt(size) }

    /// Makes the pages of `range` (page-aligned, inside the reservation) readable and
    /// writable; false when the system refuses.
    func commit(_ range: Range<UInt>) -> Bool {
        precondition(range.lowerBound >= base && range.upperBound <= end, "commit outside the reservation")
        return HeapSystem.commit(UnsafeMutableRawPointer(bitPattern: range.lowerBound)!, range.count)
    }

    /// Gives the pages of `range` (page-aligned) back and makes them inaccessible.
    func decommit(_ range: Range<UInt>) {
        precondition(range.lowerBound >= base && range.upperBound <= end, "decommit outside the reservation")
        HeapSystem.decommit(UnsafeMutableRawPointer(bitPattern: range.lowerBound)!, range.count)
    }

    /// Gives back the pages wholly inside `range`; they stay accessible and read as zero.
    func discard(_ range: Range<UInt>) {
        let page = UInt(HeapSystem.pageSize)
        let start = (range.lowerBound + page - 1) & ~(page - 1), end = range.upperBound & ~(page - 1)
        guard start < end else { return }
        HeapSystem.discard(UnsafeMutableRawPointer(bitPattern: start)!, Int(end - start))
    }
}
