// Compaction of the code heap: live blocks slide together, and everything
// that pointed into a moved block is made to point into its new place.
//
// Steps, all under the loader's lock:
//   1. scan the controller's stack (RootScan.swift), make room for the plan,
//      and stop every other thread (World.swift), scanning their registers
//      and stacks: blocks something points into are pinned, and blocks of
//      setjmp callers are fixed for good;
//   2. plan: from the lowest hole up, each block that is neither pinned nor
//      fixed moves down to the lowest free offset; one that is stays, and the
//      next goes above it. Blocks below the first hole are not looked at.
//      (The stress mode alternates this with *evacuation*, which moves every
//      unpinned block above the highest one, so that every compaction moves
//      every block and a missed update shows at once.)
//   3. copy each moved block (header and code) through the writable alias,
//      lowest first, so no block is overwritten before it is copied;
//   4. fix up exactly what pointed at a moved block (CodeLinks.swift): its
//      pc-relative records, its callers' direct calls, the call slots bound
//      to it, its stub, and the precise return addresses into it;
//   5. resume the world; then bring the heap's free list and block order up
//      to date, fill the vacated space with int3 (so a stale jump traps) and
//      give whole free pages above the highest block back to the kernel.
// Steps 2 to 4 run with the world stopped and allocate nothing: the plan's
// buffer is sized before the stop. Their cost is what moves.
//
// Data, TOCs and stubs never move, so data objects (which refer to functions
// only through stubs) need no fix-up.

extension Loader {
    /// What one compaction did.
    public struct CompactionReport: Sendable {
        public var blocksMoved = 0
        public var bytesMoved = 0
        public var blocksPinned = 0
        public var returnAddressesPatched = 0
        /// The end of the highest block before and after, as offsets into the code half.
        public var topBefore = 0
        public var topAfter = 0
        /// Nothing moved because some thread could not be stopped and examined (it blocks
        /// the suspension signal); the compaction runs at the next runtime entry instead.
        public var skippedForThreads = false
    }

    /// Compacts the code heap now. Frames of generated code on this thread's stack pin their
    /// blocks (the host's stack is scanned conservatively); other threads must not be running
    /// generated code.
    @discardableResult
    public func compact() -> CompactionReport {
        lock.lock()
        defer { lock.unlock() }
        var marker = 0
        let low = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        return compact(framePointer: nil, low: low, stress: false)
    }

    /// Compacts from a runtime entry whose frame pointer is `framePointer`.
    @discardableResult
    func compact(framePointer: UInt, stress: Bool) -> CompactionReport {
        compact(framePointer: framePointer, low: framePointer, stress: stress)
    }

    func compact(framePointer: UInt?, low: UInt, stress: Bool) -> CompactionReport {
        var report = CompactionReport()
        report.topBefore = heap.movable.top
        compactor.moves.reserveCapacity(heap.blocks.count)
        withStoppedWorld(framePointer: framePointer, low: low) { roots, gated in
            guard roots.isComplete else {
                // Some thread may be running any code: nothing moves now, and the
                // compaction waits for the next runtime entry that can stop everyone.
                report.skippedForThreads = true
                compactionRequested = true
                return
            }
            move(roots, stress: stress, gated: gated, report: &report)
        }
        if !report.skippedForThreads {
            heap.placeMoved(compactor.moves, topBefore: report.topBefore)
            compactor.moves.removeAll(keepingCapacity: true)
        }
        report.topAfter = heap.movable.top
        if !stress { heap.releaseFreePages() }
        statistics.compactions += report.skippedForThreads ? 0 : 1
        statistics.compactionsDeferred += report.skippedForThreads ? 1 : 0
        statistics.blocksMoved += report.blocksMoved
        statistics.returnAddressesPatched += report.returnAddressesPatched
        publishCodeChanges()
        return report
    }

