// A reload prepared in full before anything a program can see changes.
//
// Preparing (the world running, allocation allowed, the loader's lock held)
// does everything that can fail: it places the new version's fresh blocks,
// data and TOC, binds its imports, registers its thread data, writes its new
// code and data where nothing can reach them yet, and computes every write
// that installing it takes, as data:
//   - `rewrites`: changed functions whose new code goes over their old block
//     (it fits and nothing ran in it at the last scan), bytes ready;
//   - `patches`: fields of live code and data, and TOC slots, with their new
//     values: records of kept blocks and kept data whose pointee changed,
//     direct calls of old code into functions that changed, other crates'
//     call slots bound to changed functions and address slots or fields that
//     hold a changed export, and the address slots of a taken-over TOC;
//   - `stubMoves`: callback stubs and the block each jumps to next.
// If any step fails, `abandon` gives back what preparing took and the crate
// is exactly as it was. Committing (Reload.swift) then only applies these
// writes with the world stopped, which cannot fail and allocates nothing.
//
// While preparing, `crate.current` already names the new version (so records
// resolve in its terms); nothing outside the loader reads it, and the lock is
// held until the transaction is committed or abandoned.

import KilnCode

/// One prepared reload; see the file comment.
final class ReloadTransaction {
    /// A write of `width` (4 or 8) bytes at `address`; through the writable alias when the
    /// address is in code.
    struct Patch {
        let address: UInt
        let value: UInt64
        let width: Int
        let isCode: Bool
    }

    /// New code for an old block, applied at the block's place.
    struct Rewrite {
        let block: CodeBlock
        let bytes: [UInt8]
    }

    /// A direct call of a live block that a patch retargets (noted in the links after commit).
    struct Retarget {
        let block: CodeBlock
        let record: Int
        let target: CodeBlock
    }

    /// A call slot of some crate that now reaches `block`, or (nil) goes back to its
    /// resolver stub; `value` is what the slot will hold.
    struct SlotMove {
        let slot: UInt
        let block: CodeBlock?
        let value: UInt
    }

    let crate: CrateState
    let old: CrateVersion
    let version: CrateVersion
    let plan: ReloadPlan
    let tocKept: Bool
    var report: Loader.ReloadReport
    var rewrites: [Rewrite] = []
    var patches: [Patch] = []
    var retargets: [Retarget] = []
    var slotMoves: [SlotMove] = []
    var stubMoves: [(stub: CallbackStub, block: CodeBlock?)] = []
    /// Stubs made while preparing (for functions new to the crate): freed if abandoned.
    var madeStubs: [CallbackStub] = []
    /// Thread-data offsets registered while preparing, with their sizes.
    var threadData: [(offset: Int, size: Int)] = []

    init(crate: CrateState, old: CrateVersion, version: CrateVersion, plan: ReloadPlan, tocKept: Bool,
         report: Loader.ReloadReport) {
        self.crate = crate
        self.old = old
        self.version = version
        self.plan = plan
        self.tocKept = tocKept
        self.report = report
    }

    /// Whether committing writes code that some thread may run (not only slots, stubs
    /// and data, which take single aligned stores).
    var writesCode: Bool { !rewrites.isEmpty || patches.contains { $0.isCode } }

}

