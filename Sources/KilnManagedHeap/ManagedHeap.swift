// The managed heap: where objects of the IL's `r` class live.
//
// Layout. One reservation holds three ranges side by side:
//
//     [ old semispace A | nursery | old semispace B ]
//
// The old space is one of A and B (`old`); the other (`reserve`) is empty
// and inaccessible between collections and receives the copies of a full
// collection, after which the two swap. Each semispace reserves the whole
// limit, so the old space can grow to it without moving. The nursery sits
// between them, so the old space and the nursery always form one contiguous
// range: a full collection's from range is a single range check. With a
// nursery of 0 bytes (a single copying space, no generations) threads
// allocate in the old space directly. Large objects have a reservation of
// their own (LargeObjectSpace.swift).
//
// Threads. Each allocating thread has an allocation record (attach/detach),
// and allocates inline from a buffer it takes from the allocation space
// under the heap's lock. Everything that changes shared state takes the
// lock: buffers, large objects, global handles, attach and detach, and a
// whole collection, stop of the world included. The lock is taken before
// the world stops, so no stopped thread can be inside the heap's
// bookkeeping while the collector runs.
//
// Ownership. The heap owns its reservations, side tables, records and their
// handle stacks, and frees them when it is deinitialised; every object and
// record dies with it. A `Mutator` keeps its heap alive; a record attached
// from C must be detached before the heap goes.

#if canImport(Glibc)
import Glibc
#endif

/// A managed heap; see the file comment. Thread-safe where documented; collections run with
/// the world stopped (`world`).
public final class ManagedHeap: @unchecked Sendable {
    /// The sizes and checks it was made with.
    public let configuration: HeapConfiguration
    let reservation: Reservation
    /// The old space and the empty semispace that receives the next full collection's copies.
    var old: Space
    var reserve: Space
    /// The nursery (reserved 0 bytes in a heap without generations).
    var nursery: Space
    var large: LargeObjectSpace
    var globals = GlobalHandleTable()
    /// Every attached record.
    var records: [UnsafeMutablePointer<AllocationRecord>] = []
    var stats = HeapStatistics()
    /// The old space's capacity the growth policy asks for.
    var oldTarget: Int
    /// The verifier's side table (one bit per word of the reservation), mapped when first needed.
    var verifierMap: VerifierMap?
    let mutex: UnsafeMutablePointer<pthread_mutex_t>

    /// Whether the heap has a nursery.
    public var isGenerational: Bool { nursery.reserved > 0 }

    /// The runtime that stops threads and visits their roots for a collection (HeapWorld.swift);
    /// nil when the heap's own roots (handles) are all there is and only one thread allocates.
    /// The heap keeps it alive. Set it before threads allocate.
    public var world: (any HeapWorld)?

    /// A heap of `configuration`; `HeapError.invalidConfiguration` for a configuration with a
    /// `problem`, `HeapError.systemRefused` when the address space cannot be reserved.
    public init(configuration: HeapConfiguration = .fromEnvironment) throws(HeapError) {
        guard configuration.problem == nil else { throw HeapError(.invalidConfiguration) }
        self.configuration = configuration
        let page = HeapSystem.pageSize
        let semispace = alignUp(configuration.limit, 1 << 21)
        let nurseryBytes = alignUp(configuration.nurseryBytes, page)
        do {
            reservation = try Reservation(size: 2 * semispace + nurseryBytes)
            large = try LargeObjectSpace(reservedBytes: alignUp(configuration.limit, 1 << 21))
        } catch {
            var failure = HeapError(.systemRefused)
            failure.requested = UInt64(3 * semispace)
            throw failure
        }
        let base = reservation.base
        HeapSystem.preferHugePages(UnsafeMutableRawPointer(bitPattern: base)!, reservation.size)
        old = Space(base: base, reserved: semispace)
        nursery = Space(base: base + UInt(semispace), reserved: nurseryBytes)
        reserve = Space(base: base + UInt(semispace + nurseryBytes), reserved: semispace)
        oldTarget = min(configuration.initialBytes, configuration.limit - nurseryBytes)
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        guard old.setCapacity(oldTarget, in: reservation), nursery.setCapacity(nurseryBytes, in: reservation) else {
            pthread_mutex_destroy(mutex)
            mutex.deallocate()
            var failure = HeapError(.systemRefused)
            failure.requested = UInt64(oldTarget + nurseryBytes)
            throw failure
        }
        stats.limit = configuration.limit
        stats.nurseryBytes = nurseryBytes
        stats.oldCapacity = old.capacity
        if configuration.verifiesEachCollection {
            verifierMap = try? VerifierMap(covering: reservation.base..<reservation.end)
        }
    }

