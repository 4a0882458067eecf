// Hot reload: replacing a crate's code while the program runs.
//
// `reload(_:with:)` makes a new version of a crate from a new module:
//   1. check: the module is valid, exports nothing another crate exports, and
//      still exports everything other crates use (call, load or hold the
//      address of); a reload that would drop one is refused, naming the user;
//   2. scan every thread (RootScan.swift) and prepare the new version in full
//      (ReloadTransaction.swift): functions and data are matched by name; a
//      function whose code and records are unchanged keeps its block; a
//      changed one is rewritten over its old block when it fits and nothing
//      runs in it, else placed fresh; unchanged data keeps its storage and
//      value; everything that can fail happens here, and a failure gives
//      everything back: the old version runs on, unchanged;
//   3. commit: stop the world; if some thread now runs in a block to be
//      rewritten in place (or cannot be examined while code would be written),
//      resume and prepare again without that; else apply the prepared writes
//      (they cannot fail and allocate nothing) and resume;
//   4. install: the new version becomes current in the loader's books (links,
//      exports, slots, users); the old one is retired. Calls in progress
//      finish in the old code (its blocks stay alive while a stack refers to
//      them), new calls enter the new code, and the code collector frees what
//      nothing reaches.
//
// Which data old and new code see: a data object whose definition did not
// change is shared (one storage, one value). A changed or new one gets fresh
// storage, initialised from its definition; the new code sees that, while old
// code still running keeps reading and writing the storage of its own
// version, which is never freed while the crate is loaded: C code may hold a
// pointer to it anywhere (see `releaseReplacedData`).
//
// A reload may come from any thread: every other thread is stopped while code
// changes (World.swift), and what their stacks hold keeps the old code alive.

import KilnCode

extension Loader {
    /// What one reload did.
    public struct ReloadReport: Sendable, CustomStringConvertible {
        public var crate = ""
        public var version = 0
        public var functionsUnchanged = 0
        public var functionsChanged = 0
        public var functionsAdded = 0
        public var functionsRemoved = 0
        /// Changed functions written over their old block.
        public var rewrittenInPlace = 0
        public var dataKept = 0
        public var dataNew = 0
        /// Whether the TOC of the old version was taken over.
        public var tocKept = false
        /// Records applied again outside the new code (kept blocks, kept data, old code).
        public var recordsReapplied = 0
        /// Call slots and address slots of other crates rewritten.
        public var slotsRewritten = 0
        /// Blocks the code collector freed right after the reload.
        public var blocksFreed = 0

        public var description: String {
            "\(crate) v\(version): \(functionsChanged) changed (\(rewrittenInPlace) in place), \(functionsAdded) added, "
                + "\(functionsRemoved) removed, \(functionsUnchanged) unchanged; data \(dataKept) kept, \(dataNew) new; "
                + "\(recordsReapplied) records and \(slotsRewritten) slots relinked; \(blocksFreed) blocks freed"
        }
    }

    /// Reloads `crate` from `module` now, on the calling thread (any thread: every other
    /// thread is stopped while code changes, and a call in progress anywhere keeps its old
    /// code). Throws, changing nothing, when the new version cannot be linked.
    @discardableResult
    public func reload(_ crate: Crate, with module: CompiledModule) throws(LoadError) -> ReloadReport {
        try reload(crate.state, with: module)
    }

    /// Reloads the crate called `name`; see `reload(_:with:)`.
    @discardableResult
    public func reload(crateNamed name: String, with module: CompiledModule) throws(LoadError) -> ReloadReport {
        guard let crate = lock.locked({ registry.byName[name] }) else { throw .notLoaded(name) }
        return try reload(crate, with: module)
    }

    func reload(_ crate: CrateState, with module: CompiledModule) throws(LoadError) -> ReloadReport {
        let report = try { () throws(LoadError) -> ReloadReport in
            lock.lock()
            defer { lock.unlock() }
            defer { publishCodeChanges() }
            var marker = 0
            let low = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
            return try reload(crate, module, framePointer: nil, low: low)
        }()
        // Exports the new version adds become visible to C as well, when the crate's are
        // (outside the lock: SymbolExports.swift). The reload itself has taken effect.
        try publishExports(of: crate)
        return report
    }

    /// Compacts the code heap now if every thread can be stopped; otherwise at the next
    /// entry into the runtime that can (every call slot is unbound so that one comes soon).
    /// Safe from any thread.
    public func requestCompaction() {
        lock.lock()
        defer { lock.unlock() }
        var marker = 0
        let low = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        compactionRequested = false
        if compact(framePointer: nil, low: low, stress: false).skippedForThreads { unbindAllCallSlots() }
    }

