// The large-object space: objects too big to copy, each on pages of its own.
//
// An object of `largeObjectBytes` or more gets a run of whole pages in a
// reservation of its own, with its header at the start of the first page
// (so its reference is that page's address plus one). It never moves.
// Fresh pages read as zero, and a dead object's pages are given back, so no
// large object is ever zeroed by hand.
//
// Collection marks instead of copying: the first time a full collection
// reaches a large object it sets the header's mark bit and pushes the object
// on the worklist (Collector.swift), whose fields the collector then scans
// like a copied object's; `sweep` frees what stayed unmarked and clears the
// marks. Minor
// collections leave large objects alone (they count as old; the write barrier
// records young references stored into them).
//
// Bookkeeping never allocates while a collection runs: `objects` (every
// object's header address) and `freeRuns` have room for the worst case
// reserved at allocation time, and the worklist is sized for every object.
// `starts` has one bit per page, set where an object starts: it is how the
// verifier tells a reference to a large object from a stray pointer, and
// `sweep` walks it in address order to rebuild the free runs (maximal gaps
// between survivors), so runs merge without any search.

/// The large-object space; see the file comment. Owns its reservation and side tables.
struct LargeObjectSpace: ~Copyable {
    let reservation: Reservation
    /// One bit per page: an object's header is at the start of that page.
    let starts: UnsafeMutablePointer<UInt64>
    let startWords: Int
    /// Header addresses of every object, in no particular order between collections.
    var objects: [UInt] = []
    /// Runs of free pages below `top` (page index, page count), in address order.
    var freeRuns: [(start: Int, count: Int)] = []
    /// Pages from `top` to the end of the reservation have never been used since the last sweep.
    var top = 0
    /// Room for every object: where a collection keeps the marked objects it has still to scan.
    private(set) var worklist: UnsafeMutablePointer<UInt>
    private(set) var worklistCapacity: Int
    /// Bytes of pages that objects occupy.
    private(set) var committedBytes = 0

    init(reservedBytes: Int) throws(HeapSystemError) {
        let size = alignUp(reservedBytes, HeapSystem.pageSize)
        startWords = (size / HeapSystem.pageSize + 63) / 64
        let starts = try HeapSystem.mapZeroed(startWords * 8)
        do {
            reservation = try Reservation(size: size)
        } catch {
            HeapSystem.unmap(starts, startWords * 8)
            throw error
        }
        self.starts = starts.bindMemory(to: UInt64.self, capacity: startWords)
        worklistCapacity = 64
        worklist = .allocate(capacity: worklistCapacity)
    }

    deinit {
        HeapSystem.unmap(UnsafeMutableRawPointer(starts), startWords * 8)
        worklist.deallocate()
    }

    static var pageSize: Int { HeapSystem.pageSize }

    /// Whether `address` lies in the space's reservation.
    @inline(__always)
    func contains(_ address: UInt) -> Bool { reservation.contains(address) }

    /// Whether an object's header is at `address`.
    func isObject(at address: UInt) -> Bool {
        guard contains(address), (address - reservation.base) % UInt(Self.pageSize) == 0 else { return false }
        let page = Int((address - reservation.base) / UInt(Self.pageSize))
        return starts[page >> 6] & (1 << UInt64(page & 63)) != 0
    }

    private func setStart(_ page: Int, _ on: Bool) {
        if on { starts[page >> 6] |= 1 << UInt64(page & 63) } else { starts[page >> 6] &= ~(1 << UInt64(page & 63)) }
    }

    private static func pages(for bytes: Int) -> Int { (bytes + pageSize - 1) / pageSize }

    /// A zeroed run of pages for an object of `bytes` bytes with `header` written, or nil when
    /// the reservation has no such run or the system refuses the pages. Allocates (Swift arrays
    /// grow here, never during a collection).
    mutating func allocate(bytes: Int, header: ObjectHeader) -> UInt? {
        let count = Self.pages(for: bytes)
        // Room for this object, and for the free runs and worklist entries a sweep may need.
        objects.reserveCapacity(objects.count + 1)
        freeRuns.reserveCapacity(objects.count + 2)
        if worklistCapacity < objects.count + 1 {
            let capacity = max(worklistCapacity * 2, objects.count + 1)
            worklist.deallocate()
            worklist = .allocate(capacity: capacity)
            worklistCapacity = capacity
        }
        var start: Int
        if let index = freeRuns.firstIndex(where: { $0.count >= count }) {
            start = freeRuns[index].start
            if freeRuns[index].count == count {
                freeRuns.remove(at: index)
            } else {
                freeRuns[index] = (start + count, freeRuns[index].count - count)
            }
        } else {
            guard count <= reservation.size / Self.pageSize - top else { return nil }
            start = top
            top += count
        }
        guard reservation.commit(address(ofPage: start)..<address(ofPage: start + count)) else {
            release(start: start, count: count)
            return nil
        }
        setStart(start, true)
        let address = address(ofPage: start)
        UnsafeMutablePointer<UInt64>(bitPattern: address)!.pointee = header.bits
        objects.append(address)
        committedBytes += count * Self.pageSize
        return address
    }

    private func address(ofPage page: Int) -> UInt { reservation.base + UInt(page * Self.pageSize) }

    /// Puts back a run that could not be committed.
    private mutating func release(start: Int, count: Int) {
        if start + count == top {
            top = start
        } else {
            let index = freeRuns.firstIndex { $0.start > start } ?? freeRuns.count
            freeRuns.insert((start, count), at: index)
        }
    }

    /// Frees every unmarked object, clears the marks and rebuilds the free runs; returns the
    /// bytes of the survivors. Allocates nothing.
    mutating func sweep() -> Int {
        let pageSize = Self.pageSize
        var survivors = 0
        for index in objects.indices {
            let address = objects[index]
            let header = UnsafeMutablePointer<UInt64>(bitPattern: address)!
            let count = Self.pages(for: ObjectHeader(bits: header.pointee & ~ObjectHeader.markBit).objectBytes)
            if header.pointee & ObjectHeader.markBit != 0 {
                header.pointee &= ~ObjectHeader.markBit
                survivors += 1
            } else {
                let page = Int((address - reservation.base) / UInt(pageSize))
                setStart(page, false)
                reservation.decommit(address..<address + UInt(count * pageSize))
                committedBytes -= count * pageSize
            }
        }
        // The survivors in address order, from the start bits; the gaps between them are free.
        objects.removeAll(keepingCapacity: true)
        freeRuns.removeAll(keepingCapacity: true)
        var liveBytes = 0
        var next = 0
        for word in 0..<((top + 63) / 64) {
            var bits = starts[word]
            while bits != 0 {
                let page = word * 64 + bits.trailingZeroBitCount
                bits &= bits - 1
                let address = address(ofPage: page)
                let bytes = ObjectHeader(bits: UnsafeMutablePointer<UInt64>(bitPattern: address)!.pointee).objectBytes
                if page > next { freeRuns.append((next, page - next)) }
                objects.append(address)
                liveBytes += bytes
                next = page + Self.pages(for: bytes)
            }
        }
        precondition(objects.count == survivors, "large-object start bits disagree with the object list")
        top = next
        return liveBytes
    }
}
