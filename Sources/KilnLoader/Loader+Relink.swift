// Committing a reload: the new version becomes current and every reference
// that must change is relinked, and only those (see Loader+Reload.swift).
//
// What changed is decided per pointee, in the new version's terms: a
// function entry at a new address, a data object or thread datum in new
// storage, an imported symbol now bound to another address, and, when the
// TOC was not taken over, every TOC slot. Kept blocks and kept data objects
// get exactly the records that point at changed pointees, found through the
// new version's relink section; older versions' code gets its calls to
// changed functions re-pointed (through their own relink sections); other
// crates get their call slots, address slots and fields that refer to this
// crate's exports re-pointed.

import KilnCode

extension Loader {
    func commit(
        _ version: CrateVersion, of crate: CrateState, replacing old: CrateVersion, plan: ReloadPlan, tocKept: Bool,
        report: inout ReloadReport
    ) throws(LoadError) {
        let module = version.module
        unregisterExports(of: crate)
        crate.retired.insert(old, at: 0)
        crate.current = version
        crate.newest = version
        registerExports(of: crate)
        registerSlots(of: version, in: crate)
        for (index, block) in version.blocks.enumerated() {
            block.crate = crate
            block.version = version
            block.functionIndex = index
            block.name = module.functions[index].name
            if plan.inPlace[index] != nil { heap.resize(block, to: module.functions[index].code.count) }
        }
        for oldIndex in plan.keptData.values { old.ownsData[oldIndex] = false }

        for index in module.functions.indices where plan.kept[index] == nil {
            try writeCode(ofFunction: index, of: version, in: crate)
        }
        for index in module.data.indices where plan.keptData[index] == nil {
            try writeData(index, of: version, in: crate)
        }
        if !tocKept { fillTOC(of: version) }

        // Kept code and data: only the records whose pointee changed.
        let changed = changedPointees(version, old: old, tocKept: tocKept)
        for pointee in changed {
            for pointer in version.relink.pointers(to: pointee) {
                switch pointer {
                case .code(let function, let record) where plan.kept[function] != nil:
                    try reapply(record, ofFunction: function, of: version, in: crate)
                    report.recordsReapplied += 1
                case .data(let object, let record) where plan.keptData[object] != nil:
                    try reapply(record, ofData: object, of: version, in: crate)
                    report.recordsReapplied += 1
                default:
                    break
                }
            }
        }
        report.recordsReapplied += try repointOldCalls(of: crate)
        report.slotsRewritten += rebindCallSlots(in: userStates(of: crate)) { $0 == crate.name }
        try relinkUsers(of: crate, report: &report)
        repointStubs(of: crate)
        noteUsers(of: crate)
    }

    /// The pointees of `version` that differ from `old`'s pointees of the same name.
    private func changedPointees(_ version: CrateVersion, old: CrateVersion, tocKept: Bool) -> [RelinkSection.Pointee] {
        var changed: [RelinkSection.Pointee] = []
        for (index, function) in version.module.functions.enumerated() {
            let before = old.functionIndex[unquoted(function.name)].map { old.blocks[$0].entry }
            if before != version.blocks[index].entry { changed.append(.entry(index)) }
        }
        var oldData: [String: Int] = [:]
        for (index, object) in old.module.data.enumerated() { oldData[unquoted(object.name)] = index }
        for (index, object) in version.module.data.enumerated() {
            let before = oldData[unquoted(object.name)]
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

    private func reapply(_ record: Int, ofFunction index: Int, of version: CrateVersion, in crate: CrateState) throws(LoadError) {
        let block = version.blocks[index]
        let function = version.module.functions[index]
        if case .function(let target) = function.relocations[record].target {
            retarget(block, record: record, to: callee(target, of: version, in: crate))
        }
        try apply(function.relocations[record], function.name, of: version, in: crate, objectAddress: block.entry,
                  writableStart: heap.region.writableAlias(of: block.entry))
    }

    private func reapply(_ record: Int, ofData index: Int, of version: CrateVersion, in crate: CrateState) throws(LoadError) {
        guard let address = version.dataAddresses[index] else { return }
        let object = version.module.data[index]
        try apply(object.relocations[record], object.name, of: version, in: crate, objectAddress: address,
                  writableStart: UnsafeMutableRawPointer(bitPattern: address)!)
    }

    /// Re-points the direct calls of retired versions' code at the current version's
    /// functions of the same name. Returns the number of records applied.
    private func repointOldCalls(of crate: CrateState) throws(LoadError) -> Int {
        guard let current = crate.current else { return 0 }
        var count = 0
        for version in crate.retired {
            for (index, function) in version.module.functions.enumerated() {
                guard let newest = current.functionIndex[unquoted(function.name)],
                      current.blocks[newest] !== version.blocks[index] else { continue }
                for pointer in version.relink.pointers(to: .entry(index)) {
                    guard case .code(let user, let record) = pointer,
                          version.blocks[user].version === version, !version.blocks[user].isFreed else { continue }
                    try reapply(record, ofFunction: user, of: version, in: crate)
                    count += 1
                }
            }
        }
        return count
    }

    /// Rewrites address slots and fields of other crates that hold a stable address of
    /// one of `crate`'s exports that changed.
    private func relinkUsers(of crate: CrateState, report: inout ReloadReport) throws(LoadError) {
        for user in userStates(of: crate) where user !== crate {
            for version in user.versions {
                for (name, value) in version.externalValues where exports[unquoted(name)]?.crate === crate {
                    guard let now = try stableAddress(of: name), now != value else { continue }
                    version.externalValues[name] = now
                    if let slot = version.toc.addressSlotIndex[name] {
                        version.toc.store(now, at: version.toc.addressSlotAddress(slot))
                        report.slotsRewritten += 1
                    }
                    for pointer in version.relink.pointers(to: .symbol(name)) {
                        switch pointer {
                        case .code(let function, let record) where version.blocks[function].version === version:
                            try reapply(record, ofFunction: function, of: version, in: user)
                        case .data(let object, let record):
                            try reapply(record, ofData: object, of: version, in: user)
                        default:
                            continue
                        }
                        report.recordsReapplied += 1
                    }
                }
            }
        }
    }
}
