// Compaction of the code heap: live blocks slide together, and everything
// that pointed into a moved block is made to point into its new place.
//
// Steps, all under the loader's lock:
//   1. scan the stack (FrameWalker.swift): precise return addresses of
//      generated-code frames, and blocks pinned by other words;
//   2. plan: walking blocks in address order, each unpinned block moves down
//      to the lowest free offset; a pinned block stays and the next one goes
//      above it. (The stress mode alternates this with *evacuation*, which
//      moves every unpinned block above the highest one, so that every
//      compaction moves every block and a missed update shows at once.)
//   3. copy the bytes (header and code) through the writable alias, in an
//      order that never overwrites a block not yet copied;
//   4. fix everything up: the records of every block (pc-relative fields
//      change with the block's own place and with their targets'), TOC call
//      slots bound to a moved entry, callback stubs, and the precise return
//      addresses;
//   5. fill the free space with int3, so a stale jump traps, and give whole
//      free pages above the highest block back to the kernel.
//
// Data, TOCs and stubs never move, so data objects (which refer to functions
// only through stubs) need no fix-up. Nothing moves while another living
// thread has entered the loader's runtime (see FrameWalker.swift).

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
        withStoppedWorld(framePointer: framePointer, low: low) { roots in
            guard roots.isComplete else {
                // Some thread may be running any code: nothing moves now, and the
                // compaction waits for the next runtime entry that can stop everyone.
                report.skippedForThreads = true
                report.topAfter = report.topBefore
                compactionRequested = true
                return
            }
            move(roots, stress: stress, report: &report)
        }
        if !stress { heap.releaseFreePages() }
        statistics.compactions += report.skippedForThreads ? 0 : 1
        statistics.compactionsDeferred += report.skippedForThreads ? 1 : 0
        statistics.blocksMoved += report.blocksMoved
        statistics.returnAddressesPatched += report.returnAddressesPatched
        return report
    }

    /// Moves the blocks, with every other thread stopped.
    private func move(_ roots: RootScan, stress: Bool, report: inout CompactionReport) {
        report.blocksPinned = roots.pinned.count
        let evacuate = stress && statistics.compactions % 2 == 0
        let plan = evacuate ? (evacuationPlan(roots) ?? slidingPlan(roots)) : slidingPlan(roots)
        for (block, newEntry) in plan where newEntry != block.entry {
            let header = UInt(CodeHeap.headerSize)
            let source = heap.region.writableAlias(of: block.entry - header)
            let destination = heap.region.writableAlias(of: newEntry - header)
            destination.copyMemory(from: UnsafeRawPointer(source), byteCount: block.extent.count)
            block.entry = newEntry
            block.moves += 1
            report.blocksMoved += 1
            report.bytesMoved += block.extent.count
        }
        heap.resort()
        for hole in heap.movable.holes where hole.lowerBound < heap.movable.top {
            heap.fill((heap.codeBase + UInt(hole.lowerBound))..<(heap.codeBase + UInt(hole.upperBound)), with: 0xCC)
        }
        let top = heap.codeBase + UInt(heap.movable.top)
        let highestUsed = heap.codeBase + UInt(max(report.topBefore, heap.movable.top))
        heap.fill(top..<highestUsed, with: 0xCC)

        relinkAfterMoves()
        for frame in roots.frames {
            UnsafeMutableRawPointer(bitPattern: frame.slot)!.storeBytes(of: frame.block.entry + frame.offset, as: UInt.self)
        }
        report.returnAddressesPatched = roots.frames.count
        report.topAfter = heap.movable.top
    }

    /// Runs `body` with a scan of every thread's references to code, the other threads
    /// stopped until it returns (see World.swift: `body` must not allocate). When the
    /// threads cannot be stopped, `body` runs with an incomplete scan and must change no code.
    ///
    /// Quiet threads (blocked in the kernel with the signal blocked) are not stopped: while
    /// `body` runs, every callback stub leads to the gate instead of its function, so a
    /// quiet thread that wakes and calls one waits there; and a quiet thread that has run
    /// since the scan makes it incomplete.
    func withStoppedWorld<R>(framePointer: UInt?, low: UInt, _ body: (RootScan) -> R) -> R {
        roots.begin(blockCount: heap.blocks.count)
        roots.scanOwnStack(heap, framePointer: framePointer, low: low)
        let ownPins = roots.pinned.count
        var attempt = 0
        while true {
            let stopped = System.monotonicNanoseconds()
            guard let world = World.stop() else {
                roots.giveUp()
                return body(roots)
            }
            statistics.worldStops += 1
            roots.scanStoppedThreads(heap, world)
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
        statistics.longestPauseNanoseconds = max(statistics.longestPauseNanoseconds, System.monotonicNanoseconds() - start)
    }

    private func finish<R>(_ world: consuming StoppedWorld, gated: Bool, stopped: Int, _ body: (RootScan) -> R) -> R {
        let result = body(roots)
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
        withStoppedWorld(framePointer: framePointer, low: low) { $0 }
    }

    /// New entries that slide every unpinned block down, in address order.
    private func slidingPlan(_ roots: RootScan) -> [(CodeBlock, UInt)] {
        var plan: [(CodeBlock, UInt)] = []
        var cursor = heap.codeBase
        for block in heap.blocks {
            if block.isFixed || roots.isPinned(block) {
                cursor = max(cursor, block.extent.upperBound)
                continue
            }
            plan.append((block, cursor + UInt(CodeHeap.headerSize)))
            cursor += UInt(block.extent.count)
        }
        return plan
    }

    /// New entries above the highest block for every unpinned block, or nil when they do not fit.
    private func evacuationPlan(_ roots: RootScan) -> [(CodeBlock, UInt)]? {
        var plan: [(CodeBlock, UInt)] = []
        var cursor = heap.codeBase + UInt(heap.movable.top)
        for block in heap.blocks where !block.isFixed && !roots.isPinned(block) {
            plan.append((block, cursor + UInt(CodeHeap.headerSize)))
            cursor += UInt(block.extent.count)
        }
        return cursor <= heap.movableRange.upperBound ? plan : nil
    }

    /// Applies the records of every block again (in the terms of the version that owns
    /// it), re-points bound call slots and stubs.
    func relinkAfterMoves() {
        for crate in crates + unloadedCrates {
            for version in crate.versions {
                for (index, block) in version.blocks.enumerated() where block.version === version && !block.isFreed {
                    do {
                        try applyRelocations(ofFunction: index, of: version, in: crate)
                    } catch {
                        fail("internal error: relinking \(crate.name) after compaction: \(error)")
                    }
                }
            }
        }
        rebindCallSlots { _ in true }
        for crate in crates + unloadedCrates { repointStubs(of: crate) }
    }

    /// Rewrites every bound call slot (of every version of every crate) whose binding is a
    /// crate function that `affects` selects: to its current entry, or back to its
    /// resolver stub when the function is gone. Returns how many slots were written.
    @discardableResult
    func rebindCallSlots(in only: [CrateState]? = nil, where affects: (_ crateName: String) -> Bool) -> Int {
        guard options.compactEvery == 0 else { return 0 }  // the stress mode never binds
        var written = 0
        for crate in only ?? (crates + unloadedCrates) {
            for version in crate.versions {
                for (index, binding) in version.toc.bindings.enumerated() {
                    guard case .crate(let name, _)? = binding, affects(name) else { continue }
                    let slot = version.toc.callSlotAddress(index)
                    if let target = currentTarget(of: binding!) {
                        if version.toc.value(at: slot) != target {
                            version.toc.store(target, at: slot)
                            written += 1
                        }
                    } else {
                        version.toc.bindings[index] = nil
                        version.toc.store(version.toc.resolverStubs[index], at: slot)
                        written += 1
                    }
                }
            }
        }
        return written
    }
}