    /// Points every call slot back at its resolver stub, keeping what it was bound to, so
    /// the next call through it enters the runtime and binds it again at once.
    private func unbindAllCallSlots() {
        for crate in registry.all {
            for version in crate.versions {
                for index in version.toc.callSlots.indices {
                    version.toc.store(version.toc.resolverStubs[index], at: version.toc.callSlotAddress(index))
                    noteBinding(of: version, slot: index, to: nil)
                }
            }
        }
    }

    func reload(_ crate: CrateState, _ newModule: CompiledModule, framePointer: UInt?, low: UInt) throws(LoadError) -> ReloadReport {
        guard let old = crate.current, registry.byName[crate.name] === crate else { throw .notLoaded(crate.name) }
        var module = newModule
        module.name = crate.name
        // With the same shape, functions identical to old ones are found before validation (by
        // position, nothing is looked up through an index) and need not be validated again.
        let unchanged: [Bool]? = ReloadPlan.sameShape(old.module, module)
            ? module.functions.indices.map { ReloadPlan.same(old.module, $0, module, $0, byPosition: true) } : nil
        try checkReload(of: crate, to: module, unchanged: unchanged)
        // Blocks that some thread runs in: not rewritten in place. A thread that cannot be
        // examined may run anything: then nothing is.
        let scan = scanAllThreads(framePointer: framePointer, low: low)
        var busy = Set<UInt32>()
        for block in heap.blocks where !scan.isComplete || scan.isBusy(block) { busy.insert(block.id) }
        for attempt in 1...World.attempts {
            let transaction = try prepareReload(crate, from: old, to: module, busy: busy, unchanged: unchanged)
            var refused: [CodeBlock] = []
            refused.reserveCapacity(transaction.rewrites.count)
            let committed = withStoppedWorld(framePointer: framePointer, low: low) { roots, gated -> Bool in
                for rewrite in transaction.rewrites where !roots.isComplete || roots.isBusy(rewrite.block) {
                    refused.append(rewrite.block)
                }
                // Code that a thread which cannot be stopped may run is never written.
                guard refused.isEmpty, roots.isComplete || !transaction.writesCode else { return false }
                commit(transaction, gated: gated)
                return true
            }
            if committed {
                install(transaction)
                var report = transaction.report
                // The commit's scan still holds: once callers, slots and stubs lead to the new
                // code, only what a thread was running then can reach the old.
                report.blocksFreed = collectCode(scan: roots)
                statistics.reloads += 1
                return report
            }
            abandon(transaction)
            // Prepare again without what the stop found running; at the last attempt, with
            // every block of the crate kept out of the way.
            busy.formUnion(refused.map(\.id))
            if attempt == World.attempts - 1 || refused.isEmpty { busy.formUnion(heap.blocks.map(\.id)) }
        }
        throw .threadsNotStopped(crate.name)
    }

    /// Applies a prepared reload's writes; the world is stopped. Allocates nothing.
    private func commit(_ transaction: ReloadTransaction, gated: Bool) {
        for rewrite in transaction.rewrites {
            rewrite.bytes.withUnsafeBytes { heap.write($0, at: rewrite.block.entry) }
        }
        for patch in transaction.patches {
            let target = patch.isCode ? heap.region.writableAlias(of: patch.address)
                : UnsafeMutableRawPointer(bitPattern: patch.address)!
            if patch.width == 8 {
                target.storeBytes(of: patch.value, as: UInt64.self)
            } else {
                target.storeBytes(of: UInt32(truncatingIfNeeded: patch.value), as: UInt32.self)
            }
        }
        for move in transaction.slotMoves {
            UnsafeMutableRawPointer(bitPattern: move.slot)!.storeBytes(of: move.value, as: UInt.self)
        }
        for (stub, block) in transaction.stubMoves {
            // A gated stub gets its target when the gate opens, from `stub.block`.
            stub.block = block
            if !gated { routines.writeStub(at: stub.address, target: block?.entry, in: heap) }
        }
    }