extension Loader {
    /// Prepares a reload of `crate` (current version `old`) to `module`; blocks in `busy`
    /// are not rewritten in place. Throws, having given everything back, when any step fails.
    func prepareReload(
        _ crate: CrateState, from old: CrateVersion, to newModule: CompiledModule, busy: Set<UInt32>, unchanged: [Bool]?
    ) throws(LoadError) -> ReloadTransaction {
        try checkpoint()
        let plan = ReloadPlan(old: old, new: newModule, busy: busy, unchanged: unchanged)
        var module = newModule
        if plan.sameShape {
            // A kept function's code object is the old one's: one copy of the bytes and records
            // lives on, and letting the old version go frees next to nothing.
            var functions = module.functions
            for index in functions.indices where plan.kept[index] != nil { functions[index] = old.module.functions[index] }
            module.functions = functions
        }
        let tocKept = module.tocLayout.callSlots == old.toc.callSlots && module.tocLayout.addressSlots == old.toc.addressSlots
        var report = ReloadReport()
        report.crate = crate.name
        report.version = old.number + 1
        report.functionsUnchanged = plan.keptCount
        report.functionsChanged = plan.changed
        report.rewrittenInPlace = plan.inPlaceCount
        report.functionsAdded = plan.added
        report.functionsRemoved = plan.removed
        report.dataKept = plan.keptDataCount
        report.dataNew = module.data.count - plan.keptDataCount
        report.tocKept = tocKept
        let version = try placeVersion(
            module, number: old.number + 1, reusing: { plan.kept[$0] ?? plan.inPlace[$0] },
            dataReused: { index in plan.keptData[index].flatMap { old.dataAddresses[$0] } },
            toc: tocKept ? old.toc : nil, names: plan.sameShape ? old : nil)
        if plan.sameShape {
            // Kept functions and data name what they named before: their bindings, stubs and
            // slot indices carry over, and only the rest is looked at.
            version.externalValues = old.externalValues
            version.stubAddresses = old.stubAddresses
            if tocKept {
                var slots = old.recordSlots
                for index in module.functions.indices where plan.kept[index] == nil {
                    slots[index] = version.slotIndices(ofFunction: index)
                }
                version.recordSlots = slots
            }
        }
        let transaction = ReloadTransaction(crate: crate, old: old, version: version, plan: plan, tocKept: tocKept,
                                            report: report)
        crate.current = version
        do throws(LoadError) {
            try fill(transaction)
        } catch {
            abandon(transaction)
            throw error
        }
        return transaction
    }

    /// The steps of preparing after placement; see the file comment.
    private func fill(_ transaction: ReloadTransaction) throws(LoadError) {
        let (crate, old, version, plan) = (transaction.crate, transaction.old, transaction.version, transaction.plan)
        try checkpoint()
        let unchanged = plan.sameShape
        let unresolved = try bindEagerly(version, of: crate, skipping: (
            { unchanged && plan.kept[$0] != nil }, { unchanged && plan.keptData[$0] != nil }))
        guard unresolved.isEmpty else { throw LoadError.unresolvedSymbols(unresolved) }
        try checkAbsolute32Fields(of: version)
        try checkpoint()
        transaction.threadData = try registerThreadData(
            of: version, in: crate, keeping: { plan.keptData[$0].flatMap { old.threadOffsets[$0] } })
        try checkpoint()
        try resolveStubs(of: transaction)
        for (index, block) in version.blocks.enumerated() where block.version == nil {
            try checkpoint()
            try writeCode(ofFunction: index, of: version, in: crate)
        }
        for (index, object) in version.module.data.enumerated() where plan.keptData[index] == nil {
            try checkpoint()
            try writeData(index, of: version, in: crate)
            _ = object
        }
        if !transaction.tocKept { fillTOC(of: version) }
        try checkpoint()
        try prepareRewrites(transaction)
        try checkpoint()
        try preparePatches(transaction)
        prepareSlotAndStubMoves(transaction)
        try checkpoint()
    }

    /// Gives back everything preparing took; the crate is as it was.
    func abandon(_ transaction: ReloadTransaction) {
        let (crate, old, version, plan) = (transaction.crate, transaction.old, transaction.version, transaction.plan)
        crate.current = old
        // Blocks placed for this version have no version yet; kept and rewritten ones are old's.
        for block in version.blocks where block.version == nil && !block.isFreed { freeBlock(block) }
        for (index, object) in version.module.data.enumerated() where plan.keptData[index] == nil {
            if let address = version.dataAddresses[index] { heap.freeData(address, count: object.size) }
        }
        if !transaction.tocKept {
            heap.freeData(version.toc.address, count: version.toc.size)
            for stub in version.toc.resolverStubs { heap.freeFixed(stub, count: 16) }
        }
        for (offset, size) in transaction.threadData { ThreadLocalData.unregister(offset: offset, size: size) }
        for stub in transaction.madeStubs {
            stubs.remove(stub)
            heap.freeFixed(stub.address, count: 16)
        }
    }

    // MARK: Steps

