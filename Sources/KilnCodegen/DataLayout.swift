// Data definitions laid out as bytes with relocation records.
//
// Items are packed as written (QBE adds no padding; front ends emit `z`).
// Integer items are little-endian in their width; symbol items become
// relocations: `l` items 64-bit absolute, `w` items 32-bit absolute. Only the
// bytes that are not zero are kept (as `DataSegment`s): zero fill of any size
// takes no memory in the compiled module.

import KilnCode
import KilnIL

/// Resolves a symbol name of a module to a relocation target.
struct SymbolTable {
    var functions: [Name: Int] = [:]
    var data: [Name: Int] = [:]
    var threadData: Set<Name> = []

    init(_ module: Module) {
        for (index, function) in module.functions.enumerated() { functions[function.name] = index }
        for (index, definition) in module.data.enumerated() {
            data[definition.name] = index
            if definition.linkage.isThread { threadData.insert(definition.name) }
        }
    }

    /// The target for the address of `name`.
    func target(_ name: Name, in module: Module) -> RelocationTarget {
        if let index = functions[name] { return .function(index) }
        if let index = data[name] { return threadData.contains(name) ? .threadLocal(index) : .data(index) }
        return .external(unquoted(module.text(name)))
    }
}

extension RelocationTarget {
    /// The target for this symbol's address used as a value: a function's stub, not its
    /// entry, so the value stays valid when the code moves or is reloaded.
    var asValue: RelocationTarget {
        if case .function(let index) = self { return .stub(index) }
        return self
    }
}

/// Lays out one data definition. Zeros are counted, not stored (DataContents.swift), so a
/// `z` item of any size costs nothing here.
func layOut(_ definition: DataDefinition, in module: Module, symbols: SymbolTable) -> DataObject {
    var contents = DataContents()
    var relocations: [Relocation] = []
    var managedSlots: [UInt32] = []
    for item in definition.items {
        switch item.kind {
        case .zero(let count):
            contents.appendZeros(Int(count))
        case .string(let start, let count):
            contents.append(contentsOf: module.bytes(start: start, count: count))
        case .bits(let bits):
            if item.isManaged { managedSlots.append(offset32(contents.size)) }
            contents.appendLittleEndian(bits, size: item.type.size)
        case .address(let name, let offset):
            // The field stays zero in the contents: the loader writes it when it applies the record.
            let kind: RelocationKind = item.type.size == 8 ? .absolute64 : .absolute32
            relocations.append(Relocation(offset: offset32(contents.size), kind: kind,
                                          target: symbols.target(name, in: module).asValue, addend: offset))
            contents.appendZeros(item.type.size)
        }
    }
    return DataObject(name: module.text(definition.name), isExported: definition.linkage.isExport,
                      isThreadLocal: definition.linkage.isThread, alignment: Int(definition.alignment),
                      size: contents.size, segments: contents.segments, relocations: relocations,
                      managedSlots: managedSlots)
}

/// An offset in a data object as records store it. An object too large for 32-bit offsets
/// is refused as a whole by `CompiledModule.validate()` (which checks sizes before
/// records), so a truncated offset is never used.
private func offset32(_ offset: Int) -> UInt32 {
    UInt32(truncatingIfNeeded: offset)
}
