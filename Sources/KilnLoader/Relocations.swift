// Applying relocation records: the one place where the loader turns a record
// into a field, always through `Relocation.apply`, so loading, compaction and
// reloading compute fields the same way.
//
// Records are applied per crate version. A call to a function of the same
// crate (`.function`) goes to the *current* version of that function when
// there is one, so code of a retired version that is still running (a loop
// in an old `main`) calls the new code after a reload; it keeps its own
// version's data, TOC and any function the reload removed.

import KilnCode

extension Loader {
    /// The value a record's target has now, for `version` of `crate`.
    func targetValue(_ target: RelocationTarget, of version: CrateVersion, in crate: CrateState) throws(LoadError) -> UInt {
        switch target {
        case .function(let index):
            return callee(index, of: version, in: crate).entry
        case .stub(let index):
            if let address = version.stubAddresses[index] { return address }
            let address = try stubAddress(crate: crate, functionName: version.module.functions[index].name)
            version.stubAddresses[index] = address
            return address
        case .data(let index): return version.dataAddresses[index]!
        case .threadLocal(let index): return UInt(version.threadOffsets[index]!)
        case .external(let name): return version.externalValues[name]!
        case .callSlot(let name): return version.toc.callSlotAddress(version.toc.callSlotIndex[name]!)
        case .addressSlot(let name): return version.toc.addressSlotAddress(version.toc.addressSlotIndex[name]!)
        }
    }

    /// Applies every record of function `index` of `version` at its block's current place,
    /// and notes the block's links (CodeLinks.swift).
    func applyRelocations(ofFunction index: Int, of version: CrateVersion, in crate: CrateState) throws(LoadError) {
        let block = version.blocks[index]
        let function = version.module.functions[index]
        defer { noteLinks(of: block, function: function, of: version, in: crate) }
        let writable = heap.region.writableAlias(of: block.entry)
        let slots = version.recordSlots[index]
        for (record, relocation) in function.relocations.enumerated() {
            let slot = slots[record]
            guard slot >= 0 else {
                try apply(relocation, function.name, of: version, in: crate, objectAddress: block.entry, writableStart: writable)
                continue
            }
            // A TOC slot: its address is the TOC's plus eight per slot, no name to look up.
            try store(relocation, function.name, target: version.toc.address + UInt(8 * Int(slot)),
                      objectAddress: block.entry, writableStart: writable)
        }
    }

    /// Applies `relocations` to an object whose first byte lives at `objectAddress` (the
    /// address code sees) and is written at `writableStart` (the same place, or its
    /// writable alias, or a template buffer).
    func applyRelocations(
        _ objectName: String, _ relocations: [Relocation], of version: CrateVersion, in crate: CrateState,
        objectAddress: UInt, writableStart: UnsafeMutableRawPointer
    ) throws(LoadError) {
        for relocation in relocations {
            try apply(relocation, objectName, of: version, in: crate, objectAddress: objectAddress,
                      writableStart: writableStart)
        }
    }

    /// Applies one record; see `applyRelocations`.
    func apply(
        _ relocation: Relocation, _ objectName: String, of version: CrateVersion, in crate: CrateState,
        objectAddress: UInt, writableStart: UnsafeMutableRawPointer
    ) throws(LoadError) {
        let target = try targetValue(relocation.target, of: version, in: crate)
        do {
            try store(relocation, objectName, target: target, objectAddress: objectAddress, writableStart: writableStart)
        } catch {
            // With the region below 4 GiB, only an addend can push a field past 32 bits.
            let isTargetHigh = !heap.region.contains(target) || !heap.region.isBelow4GiB
            guard relocation.kind == .absolute32, isTargetHigh else { throw error }
            throw .addressBeyond32Bits(object: objectName, offset: relocation.offset,
                                       symbol: version.module.symbolName(of: relocation.target),
                                       address: UInt64(target), inRegion: heap.region.contains(target))
        }
    }

    /// Refuses a version whose 32-bit absolute fields (`w $symbol` data items) cannot hold
    /// their symbols' addresses, before anything is written: the loader's own objects have
    /// such addresses only when its region lies below 4 GiB, C libraries' symbols seldom do.
    /// The external symbols must be bound.
    func checkAbsolute32Fields(of version: CrateVersion) throws(LoadError) {
        for object in version.module.data {
            for relocation in object.relocations where relocation.kind == .absolute32 {
                var address = UInt64(heap.region.base)
                if case .external(let name) = relocation.target, let value = version.externalValues[name] {
                    address = UInt64(value)
                } else if heap.region.isBelow4GiB {
                    continue  // every object of the region fits; `apply` checks the addend
                }
                guard address &+ UInt64(bitPattern: relocation.addend) > UInt64(UInt32.max) else { continue }
                throw .addressBeyond32Bits(object: object.name, offset: relocation.offset,
                                           symbol: version.module.symbolName(of: relocation.target),
                                           address: address, inRegion: heap.region.contains(UInt(address)))
            }
        }
    }

    /// Applies record `record` of a placed block again, in its version's terms, for a direct
    /// call through the callee the links name. Allocates nothing when the record's targets
    /// were resolved before (as they are for every placed block): compaction runs it while
    /// the world is stopped.
    func reapplyInPlace(_ block: CodeBlock, record: Int) {
        guard let version = block.version else { return }
        let relocation = version.module.functions[block.functionIndex].relocations[record]
        let target: UInt
        switch relocation.target {
        case .function:
            guard let callee = block.callees[record] else { return }
            target = callee.entry
        case .callSlot, .addressSlot:
            target = version.toc.address + UInt(8 * Int(version.recordSlots[block.functionIndex][record]))
        case .stub(let index):
            guard let address = version.stubAddresses[index] else { return }
            target = address
        case .data(let index):
            guard let address = version.dataAddresses[index] else { return }
            target = address
        case .threadLocal(let index):
            guard let offset = version.threadOffsets[index] else { return }
            target = UInt(offset)
        case .external(let name):
            guard let value = version.externalValues[name] else { return }
            target = value
        }
        // Safe: `validate` checked that the field lies inside the code, and a pc-relative
        // field between two places of one region always fits.
        try? relocation.apply(targetValue: UInt64(target), fieldAddress: UInt64(block.entry) + UInt64(relocation.offset),
                              writingTo: heap.region.writableAlias(of: block.entry) + Int(relocation.offset))
    }

    /// Writes one record's field for a target value already known.
    private func store(
        _ relocation: Relocation, _ objectName: String, target: UInt, objectAddress: UInt,
        writableStart: UnsafeMutableRawPointer
    ) throws(LoadError) {
        do {
            // Safe: `validate` checked that offset + field size lies inside the object.
            try relocation.apply(targetValue: UInt64(target), fieldAddress: UInt64(objectAddress) + UInt64(relocation.offset),
                                 writingTo: writableStart + Int(relocation.offset))
        } catch {
            switch error {
            case .outOfRange(let value, _):
                throw .relocationOutOfRange(object: objectName, offset: relocation.offset, relocation: relocation, value: value)
            }
        }
    }
}