    /// Looks up (or makes, dead until the commit) the stub of every function whose address
    /// the new version's code or data uses, without re-pointing any live stub.
    private func resolveStubs(of transaction: ReloadTransaction) throws(LoadError) {
        let (version, plan) = (transaction.version, transaction.plan)
        // With the same shape, kept functions and data use stubs already known.
        var objects: [[Relocation]] = []
        for index in version.module.functions.indices where !(plan.sameShape && plan.kept[index] != nil) {
            objects.append(version.module.functions[index].relocations)
        }
        for (index, object) in version.module.data.enumerated() where !(plan.sameShape && plan.keptData[index] != nil) {
            objects.append(object.relocations)
        }
        for relocations in objects {
            for relocation in relocations {
                guard case .stub(let index) = relocation.target, version.stubAddresses[index] == nil else { continue }
                let name = version.bareFunctionNames[index]
                if let stub = stubs.stub(crate: transaction.crate.name, function: name) {
                    stub.isUsedByCode = true
                    version.stubAddresses[index] = stub.address
                } else {
                    let stub = CallbackStub(address: try heap.allocateFixed(16), crateName: transaction.crate.name,
                                            functionName: name)
                    stub.isUsedByCode = true
                    routines.writeStub(at: stub.address, target: nil, in: heap)
                    stubs.add(stub)
                    transaction.madeStubs.append(stub)
                    version.stubAddresses[index] = stub.address
                }
            }
        }
    }

    /// The new code of functions rewritten in place, relocated for their old blocks' places.
    private func prepareRewrites(_ transaction: ReloadTransaction) throws(LoadError) {
        let version = transaction.version
        for index in transaction.plan.inPlace.indices {
            guard let block = transaction.plan.inPlace[index] else { continue }
            let function = version.module.functions[index]
            var bytes = function.code
            bytes.append(contentsOf: repeatElement(0xCC, count: max(0, block.capacity - bytes.count)))
            let failure = bytes.withUnsafeMutableBytes { buffer -> LoadError? in
                do throws(LoadError) {
                    try applyRelocations(function.name, function.relocations, of: version, in: transaction.crate,
                                         objectAddress: block.entry, writableStart: buffer.baseAddress!)
                    return nil
                } catch {
                    return error
                }
            }
            if let failure { throw failure }
            transaction.rewrites.append(ReloadTransaction.Rewrite(block: block, bytes: bytes))
        }
    }

    /// The fields of live code and data, and the slots, that installing the new version
    /// changes (see the file comment).
    private func preparePatches(_ transaction: ReloadTransaction) throws(LoadError) {
        let (crate, old, version, plan) = (transaction.crate, transaction.old, transaction.version, transaction.plan)
        let changed = changedPointees(version, old: old, tocKept: transaction.tocKept, sameShape: plan.sameShape)
        let onlyEntries = changed.allSatisfy { if case .entry = $0 { true } else { false } }
        if plan.sameShape && onlyEntries {
            // Only functions moved: their old blocks' links name every direct call into them,
            // from kept blocks and from old code alike (CodeLinks.swift).
            for case .entry(let index) in changed {
                let target = version.blocks[index]
                for caller in old.blocks[index].callers where !caller.block.isFreed {
                    let block = caller.block, record = Int(caller.record)
                    if plan.isKept(block, in: old) {
                        try patch(record: record, ofFunction: block.functionIndex, of: version, in: crate, into: transaction)
                    } else if !plan.isReplaced(block, in: old), let retired = block.version {
                        let relocation = retired.module.functions[block.functionIndex].relocations[record]
                        try addPatch(relocation, block.name, at: block.entry + UInt(relocation.offset), isCode: true,
                                     target: target.entry, to: transaction)
                        transaction.retargets.append(.init(block: block, record: record, target: target))
                    }
                }
            }
        } else {
            try patchThroughRelinkSections(transaction, changed: changed)
        }
        try patchUsersAndSlots(transaction)
    }

