// The allocation slow path: what happens when an object does not fit in the
// thread's buffer.
//
// Generated code (and `Mutator`) bump the record's cursor inline; when the
// object does not fit they call here with the object's header word. The
// slow path checks the header, then, in order:
//   - in the stress mode, counts the allocation and collects (fully) every
//     Nth one, before allocating: every object alive at that moment must be
//     reachable from a root, exactly as at any safepoint;
//   - sends objects of `largeObjectBytes` or more to the large-object space;
//   - bumps the buffer if the object fits after all (the stress mode holds
//     `limit` at 0 to get here, while `bufferEnd` is the real end);
//   - takes a new buffer from the allocation space under the lock, or, for
//     an object bigger than a quarter of a buffer, takes exactly its bytes
//     and keeps the buffer;
//   - when the space is full, collects (a minor collection when the old
//     space has room for everything in the nursery, a full one otherwise)
//     and tries again, and fails with `outOfMemory` only when a full
//     collection left no room within the limit.
// A new object reads as zero behind its header. The result is a reference,
// or the error; generated code gets 0 and the error in the record.

extension ManagedHeap {
    /// Allocates an object with `header` for the thread of `record`; the object is zero behind
    /// the header. May collect (every reference not in a root is stale afterwards).
    func allocateSlow(_ record: UnsafeMutablePointer<AllocationRecord>, header: ObjectHeader) -> Result<Value, HeapError> {
        guard header.problem == nil else {
            var failure = HeapError(.invalidHeader)
            failure.requested = header.bits
            return .failure(failure)
        }
        let bytes = header.objectBytes
        if configuration.collectEvery > 0 {
            record.pointee.countdown -= 1
            if record.pointee.countdown <= 0 {
                record.pointee.countdown = configuration.collectEvery
                lock()
                let outcome = collectLocked(.full)
                unlock()
                if case .failure(let error) = outcome { return .failure(error) }
            }
        }
        if bytes >= configuration.largeObjectBytes {
            return allocateLarge(bytes: bytes, header: header)
        }
        if bytes <= record.pointee.bufferRoom {
            return .success(bump(record, bytes: bytes, header: header))
        }
        lock()
        defer { unlock() }
        if let object = allocateFromSpace(record, bytes: bytes, header: header) { return .success(object) }
        var kind = collectionForFullSpace()
        while true {
            if case .failure(let error) = collectLocked(kind) { return .failure(error) }
            if let object = allocateFromSpace(record, bytes: bytes, header: header) { return .success(object) }
            guard kind == .minor else { return .failure(outOfMemory(bytes)) }
            kind = .full
        }
    }

    /// Bumps the record's buffer, which has room, and writes the header.
    @inline(__always)
    private func bump(_ record: UnsafeMutablePointer<AllocationRecord>, bytes: Int, header: ObjectHeader) -> Value {
        let address = record.pointee.cursor
        record.pointee.cursor = address + UInt(bytes)
        UnsafeMutablePointer<UInt64>(bitPattern: address)!.pointee = header.bits
        return Value(unsafeObjectAt: address)
    }

    /// The space threads allocate in: the nursery, or the old space without generations.
    private var allocationSpaceIsNursery: Bool { isGenerational }

    /// Takes a new buffer (or the object's own bytes) from the allocation space and allocates
    /// there; nil when the space has no room. Lock held.
    private func allocateFromSpace(_ record: UnsafeMutablePointer<AllocationRecord>, bytes: Int, header: ObjectHeader) -> Value? {
        let direct = bytes > configuration.bufferBytes / 4
        let wanted = direct ? bytes : configuration.bufferBytes
        var start: UInt?
        var taken = 0
        if allocationSpaceIsNursery {
            taken = nursery.room >= wanted ? wanted : (nursery.room >= bytes ? nursery.room & ~7 : 0)
            if taken > 0, let at = nursery.take(taken) {
                nursery.prepare(at..<at + UInt(taken))
                start = at
            }
        } else {
            taken = old.room >= wanted ? wanted : (old.room >= bytes ? old.room & ~7 : 0)
            if taken > 0, let at = old.take(taken) {
                old.prepare(at..<at + UInt(taken))
                start = at
            }
        }
        guard let start else { return nil }
        stats.allocatedBytes += taken
        if direct {
            UnsafeMutablePointer<UInt64>(bitPattern: start)!.pointee = header.bits
            if taken > bytes { stats.allocatedBytes -= taken - bytes }
            return Value(unsafeObjectAt: start)
        }
        retire(record)
        record.pointee.cursor = start
        record.pointee.bufferEnd = start + UInt(taken)
        record.pointee.limit = configuration.collectEvery > 0 ? 0 : start + UInt(taken)
        return bump(record, bytes: bytes, header: header)
    }

    /// A large object, collecting first when it would pass the limit. Takes the lock.
    func allocateLarge(bytes: Int, header: ObjectHeader) -> Result<Value, HeapError> {
        lock()
        defer { unlock() }
        let pages = alignUp(bytes, HeapSystem.pageSize)
        var collected = false
        while true {
            if pages <= largeRoom, let address = large.allocate(bytes: bytes, header: header) {
                stats.allocatedBytes += bytes
                stats.largeObjectsAllocated += 1
                return .success(Value(unsafeObjectAt: address))
            }
            if collected {
                guard pages <= largeRoom else { return .failure(outOfMemory(bytes)) }
                var failure = HeapError(.systemRefused)
                failure.requested = UInt64(pages)
                return .failure(failure)
            }
            if case .failure(let error) = collectLocked(.full) { return .failure(error) }
            collected = true
            // Make room within the limit: the old space gives back what it does not need.
            if pages > largeRoom { shrinkOldSpace(by: pages - largeRoom) }
        }
    }

    /// Bytes of the limit left for large objects: what the nursery and the old space's capacity
    /// do not take.
    var largeRoom: Int {
        configuration.limit - nursery.capacity - old.capacity - large.committedBytes
    }

    /// The out-of-memory error for an object of `bytes` bytes.
    func outOfMemory(_ bytes: Int) -> HeapError {
        var failure = HeapError(.outOfMemory)
        failure.requested = UInt64(bytes)
        failure.limit = configuration.limit
        failure.liveBytes = stats.liveBytesAfterFullCollection
        return failure
    }
}
