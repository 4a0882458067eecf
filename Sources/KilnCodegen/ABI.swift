// The SysV x86-64 classification of aggregates, as QBE implements it.
//
// An aggregate of more than 16 bytes, of size 0, or opaque, is MEMORY: it is
// passed on the stack and returned through a hidden pointer. Otherwise each
// eightbyte is INTEGER if any integer field overlaps it, SSE if only floats
// do; it travels in a register of that class, but only if registers remain for
// all its eightbytes (no partial split).

import KilnIL

enum EightbyteClass: Equatable { case integer, sse }

/// How an aggregate travels.
struct AggregateClass {
    /// nil for MEMORY; otherwise the class of each eightbyte (1 or 2).
    var eightbytes: [EightbyteClass]?
    var size: Int
    var alignment: Int

    var isMemory: Bool { eightbytes == nil }
    var integerCount: Int { eightbytes?.filter { $0 == .integer }.count ?? 0 }
    var sseCount: Int { eightbytes?.filter { $0 == .sse }.count ?? 0 }
}

func classify(_ id: TypeID, in module: Module) -> AggregateClass {
    let type = module.type(id)
    let size = Int(type.size)
    let alignment = Int(type.alignment)
    if type.isOpaque || size > 16 || size == 0 {
        return AggregateClass(eightbytes: nil, size: size, alignment: alignment)
    }
    var classes: [EightbyteClass?] = Array(repeating: nil, count: (size + 7) / 8)
    mark(type, at: 0, in: module, &classes)
    return AggregateClass(eightbytes: classes.map { $0 ?? .sse }, size: size, alignment: alignment)
}

/// Marks the eightbytes that the fields of `type`, placed at `base`, overlap.
private func mark(_ type: AggregateType, at base: Int, in module: Module, _ classes: inout [EightbyteClass?]) {
    for variant in type.variants {
        var offset = base
        for field in variant {
            let (size, alignment, nested): (Int, Int, AggregateType?) = switch field.kind {
            case .scalar(let scalar): (scalar.size, scalar.size, nil)
            case .aggregate(let id): (Int(module.type(id).size), Int(module.type(id).alignment), module.type(id))
            }
            offset = (offset + alignment - 1) & ~(alignment - 1)
            for _ in 0..<field.count {
                if let nested {
                    mark(nested, at: offset, in: module, &classes)
                } else if case .scalar(let scalar) = field.kind, offset / 8 < classes.count {
                    let isFloat = scalar == .s || scalar == .d
                    let slot = offset / 8
                    if !isFloat { classes[slot] = .integer } else if classes[slot] == nil { classes[slot] = .sse }
                }
                offset += size
            }
        }
    }
}