    /// Brings the loader's books up to date with a committed reload (the world runs again).
    private func install(_ transaction: ReloadTransaction) {
        let (crate, old, version, plan) = (transaction.crate, transaction.old, transaction.version, transaction.plan)
        // The same shape exports the same names at the same indices: nothing to change.
        if !plan.sameShape { registry.unregisterExports(of: crate, version: old) }
        crate.retired.insert(old, at: 0)
        crate.current = version
        crate.newest = version
        if !plan.sameShape { registry.registerExports(of: crate) }
        if !transaction.tocKept { registry.registerSlots(of: version, in: crate) } else { takeOverTOC(of: old, into: version, in: crate) }
        for (index, block) in version.blocks.enumerated() {
            block.version = version
            // With the same shape a kept block keeps its index and name.
            if plan.sameShape && plan.kept[index] != nil { continue }
            block.crate = crate
            block.functionIndex = index
            block.name = version.module.functions[index].name
        }
        for rewrite in transaction.rewrites {
            let index = rewrite.block.functionIndex
            heap.resize(rewrite.block, to: version.module.functions[index].code.count, filling: false)
            rewrite.block.isFixed = Self.callsReturnsTwice(version.module.functions[index])
            noteLinks(of: rewrite.block, function: version.module.functions[index], of: version, in: crate)
        }
        for retarget in transaction.retargets { self.retarget(retarget.block, record: retarget.record, to: retarget.target) }
        for move in transaction.slotMoves {
            guard let owner = registry.callSlotOwners[move.slot] else { continue }
            if move.block == nil { owner.version.toc.bindings[owner.index] = nil }
            noteBinding(of: owner.version, slot: owner.index, to: move.block)
        }
        for (stub, block) in transaction.stubMoves {
            if let old = stub.block, old !== block, old.stub === stub { old.stub = nil }
            point(stub, at: block, writing: false)
        }
        for case let oldIndex? in plan.keptData {
            old.ownsData[oldIndex] = false
            // Kept thread data keeps its range, now the new version's to give back.
            guard old.module.data[oldIndex].isThreadLocal, let offset = old.threadOffsets[oldIndex],
                  let position = old.ownedThreadData.firstIndex(where: { $0.offset == offset }) else { continue }
            version.ownedThreadData.append(old.ownedThreadData.remove(at: position))
        }
        registry.noteUsers(of: crate)
    }

    /// Lets the new version use the old version's TOC (same layout): kept code needs no
    /// TOC fix-up and bound call slots stay bound (the commit wrote its address slots).
    private func takeOverTOC(of old: CrateVersion, into version: CrateVersion, in crate: CrateState) {
        version.toc.bindings = old.toc.bindings
        old.ownsTOC = false
        // The slots and what they are bound to pass over with the TOC.
        version.slotBlocks = old.slotBlocks
        old.slotBlocks = Array(repeating: nil, count: old.slotBlocks.count)
        registry.registerSlots(of: version, in: crate)
    }

    /// Refuses a module whose exports clash with another crate's, or that drops an export
    /// another crate uses: calls (bound or not yet), loads or holds the address of. The
    /// error names each such symbol with the crate that uses it and how.
    /// With `unchanged` (the same shape, ReloadPlan.swift) the exports are the old ones and
    /// the functions it marks were valid before: only the rest of the module is checked.
    private func checkReload(of crate: CrateState, to module: CompiledModule, unchanged: [Bool]?) throws(LoadError) {
        do {
            try module.validate(knownValid: unchanged.map { marks in { marks[$0] } })
        } catch {
            throw .invalidModule(module: crate.name, message: error.message)
        }
        if unchanged != nil { return }
        let exported = Set(module.functions.filter(\.isExported).map { unquoted($0.name) }
            + module.data.filter(\.isExported).map { unquoted($0.name) })
        for name in exported {
            if let export = registry.exports[name], export.crate !== crate {
                throw .duplicateExport(symbol: name, first: export.crate.name, second: crate.name)
            }
        }
        var dropped: [UnresolvedSymbol] = []
        for user in registry.userStates(of: crate) where user !== crate {
            var uses: [String: String] = [:]
            for version in user.versions {
                for name in version.toc.callSlots { uses[name] = uses[name] ?? "called by" }
                for name in version.toc.addressSlots + version.externalValues.keys { uses[name] = "address held by" }
            }
            for (name, use) in uses.sorted(by: { $0.key < $1.key }) {
                let bare = unquoted(name)
                guard registry.exports[bare]?.crate === crate, !exported.contains(bare) else { continue }
                dropped.append(UnresolvedSymbol(symbol: name, users: ["(\(use) \(user.name))"], crate: crate.name))
            }
        }
        guard dropped.isEmpty else { throw .reloadDropsExports(crate: crate.name, dropped) }
    }
}
