// Hot reload: replacing a crate's code while the program runs.
//
// `reload(_:with:)` makes a new version of a crate from a new module:
//   1. check: the module is valid, exports nothing another crate exports, and
//      still exports everything other crates use as an address;
//   2. match functions and data objects by name. A function whose code and
//      records are unchanged keeps its block; a changed one is rewritten in
//      its old block when it fits and no frame on the stack runs in it, else
//      placed fresh. A data object whose definition is unchanged keeps its
//      storage and so its value; a new or changed one starts from its
//      initialiser. The TOC is taken over when its layout is unchanged;
//   3. if anything fails so far (no room, a name nothing defines), everything
//      allocated is given back and the crate is as it was;
//   4. commit, relinking incrementally: records of kept blocks and data are
//      applied again only where their pointee changed (found through the
//      relink section by pointee); call slots of other crates bound to this
//      crate's functions, address slots and fields that hold its changed
//      exports, and its callback stubs are re-pointed. Users are not searched:
//      the loader's users list says which crates import from this one;
//   5. the old version is retired: calls in progress finish in it (their
//      blocks stay alive through their return addresses), new calls enter the
//      new code; the code collector frees what nothing reaches.
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
        guard let crate = lock.locked({ crateByName[name] }) else { throw .notLoaded(name) }
        return try reload(crate, with: module)
    }

    func reload(_ crate: CrateState, with module: CompiledModule) throws(LoadError) -> ReloadReport {
        lock.lock()
        defer { lock.unlock() }
        var marker = 0
        let low = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        return try reload(crate, module, framePointer: nil, low: low)
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
        for crate in crates + unloadedCrates {
            for version in crate.versions {
                for index in version.toc.callSlots.indices {
                    version.toc.store(version.toc.resolverStubs[index], at: version.toc.callSlotAddress(index))
                    noteBinding(of: version, slot: index, to: nil)
                }
            }
        }
    }

    func reload(_ crate: CrateState, _ newModule: CompiledModule, framePointer: UInt?, low: UInt) throws(LoadError) -> ReloadReport {
        guard let old = crate.current, crateByName[crate.name] === crate else { throw .notLoaded(crate.name) }
        var module = newModule
        module.name = crate.name
        try checkReload(of: crate, to: module)
        var report = ReloadReport()
        report.crate = crate.name
        report.version = old.number + 1

        let outcome: Result<ReloadReport, LoadError> = withStoppedWorld(framePointer: framePointer, low: low) { roots, _ in
            do throws(LoadError) {
                return .success(try reload(crate, module, from: old, roots: roots, report: report))
            } catch {
                return .failure(error)
            }
        }
        report = try outcome.get()
        report.blocksFreed = collectCode(framePointer: framePointer, low: low)
        statistics.reloads += 1
        return report
    }

    private func reload(
        _ crate: CrateState, _ module: CompiledModule, from old: CrateVersion, roots: RootScan, report: ReloadReport
    ) throws(LoadError) -> ReloadReport {
        var report = report
        // A block that some thread runs in, or any block when a thread could not be
        // examined, is never rewritten in place.
        var busy = Set<UInt32>()
        for block in heap.blocks where !roots.isComplete || roots.isBusy(block) { busy.insert(block.id) }
        let plan = ReloadPlan(old: old, new: module, busy: busy)
        report.functionsUnchanged = plan.kept.count
        report.functionsChanged = plan.changed
        report.rewrittenInPlace = plan.inPlace.count
        report.functionsAdded = plan.added
        report.functionsRemoved = plan.removed.count
        report.dataKept = plan.keptData.count
        report.dataNew = module.data.count - plan.keptData.count

        let version = try placeVersion(
            module, number: old.number + 1, reusing: { index, _ in plan.kept[index] ?? plan.inPlace[index] },
            dataReused: { index in plan.keptData[index].flatMap { old.dataAddresses[$0] } })
        let tocKept = version.toc.callSlots == old.toc.callSlots && version.toc.addressSlots == old.toc.addressSlots
        do throws(LoadError) {
            let unresolved = try bindEagerly(version, of: crate)
            guard unresolved.isEmpty else { throw LoadError.unresolvedSymbols(unresolved) }
            try checkAbsolute32Fields(of: version)
            try registerThreadData(of: version, in: crate,
                                   keeping: { plan.keptData[$0].flatMap { old.threadOffsets[$0] } })
        } catch {
            abandon(version, plan: plan)
            throw error
        }
        if tocKept { takeOverTOC(of: old, into: version) }
        report.tocKept = tocKept
        try commit(version, of: crate, replacing: old, plan: plan, tocKept: tocKept, report: &report)
        return report
    }

    /// Refuses a module whose exports clash with another crate's, or that drops an export
    /// another crate holds the address of.
    private func checkReload(of crate: CrateState, to module: CompiledModule) throws(LoadError) {
        do {
            try module.validate()
        } catch {
            throw .invalidModule(module: crate.name, message: error.message)
        }
        let exported = Set(module.functions.filter(\.isExported).map { unquoted($0.name) }
            + module.data.filter(\.isExported).map { unquoted($0.name) })
        for name in exported {
            if let export = exports[name], export.crate !== crate {
                throw .duplicateExport(symbol: name, first: export.crate.name, second: crate.name)
            }
        }
        var dropped: [UnresolvedSymbol] = []
        for user in userStates(of: crate) where user !== crate {
            for version in user.versions {
                let names = version.externalValues.keys.filter { exports[unquoted($0)]?.crate === crate && !exported.contains(unquoted($0)) }
                for name in names.sorted() {
                    dropped.append(UnresolvedSymbol(symbol: name, users: ["(address held by \(user.name))"], crate: crate.name))
                }
            }
        }
        guard dropped.isEmpty else { throw .unresolvedSymbols(dropped) }
    }

    /// Gives back what `placeVersion` allocated for a reload that cannot go on.
    private func abandon(_ version: CrateVersion, plan: ReloadPlan) {
        let handedOver = Set(plan.kept.values.map(\.id) + plan.inPlace.values.map(\.id))
        for block in version.blocks where !handedOver.contains(block.id) { freeBlock(block) }
        for (index, object) in version.module.data.enumerated() where plan.keptData[index] == nil {
            if let address = version.dataAddresses[index] { heap.freeData(address, count: object.size) }
        }
        heap.freeData(version.toc.address, count: version.toc.size)
        for stub in version.toc.resolverStubs { heap.freeFixed(stub, count: 16) }
    }

    /// Lets the new version use the old version's TOC (same layout): kept code needs no
    /// TOC fix-up and bound call slots stay bound.
    private func takeOverTOC(of old: CrateVersion, into version: CrateVersion) {
        heap.freeData(version.toc.address, count: version.toc.size)
        for stub in version.toc.resolverStubs { heap.freeFixed(stub, count: 16) }
        var toc = old.toc
        for (index, name) in toc.addressSlots.enumerated() {
            toc.store(version.externalValues[name]!, at: toc.addressSlotAddress(index))
        }
        version.toc = toc
        old.ownsTOC = false
        // The slots and what they are bound to pass over with the TOC.
        version.slotBlocks = old.slotBlocks
        old.slotBlocks = Array(repeating: nil, count: old.slotBlocks.count)
    }
}
