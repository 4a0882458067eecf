// Running a collection: preparing it, stopping the world, copying, sweeping,
// verifying, resuming, and resizing afterwards.
//
// Everything a collection needs is made ready before the world stops: the
// semispace that receives a full collection's copies is committed for
// everything that could survive, the large-object space has worklist room
// for every large object, the verifier's side table is mapped. Between the
// stop and the resume the collector reads and writes only memory that
// exists already, so it never calls malloc (a stopped thread may hold its
// lock). Pages are given back after the resume, except those of the emptied
// semispace that the next collection will copy into.
//
// Policy. A heap without a nursery collects fully when its old space is full;
// afterwards the old space's capacity becomes `growthFactor` times the live
// bytes (at least the initial capacity, at most what the limit leaves after
// large objects). A generational heap collects the nursery (minor) when it
// is full and the old space has room for everything in it, and collects fully
// otherwise; the old space's capacity follows the same rule after each full
// collection. `collect(.full)` ($kiln.collect) collects everything now.

/// Which collection to run.
public enum CollectionKind: Sendable, Equatable {
    /// The nursery only: survivors are promoted to the old space (a full collection in a heap
    /// without a nursery).
    case minor
    /// Every space: the old space and the nursery are copied into the other semispace, large
    /// objects are marked and swept.
    case full
}

extension ManagedHeap {
    /// Runs a collection now. Takes the lock; stops the world through `world` if there is one.
    /// `threadsNotStopped` when the world could not be stopped (nothing was collected),
    /// `heapCorrupted` when verification is on and found a bad reference, `systemRefused` when
    /// the memory to copy into could not be committed.
    public func collect(_ kind: CollectionKind = .full) throws(HeapError) {
        lock()
        defer { unlock() }
        let chosen: CollectionKind = kind == .minor && (!isGenerational || old.room < nursery.used) ? .full : kind
        try collectLocked(chosen).get()
    }

    /// The collection to run when the allocation space is full.
    func collectionForFullSpace() -> CollectionKind {
        isGenerational && old.room >= nursery.used ? .minor : .full
    }

    /// The C-callable visitor action of a collection: forwards the root in `slot`.
    static let evacuateRoot: @convention(c) (UnsafeMutableRawPointer, UnsafeMutablePointer<UInt64>) -> Void = { context, slot in
        context.assumingMemoryBound(to: Evacuation.self).pointee.visit(slot)
    }

    /// Runs a collection of `kind` (a minor one only when the old space has room for the whole
    /// nursery). Lock held.
    func collectLocked(_ kind: CollectionKind) -> Result<Void, HeapError> {
        let full = kind == .full || !isGenerational
        if full, reserve.capacity < old.used + nursery.used {
            guard reserve.setCapacity(old.used + nursery.used, in: reservation) else {
                var failure = HeapError(.systemRefused)
                failure.requested = UInt64(old.used + nursery.used)
                return .failure(failure)
            }
        }
        let verifies = configuration.verifiesEachCollection
        if verifies && verifierMap == nil {
            verifierMap = try? VerifierMap(covering: reservation.base..<reservation.end)
        }
        let started = HeapSystem.nanoseconds()
        if let world, !world.stopForCollection() { return .failure(HeapError(.threadsNotStopped)) }

        for record in records { retire(record) }
        collectFully()
        var outcome: Result<Void, HeapError> = .success(())
        if verifies, verifierMap != nil, let violation = verifyStopped() {
            outcome = .failure(violation)
        }
        world?.resumeAfterCollection()
        stats.pauses.record(HeapSystem.nanoseconds() &- started)

        if full { resizeAfterFullCollection() }
        return outcome
    }

    /// Visits the roots the heap owns (handle stacks, global handles) and the world's.
    func visitRoots(_ visitor: borrowing RootVisitor) {
        for record in records {
            visitor.visit(record.pointee.handles.slots, count: record.pointee.handles.top)
        }
        globals.visit(visitor)
        world?.visitRoots(visitor)
    }

    /// Copies everything reachable into the reserve semispace, which becomes the old space.
    /// World stopped.
    private func collectFully() {
        let from = min(old.base, nursery.base)..<max(old.reservedEnd, nursery.reservedEnd)
        var evacuation = Evacuation(from: from, to: reserve.base..<reserve.limit,
                                    large: large.reservation.base..<large.reservation.end,
                                    worklist: large.worklist, codeVisitor: world)
        let start = reserve.base
        withUnsafeMutablePointer(to: &evacuation) { pointer in
            visitRoots(RootVisitor(context: UnsafeMutableRawPointer(pointer), action: Self.evacuateRoot))
            pointer.pointee.scan(from: start)
        }
        reserve.top = evacuation.free
        reserve.noteWrittenUpToTop()
        let largeLive = large.sweep()
        let copied = reserve.used
        let emptied = old
        old = reserve
        reserve = emptied
        reserve.top = reserve.base
        nursery.reset(givingPagesBack: false, in: reservation)
        stats.fullCollections += 1
        stats.copiedBytes += copied
        stats.liveBytesAfterFullCollection = copied + largeLive
    }

    /// After the world resumed: gives the emptied semispace back and sets the old space's
    /// capacity by the growth policy. Lock held.
    private func resizeAfterFullCollection() {
        let wanted = max(Int(Double(old.used) * configuration.growthFactor), configuration.initialBytes)
        oldTarget = min(wanted, oldBudget)
        _ = old.setCapacity(oldTarget, in: reservation)
        // The emptied semispace keeps the pages the next collection is likely to copy into
        // (the growth factor times what survived this one): copies overwrite them, so the
        // kernel need not zero them first, which cost a quarter of an allocation-heavy
        // program's time. The rest goes back (all of it when nothing survived).
        let kept = Int(Double(old.used) * configuration.growthFactor)
        _ = reserve.setCapacity(min(reserve.capacity, kept), in: reservation)
    }

    /// The most the old space's capacity may be: the limit less the nursery and large objects.
    var oldBudget: Int {
        configuration.limit - nursery.capacity - large.committedBytes
    }

    /// Lowers the old space's capacity by up to `bytes` (to make room for a large object), never
    /// below what it holds plus room for one more nursery (or buffer) of objects.
    func shrinkOldSpace(by bytes: Int) {
        let headroom = isGenerational ? nursery.capacity : configuration.bufferBytes
        let lowest = old.used + headroom
        let wanted = max(old.capacity - bytes, lowest)
        if wanted < old.capacity { _ = old.setCapacity(wanted, in: reservation) }
    }
}