    /// Moves the blocks, with every other thread stopped; allocates nothing (`moves` has
    /// room for every block).
    private func move(_ roots: RootScan, stress: Bool, gated: Bool, report: inout CompactionReport) {
        report.blocksPinned = roots.pinned.count
        compactor.epoch &+= 1
        compactor.moves.removeAll(keepingCapacity: true)
        let evacuate = stress && statistics.compactions % 2 == 0
        if !(evacuate && planEvacuation(roots)) { planSliding(roots) }
        let header = UInt(CodeHeap.headerSize)
        for move in compactor.moves {
            let block = move.block
            let source = heap.region.writableAlias(of: move.from - header)
            let destination = heap.region.writableAlias(of: move.to - header)
            destination.copyMemory(from: UnsafeRawPointer(source), byteCount: block.extent.count)
            block.entry = move.to
            block.moves += 1
            block.moveEpoch = compactor.epoch
            report.blocksMoved += 1
            report.bytesMoved += block.extent.count
        }
        for move in compactor.moves { relinkMoved(move.block, gated: gated) }
        for frame in roots.frames {
            UnsafeMutableRawPointer(bitPattern: frame.slot)!.storeBytes(of: frame.block.entry + frame.offset, as: UInt.self)
        }
        report.returnAddressesPatched = roots.frames.count
    }

    /// Rewrites what points at a block that just moved (CodeLinks.swift). Allocates nothing.
    private func relinkMoved(_ block: CodeBlock, gated: Bool) {
        for record in block.movingRecords { reapplyInPlace(block, record: Int(record)) }
        for caller in block.callers where caller.block.moveEpoch != compactor.epoch && !caller.block.isFreed {
            reapplyInPlace(caller.block, record: Int(caller.record))
        }
        for slot in block.boundSlots {
            // An aligned 8-byte store, as every slot write.
            UnsafeMutableRawPointer(bitPattern: slot)!.storeBytes(of: block.entry, as: UInt.self)
        }
        // A gated stub gets its new target when the gate opens.
        if let stub = block.stub, !gated { routines.writeStub(at: stub.address, target: block.entry, in: heap) }
    }

    /// Runs `body` with a scan of every thread's references to code, the other threads
    /// stopped until it returns (see World.swift: `body` must not allocate). When the
    /// threads cannot be stopped, `body` runs with an incomplete scan and must change no code.
    ///
    /// Quiet threads (blocked in the kernel with the signal blocked) are not stopped: while
    /// `body` runs, every callback stub leads to the gate instead of its function, so a
    /// quiet thread that wakes and calls one waits there; and a quiet thread that has run
    /// since the scan makes it incomplete.
    func withStoppedWorld<R>(framePointer: UInt?, low: UInt, _ body: (RootScan, _ gated: Bool) -> R) -> R {
        roots.begin(blockCount: heap.blocks.count)
        if let procs = procSystem, procs.isRunning, procs.isOnProcStacks(low) {
            roots.scanProcThread(heap, procs, framePointer: framePointer, low: low)
        } else {
            // Procs run on another thread: their stacks are read once the world is stopped.
            roots.scanOwnStack(heap, framePointer: framePointer, low: low)
        }
        let ownPins = roots.pinned.count
        var attempt = 0
        while true {
            let stopped = System.monotonicNanoseconds()
            guard let world = World.stop() else {
                roots.giveUp()
                return body(roots, false)
            }
            statistics.worldStops += 1
            roots.scanStoppedThreads(heap, world, procs: procSystem)
            statistics.threadsStopped += roots.threadsScanned
            let gated = world.quiet > 0
            if gated {
                stubs.forEachLive { routines.writeStub(at: $0.address, target: nil, gated: true, in: heap) }
                for index in 0..<world.count where world.isQuiet(index) && !world.isStillQuiet(index) { roots.giveUp() }
            }
            attempt += 1
            if !roots.isComplete { statistics.incompleteStops += 1 }
            // A thread that blocks the signal and was running, or woke, is often busy for a
            // moment only (a test runner's bookkeeping): try a few more times.
            if !roots.isComplete && attempt < World.attempts {
                if gated { stubs.forEachLive { routines.writeStub(at: $0.address, target: $0.block!.entry, in: heap) } }
                world.resume()
                notePause(since: stopped)
                roots.forgetOtherThreads(keeping: ownPins)
                System.sleep(microseconds: 200 * attempt)
                continue
            }
            return finish(world, gated: gated, stopped: stopped, body)
        }
    }

