// Applying relocation records: the one place where the loader turns a record
// into a field, always through `Relocation.apply`, so loading, compaction and
// relinking compute fields the same way.

import KilnCode

extension Loader {
    /// The value a record's target has now, in `crate`.
    func targetValue(_ target: RelocationTarget, in crate: Crate) throws(LoadError) -> UInt {
        switch target {
        case .function(let index): return crate.blocks[index].entry
        case .stub(let index): return try stubAddress(crate: crate, function: index)
        case .data(let index): return crate.dataAddresses[index]!
        case .threadLocal(let index): return UInt(crate.threadOffsets[index]!)
        case .external(let name): return crate.externalValues[name]!
        case .callSlot(let name): return crate.toc.callSlotAddress(crate.toc.callSlotIndex[name]!)
        case .addressSlot(let name): return crate.toc.addressSlotAddress(crate.toc.addressSlotIndex[name]!)
        }
    }

    /// Applies every record of function `index` at its block's current place.
    func applyRelocations(ofFunction index: Int, in crate: Crate) throws(LoadError) {
        let block = crate.blocks[index]
        let function = crate.module.functions[index]
        try applyRelocations(function.name, function.relocations, in: crate, objectAddress: block.entry,
                             writableStart: heap.region.writableAlias(of: block.entry))
    }

    /// Applies `relocations` to an object whose first byte lives at `objectAddress` (the
    /// address code sees) and is written at `writableStart` (the same place, or its
    /// writable alias, or a template buffer).
    func applyRelocations(
        _ objectName: String, _ relocations: [Relocation], in crate: Crate,
        objectAddress: UInt, writableStart: UnsafeMutableRawPointer
    ) throws(LoadError) {
        for relocation in relocations {
            let target = try targetValue(relocation.target, in: crate)
            do {
                // Safe: `validate` checked that offset + field size lies inside the object.
                try relocation.apply(targetValue: UInt64(target), fieldAddress: UInt64(objectAddress) + UInt64(relocation.offset),
                                     writingTo: writableStart + Int(relocation.offset))
            } catch {
                switch error {
                case .outOfRange(let value, _):
                    throw .relocationOutOfRange(
                        object: objectName, offset: relocation.offset, relocation: relocation, value: value)
                }
            }
        }
    }
}