    /// The general case of `preparePatches`: records found through the relink sections.
    private func patchThroughRelinkSections(
        _ transaction: ReloadTransaction, changed: [RelinkSection.Pointee]
    ) throws(LoadError) {
        let (crate, old, version, plan) = (transaction.crate, transaction.old, transaction.version, transaction.plan)
        // Kept code and data of this crate: the records whose pointee changed.
        for pointee in changed {
            for pointer in version.relink.pointers(to: pointee) {
                switch pointer {
                case .code(let function, let record) where plan.kept[function] != nil:
                    try patch(record: record, ofFunction: function, of: version, in: crate, into: transaction)
                case .data(let object, let record) where plan.keptData[object] != nil:
                    let relocation = version.module.data[object].relocations[record]
                    let address = version.dataAddresses[object]! + UInt(relocation.offset)
                    try addPatch(relocation, version.module.data[object].name, at: address, isCode: false,
                                 target: try targetValue(relocation.target, of: version, in: crate), to: transaction)
                default:
                    break
                }
            }
        }
        // Old code (the version being replaced and older ones still alive) calls functions by
        // name: its direct calls into functions that now live elsewhere follow them.
        for retired in [old] + crate.retired {
            for (index, name) in retired.bareFunctionNames.enumerated() {
                guard let newest = version.functionIndex[name] else { continue }
                let target = version.blocks[newest]
                for pointer in retired.relink.pointers(to: .entry(index)) {
                    guard case .code(let user, let record) = pointer else { continue }
                    let block = retired.blocks[user]
                    // Blocks the new version keeps or rewrites were handled above.
                    guard block.version === retired, !block.isFreed, !plan.isReplaced(block, in: old),
                          block.callees.indices.contains(record), block.callees[record] !== target else { continue }
                    let relocation = retired.module.functions[user].relocations[record]
                    try addPatch(relocation, retired.module.functions[user].name,
                                 at: block.entry + UInt(relocation.offset), isCode: true, target: target.entry,
                                 to: transaction)
                    transaction.retargets.append(.init(block: block, record: record, target: target))
                }
            }
        }
    }

    /// Other crates' address slots and fields that hold a changed export, and a taken-over
    /// TOC's address slots.
    private func patchUsersAndSlots(_ transaction: ReloadTransaction) throws(LoadError) {
        let (crate, old, version, plan) = (transaction.crate, transaction.old, transaction.version, transaction.plan)
        // Exported functions are reached through stubs, which do not move: only exported
        // data can have a new address.
        let dataExportMoved = version.module.data.indices.contains { index in
            version.module.data[index].isExported && plan.keptData[index] == nil
        }
        // Other crates' address slots and fields that hold a stable address of a changed export.
        for user in registry.userStates(of: crate) where user !== crate && dataExportMoved {
            for userVersion in user.versions {
                for (name, value) in userVersion.externalValues where registry.exports[unquoted(name)]?.crate === crate {
                    guard let now = try newStableAddress(of: name, exportedBy: transaction), now != value else { continue }
                    if let slot = userVersion.toc.addressSlotIndex[name] {
                        transaction.patches.append(.init(address: userVersion.toc.addressSlotAddress(slot), value: UInt64(now),
                                                         width: 8, isCode: false))
                        transaction.report.slotsRewritten += 1
                    }
                    for pointer in userVersion.relink.pointers(to: .symbol(name)) {
                        switch pointer {
                        case .code(let function, let record) where userVersion.blocks[function].version === userVersion:
                            let block = userVersion.blocks[function]
                            let relocation = userVersion.module.functions[function].relocations[record]
                            try addPatch(relocation, userVersion.module.functions[function].name,
                                         at: block.entry + UInt(relocation.offset), isCode: true, target: now, to: transaction)
                        case .data(let object, let record):
                            guard let base = userVersion.dataAddresses[object] else { continue }
                            let relocation = userVersion.module.data[object].relocations[record]
                            try addPatch(relocation, userVersion.module.data[object].name, at: base + UInt(relocation.offset),
                                         isCode: false, target: now, to: transaction)
                        default:
                            continue
                        }
                    }
                }
            }
        }
        // A taken-over TOC keeps its call slots; its address slots get the new values.
        if transaction.tocKept {
            for (index, name) in version.toc.addressSlots.enumerated() {
                let value = version.externalValues[name]!
                if value != old.externalValues[name] {
                    transaction.patches.append(.init(address: version.toc.addressSlotAddress(index), value: UInt64(value),
                                                     width: 8, isCode: false))
                }
            }
        }
    }

    /// Call slots of any crate bound to a function of this crate that moved or went, and
    /// the crate's stubs.
    private func prepareSlotAndStubMoves(_ transaction: ReloadTransaction) {
        let (old, version, plan) = (transaction.old, transaction.version, transaction.plan)
        for (index, block) in old.blocks.enumerated() where !block.boundSlots.isEmpty && plan.role[index] != .kept {
            let newIndex = plan.sameShape ? index : version.functionIndex[old.bareFunctionNames[index]]
            let next = newIndex.map { version.blocks[$0] }
            guard next !== block else { continue }
            // Only an export can be bound from another crate; a slot whose function went
            // back to being unexported or was removed returns to its resolver stub, which
            // reports the missing symbol by name at the next call.
            let target = newIndex.flatMap { version.module.functions[$0].isExported ? version.blocks[$0] : nil }
            for slot in block.boundSlots {
                guard let owner = registry.callSlotOwners[slot] else { continue }
                let value = target?.entry ?? owner.version.toc.resolverStubs[owner.index]
                transaction.slotMoves.append(.init(slot: slot, block: target, value: value))
                transaction.report.slotsRewritten += 1
            }
        }
        for stub in stubs.stubs(ofCrate: transaction.crate.name) {
            let next: CodeBlock?
            if plan.sameShape, let block = stub.block, block.version === old {
                next = version.blocks[block.functionIndex]
            } else {
                next = version.functionIndex[stub.functionName].map { version.blocks[$0] }
            }
            if next !== stub.block || transaction.madeStubs.contains(where: { $0 === stub }) {
                transaction.stubMoves.append((stub, next))
            }
        }
    }