    private func notePause(since start: Int) {
        statistics.lastPauseNanoseconds = System.monotonicNanoseconds() - start
        statistics.longestPauseNanoseconds = max(statistics.longestPauseNanoseconds, statistics.lastPauseNanoseconds)
    }

    private func finish<R>(_ world: consuming StoppedWorld, gated: Bool, stopped: Int, _ body: (RootScan, Bool) -> R) -> R {
        let result = body(roots, gated)
        if gated {
            stubs.forEachLive { routines.writeStub(at: $0.address, target: $0.block!.entry, in: heap) }
        }
        world.resume()
        notePause(since: stopped)
        return result
    }

    /// Scans every thread's references to code at one moment (the other threads are
    /// stopped only for the scan). Enough for deciding what is unreachable: a block that
    /// no thread and no live code reaches now cannot be reached later.
    @discardableResult
    func scanAllThreads(framePointer: UInt?, low: UInt) -> RootScan {
        withStoppedWorld(framePointer: framePointer, low: low) { roots, _ in roots }
    }

    /// Plans the slide of every block above the lowest hole that is neither pinned nor
    /// fixed down to the lowest free place. Allocates nothing.
    private func planSliding(_ roots: RootScan) {
        guard let hole = heap.movable.holes.first, hole.lowerBound < heap.movable.top else { return }
        var cursor = heap.codeBase + UInt(hole.lowerBound)
        for index in heap.firstBlock(atOrAfter: cursor)..<heap.blocks.count {
            let block = heap.blocks[index]
            if block.isFixed || roots.isPinned(block) {
                cursor = max(cursor, block.extent.upperBound)
                continue
            }
            let entry = cursor + UInt(CodeHeap.headerSize)
            if entry != block.entry { compactor.moves.append(Compactor.Move(block: block, from: block.entry, to: entry)) }
            cursor += UInt(block.extent.count)
        }
    }

    /// Plans the move of every unpinned block above the highest one; false (and no plan)
    /// when they do not fit. Allocates nothing.
    private func planEvacuation(_ roots: RootScan) -> Bool {
        var cursor = heap.codeBase + UInt(heap.movable.top)
        for block in heap.blocks where !block.isFixed && !roots.isPinned(block) {
            compactor.moves.append(Compactor.Move(block: block, from: block.entry, to: cursor + UInt(CodeHeap.headerSize)))
            cursor += UInt(block.extent.count)
        }
        guard cursor <= heap.movableRange.upperBound else {
            compactor.moves.removeAll(keepingCapacity: true)
            return false
        }
        return true
    }

    /// Rewrites every bound call slot (of every version of every crate) whose binding is a
    /// crate function that `affects` selects: to its current entry, or back to its
    /// resolver stub when the function is gone. Returns how many slots were written.
    @discardableResult
    func rebindCallSlots(in only: [CrateState]? = nil, where affects: (_ crateName: String) -> Bool) -> Int {
        guard options.compactEvery == 0 else { return 0 }  // the stress mode never binds
        var written = 0
        for crate in only ?? registry.all {
            for version in crate.versions {
                for (index, binding) in version.toc.bindings.enumerated() {
                    guard case .crate(let name, _)? = binding, affects(name) else { continue }
                    let slot = version.toc.callSlotAddress(index)
                    if let target = currentTarget(of: binding!) {
                        if version.toc.value(at: slot) != target {
                            version.toc.store(target, at: slot)
                            written += 1
                        }
                        noteBinding(of: version, slot: index, to: block(of: binding!))
                    } else {
                        version.toc.bindings[index] = nil
                        version.toc.store(version.toc.resolverStubs[index], at: slot)
                        noteBinding(of: version, slot: index, to: nil)
                        written += 1
                    }
                }
            }
        }
        return written
    }
}

/// The state compaction keeps between runs: the plan's buffer (kept at the size of the
/// heap, so planning allocates nothing) and the number of the current compaction.
final class Compactor {
    struct Move {
        let block: CodeBlock
        let from: UInt
        let to: UInt
    }

    var moves: [Move] = []
    var epoch: UInt64 = 0
}
