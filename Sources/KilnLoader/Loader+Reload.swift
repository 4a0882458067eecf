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
// From another thread, `requestReload` queues the module and unbinds every
// bound call slot, so the program's next call through any TOC enters the
// runtime, where the reload is applied on the program's own thread (its stack
// is then walked precisely). A program busy in a loop that calls C functions
// therefore takes the reload at its next C call.

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

    /// A reload waiting for the program's next entry into the runtime.
    struct PendingReload {
        let crate: String
        let module: CompiledModule
        let completion: (Result<ReloadReport, LoadError>) -> Void
    }

    /// Reloads `crate` from `module` now, on the calling thread, which must be the only one
    /// running the loader's code (frames of generated code on this stack are found
    /// conservatively). Throws, changing nothing, when the new version cannot be linked.
    @discardableResult
    public func reload(_ crate: Crate, with module: CompiledModule) throws(LoadError) -> ReloadReport {
        try reload(crate.state, with: module)
    }

    func reload(_ crate: CrateState, with module: CompiledModule) throws(LoadError) -> ReloadReport {
        lock.lock()
        defer { lock.unlock() }
        var marker = 0
        let low = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        return try reload(crate, module, framePointer: nil, low: low)
    }

    /// Queues a reload of the crate called `name` for the program's next entry into the
    /// runtime and makes that entry come soon (every bound call slot is unbound). Safe
    /// from any thread; `completion` runs on the thread that applies the reload.
    public func requestReload(
        crateNamed name: String, with module: CompiledModule,
        completion: @escaping (Result<ReloadReport, LoadError>) -> Void
    ) {
        lock.lock()
        defer { lock.unlock() }
        pendingReloads.append(PendingReload(crate: name, module: module, completion: completion))
        unbindAllCallSlots()
    }

    /// Asks for a compaction at the program's next entry into the runtime (see
    /// `requestReload`). Safe from any thread.
    public func requestCompaction() {
        lock.lock()
        defer { lock.unlock() }
        compactionRequested = true
        unbindAllCallSlots()
    }

    /// Points every call slot back at its resolver stub, keeping what it was bound to, so
    /// the next call through it enters the runtime and binds it again at once.
    private func unbindAllCallSlots() {
        for crate in crates + unloadedCrates {
            for version in crate.versions {
                for index in version.toc.callSlots.indices {
                    version.toc.store(version.toc.resolverStubs[index], at: version.toc.callSlotAddress(index))
                }
            }
        }
    }

    /// Applies queued reloads now, from the host (see `reload(_:with:)` for the conditions).
    public func applyPendingReloads() {
        lock.lock()
        defer { lock.unlock() }
        var marker = 0
        let low = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        applyPendingReloads(framePointer: nil, low: low)
    }

    /// Applies queued reloads from a runtime entry.
    func applyPendingReloads(framePointer: UInt) {
        applyPendingReloads(framePointer: framePointer, low: framePointer)
    }

    private func applyPendingReloads(framePointer: UInt?, low: UInt) {
        let queued = pendingReloads
        pendingReloads = []
        for request in queued {
            guard let crate = crateByName[request.crate] else {
                request.completion(.failure(.notLoaded(request.crate)))
                continue
            }
            do {
                request.completion(.success(try reload(crate, request.module, framePointer: framePointer, low: low)))
            } catch {
                request.completion(.failure(error))
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

        let scan = heap.scanStack(framePointer: framePointer, low: low)
        // With another thread in the runtime any block may be running: none is rewritten.
        let busy = isAlone ? Set(scan.frames.map(\.block.id) + scan.pinned.map(\.id)) : Set(heap.blocks.map(\.id))
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
        report.blocksFreed = collectCode(scan: scan)
        statistics.reloads += 1
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
        for block in version.blocks where !handedOver.contains(block.id) { heap.free(block) }
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
    }
}