    // MARK: Helpers

    private func patch(record: Int, ofFunction function: Int, of version: CrateVersion, in crate: CrateState,
                       into transaction: ReloadTransaction) throws(LoadError) {
        let block = version.blocks[function]
        let relocation = version.module.functions[function].relocations[record]
        try addPatch(relocation, version.module.functions[function].name, at: block.entry + UInt(relocation.offset),
                     isCode: true, target: try targetValue(relocation.target, of: version, in: crate), to: transaction)
        if case .function(let index) = relocation.target {
            transaction.retargets.append(.init(block: block, record: record, target: version.blocks[index]))
        }
    }

    private func addPatch(_ relocation: Relocation, _ objectName: String, at address: UInt, isCode: Bool, target: UInt,
                          to transaction: ReloadTransaction) throws(LoadError) {
        let value: UInt64
        do {
            value = try relocation.fieldValue(targetValue: UInt64(target), fieldAddress: UInt64(address))
        } catch {
            switch error {
            case .outOfRange(let value, _):
                throw .relocationOutOfRange(object: objectName, offset: relocation.offset, relocation: relocation, value: value)
            }
        }
        transaction.patches.append(.init(address: address, value: value, width: relocation.kind.size, isCode: isCode))
        transaction.report.recordsReapplied += 1
    }

    /// The stable address `name` (an export of the reloaded crate) will have once the
    /// transaction is installed.
    private func newStableAddress(of name: String, exportedBy transaction: ReloadTransaction) throws(LoadError) -> UInt? {
        let bare = unquoted(name)
        let version = transaction.version
        if let index = version.functionIndex[bare] {
            return try stubAddress(crate: transaction.crate, functionName: version.module.functions[index].name,
                                   repointing: false)
        }
        if let index = version.module.data.firstIndex(where: { unquoted($0.name) == bare }) {
            return UInt(bitPattern: version.address(ofData: index))
        }
        return nil
    }

    /// The pointees of `version` that differ from `old`'s pointees of the same name.
    func changedPointees(_ version: CrateVersion, old: CrateVersion, tocKept: Bool, sameShape: Bool) -> [RelinkSection.Pointee] {
        var changed: [RelinkSection.Pointee] = []
        for (index, name) in version.bareFunctionNames.enumerated() {
            let before = (sameShape ? index : old.functionIndex[name]).map { old.blocks[$0].entry }
            if before != version.blocks[index].entry { changed.append(.entry(index)) }
        }
        var oldData: [String: Int] = [:]
        if !sameShape {
            for (index, object) in old.module.data.enumerated() { oldData[unquoted(object.name)] = index }
        }
        for (index, object) in version.module.data.enumerated() {
            let before = sameShape ? index : oldData[unquoted(object.name)]
            if object.isThreadLocal {
                if before.flatMap({ old.threadOffsets[$0] }) != version.threadOffsets[index] { changed.append(.threadData(index)) }
            } else if before.flatMap({ old.dataAddresses[$0] }) != version.dataAddresses[index] {
                changed.append(.data(index))
            }
        }
        for (name, value) in version.externalValues where old.externalValues[name] != value {
            changed.append(.symbol(name))
        }
        if !tocKept {
            changed += version.toc.callSlots.indices.map { .callSlot($0) }
            changed += version.toc.addressSlots.indices.map { .addressSlot($0) }
        }
        return changed
    }

    /// A test's hook: the step of preparing a reload that fails (0, 1, ...), or nil.
    func checkpoint() throws(LoadError) {
        guard let failing = reloadFaultStep else { return }
        defer { reloadFaultStep = failing - 1 }
        if failing == 0 { throw .injectedFault }
    }
}
