// Applying relocation records: the one place where the loader turns a record
// into bytes, always through `Relocation.fieldBytes`, so the loader and every
// later relinker (code heap moves, hot reload) compute fields the same way.

import KilnCode

/// The values relocation targets of one module resolve to.
struct RelocationContext {
    var functions: [UInt]
    /// nil for thread-local objects, which have no address of their own.
    var data: [UInt?]
    var symbols: [String: UInt]
    var slots: [String: UInt]
    var threadOffsets: [Int: Int]
}

extension Loader {
    /// Applies `relocations` to an object whose first byte lives at `objectAddress` (the
    /// address code sees) and is written at `writableStart` (the same place, or its
    /// writable alias, or a template buffer).
    func relocate(
        _ objectName: String, _ relocations: [Relocation], context: RelocationContext,
        objectAddress: UInt, writableStart: UnsafeMutableRawPointer, isTemplate: Bool
    ) throws(LoadError) {
        for relocation in relocations {
            let target: UInt
            switch relocation.target {
            case .function(let index): target = context.functions[index]
            case .data(let index): target = context.data[index]!
            case .external(let name): target = context.symbols[name]!
            case .slot(let name): target = context.slots[name]!
            case .threadLocal(let index): target = UInt(context.threadOffsets[index]!)
            }
            if isTemplate && relocation.kind == .pcRelative32 {
                // A template is copied into every thread's block: there is no one place
                // from which a pc-relative field could be measured.
                throw .invalidModule(
                    module: objectName,
                    message: "thread-local $\(objectName)+0x\(String(relocation.offset, radix: 16)) has a pc32 field")
            }
            let fieldAddress = objectAddress + UInt(relocation.offset)
            let bytes: [UInt8]
            do {
                bytes = try relocation.fieldBytes(targetValue: UInt64(target), fieldAddress: UInt64(fieldAddress))
            } catch {
                switch error {
                case .outOfRange(let value, _):
                    throw .relocationOutOfRange(
                        object: objectName, offset: relocation.offset, relocation: relocation, value: value)
                }
            }
            // Safe: `check` verified that offset + field size lies inside the object.
            let field = writableStart + Int(relocation.offset)
            bytes.withUnsafeBytes { field.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }
}