    deinit {
        for record in records {
            record.pointee.handles.unmap()
            record.pointee.magic = 0
            record.deallocate()
        }
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always) func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` holding the heap's lock: no thread allocates a buffer, makes a large object or
    /// collects meanwhile. An embedder that stops the world for work of its own that reads or
    /// rewrites the heap (code compaction rewriting closures) takes it around its stop.
    public func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        lock()
        defer { unlock() }
        return try body()
    }

    // MARK: Records

    /// Attaches a new allocation record for the calling thread (see AllocationRecord.swift). It
    /// stays the heap's until `detach`; the embedder passes it to generated code.
    public func attach() throws(HeapError) -> UnsafeMutablePointer<AllocationRecord> {
        let handles: HandleStack
        do {
            handles = try HandleStack.map(capacity: configuration.handleCapacity)
        } catch {
            var failure = HeapError(.systemRefused)
            failure.requested = UInt64(HandleStack.mappedBytes(capacity: configuration.handleCapacity))
            throw failure
        }
        let record = UnsafeMutablePointer<AllocationRecord>.allocate(capacity: 1)
        record.initialize(to: AllocationRecord(heap: Unmanaged.passUnretained(self).toOpaque(), handles: handles))
        record.pointee.countdown = configuration.collectEvery
        withLock { records.append(record) }
        return record
    }

    /// Detaches a record: its unused buffer and its handles are given up, and its memory freed.
    /// `HeapError.invalidRecord` for a record not attached to this heap.
    public func detach(_ record: UnsafeMutablePointer<AllocationRecord>) throws(HeapError) {
        lock()
        guard let index = records.firstIndex(of: record) else {
            unlock()
            throw HeapError(.invalidRecord)
        }
        retire(record)
        records.remove(at: index)
        unlock()
        record.pointee.handles.unmap()
        record.pointee.magic = 0
        record.deallocate()
    }

    /// The heap a record pointer belongs to, or nil when it is not an attached record.
    static func owner(of record: UnsafeMutablePointer<AllocationRecord>) -> ManagedHeap? {
        guard record.pointee.magic == AllocationRecord.attachedMagic else { return nil }
        return Unmanaged<ManagedHeap>.fromOpaque(record.pointee.heap).takeUnretainedValue()
    }

    /// Gives up a record's buffer: what it did not use is not counted as allocated. The unused
    /// part stays zero (it parses as empty objects). Lock held.
    func retire(_ record: UnsafeMutablePointer<AllocationRecord>) {
        stats.allocatedBytes -= record.pointee.bufferRoom
        record.pointee.cursor = 0
        record.pointee.limit = 0
        record.pointee.bufferEnd = 0
    }

    // MARK: Global handles

    /// A new global handle holding `value`: a root until `freeGlobalHandle`.
    public func makeGlobalHandle(_ value: Value) -> GlobalHandle {
        withLock { globals.make(value) }
    }

    /// The current value of a global handle; `staleHandle` once it was freed.
    public func value(of handle: GlobalHandle) throws(HeapError) -> Value {
        lock()
        defer { unlock() }
        return try globals.value(handle)
    }

    /// Stores `value` in a global handle; `staleHandle` once it was freed.
    public func set(_ handle: GlobalHandle, to value: Value) throws(HeapError) {
        lock()
        defer { unlock() }
        try globals.set(handle, to: value)
    }

    /// Frees a global handle: its slot is no longer a root.
    public func freeGlobalHandle(_ handle: GlobalHandle) throws(HeapError) {
        lock()
        defer { unlock() }
        try globals.free(handle)
    }

    // MARK: Figures

    /// The heap's figures now (HeapStatistics.swift).
    public var statistics: HeapStatistics {
        withLock {
            var figures = stats
            figures.oldBytes = old.used
            figures.largeBytes = large.committedBytes
            figures.oldCapacity = old.capacity
            return figures
        }
    }

    /// The address ranges objects may lie in: the old space with the nursery, and the large-object
    /// space (for an embedder's conservative checks and tests).
    public var objectRanges: [Range<UInt>] {
        [reservation.base..<reservation.end, large.reservation.base..<large.reservation.end]
    }
}
