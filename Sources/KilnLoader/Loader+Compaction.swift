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
        /// Nothing moved because another living thread has entered the loader's runtime
        /// and might be running the code (see FrameWalker.swift).
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

    private func compact(framePointer: UInt?, low: UInt, stress: Bool) -> CompactionReport {
        var report = CompactionReport()
        report.topBefore = heap.movable.top
        guard isAlone else {
            report.skippedForThreads = true
            report.topAfter = report.topBefore
            return report
        }
        let scan = heap.scanStack(framePointer: framePointer, low: low)
        for block in scan.pinned { block.isPinned = true }
        defer { for block in scan.pinned { block.isPinned = false } }
        report.blocksPinned = scan.pinned.count

        let evacuate = stress && statistics.compactions % 2 == 0
        let plan = evacuate ? (evacuationPlan() ?? slidingPlan()) : slidingPlan()
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
        if !stress { heap.releaseFreePages() }

        relinkAfterMoves()
        for frame in scan.frames {
            UnsafeMutableRawPointer(bitPattern: frame.slot)!.storeBytes(of: frame.block.entry + frame.offset, as: UInt.self)
        }
        report.returnAddressesPatched = scan.frames.count
        report.topAfter = heap.movable.top
        statistics.compactions += 1
        statistics.blocksMoved += report.blocksMoved
        statistics.returnAddressesPatched += report.returnAddressesPatched
        return report
    }

    /// New entries that slide every unpinned block down, in address order.
    private func slidingPlan() -> [(CodeBlock, UInt)] {
        var plan: [(CodeBlock, UInt)] = []
        var cursor = heap.codeBase
        for block in heap.blocks {
            if block.isPinned {
                cursor = max(cursor, block.extent.upperBound)
                continue
            }
            plan.append((block, cursor + UInt(CodeHeap.headerSize)))
            cursor += UInt(block.extent.count)
        }
        return plan
    }

    /// New entries above the highest block for every unpinned block, or nil when they do not fit.
    private func evacuationPlan() -> [(CodeBlock, UInt)]? {
        var plan: [(CodeBlock, UInt)] = []
        var cursor = heap.codeBase + UInt(heap.movable.top)
        for block in heap.blocks where !block.isPinned {
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
