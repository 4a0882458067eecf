// Data definitions laid out as bytes with relocation records.
//
// Items are packed as written (QBE adds no padding; front ends emit `z`).
// Integer items are little-endian in their width; symbol items become
// relocations: `l` items 64-bit absolute, `w` items 32-bit absolute.

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

/// Lays out one data definition.
func layOut(_ definition: DataDefinition, in module: Module, symbols: SymbolTable) -> DataObject {
    var bytes: [UInt8] = []
    var relocations: [Relocation] = []
    var managedSlots: [UInt32] = []
    bytes.reserveCapacity(Int(min(definition.size, 1 << 20)))
    for item in definition.items {
        switch item.kind {
        case .zero(let count):
            bytes.append(contentsOf: repeatElement(0, count: Int(count)))
        case .string(let start, let count):
            bytes.append(contentsOf: module.bytes(start: start, count: count))
        case .bits(let bits):
            if item.isManaged { managedSlots.append(UInt32(bytes.count)) }
            for shift in 0..<item.type.size { bytes.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(shift)))) }
        case .address(let name, let offset):
            let kind: RelocationKind = item.type.size == 8 ? .absolute64 : .absolute32
            relocations.append(Relocation(offset: UInt32(bytes.count), kind: kind,
                                          target: symbols.target(name, in: module).asValue, addend: offset))
            bytes.append(contentsOf: repeatElement(0, count: item.type.size))
        }
    }
    return DataObject(name: module.text(definition.name), isExported: definition.linkage.isExport,
                      isThreadLocal: definition.linkage.isThread, alignment: Int(definition.alignment),
                      bytes: bytes, relocations: relocations, managedSlots: managedSlots)
}
