// Which parts of a crate a reload can keep: the matching of an old version's
// functions and data objects with a new module's, by name.
//
// Two definitions are the same when their bytes are equal and their records
// are equal once indices are replaced by the names they stand for (a new
// function added before `$f` shifts `$f`'s index, not its meaning). Line
// tables are not compared: a function moved down the file is still the same
// code.

import KilnCode

struct ReloadPlan {
    /// New function index → the old block it keeps, unchanged.
    var kept: [Int: CodeBlock] = [:]
    /// New function index → the old block its new code is written over.
    var inPlace: [Int: CodeBlock] = [:]
    /// Functions whose code changed (in place or not).
    var changed = 0
    /// Functions that are new.
    var added = 0
    /// Old function indices with no function of the same name in the new module.
    var removed: [Int] = []
    /// New data index → the old data index whose storage (and value) it keeps.
    var keptData: [Int: Int] = [:]

    /// Matches `new` against `old`; blocks in `busy` (a frame runs in them) are never
    /// rewritten in place.
    init(old: CrateVersion, new: CompiledModule, busy: Set<UInt32>) {
        for (index, function) in new.functions.enumerated() {
            guard let oldIndex = old.functionIndex[unquoted(function.name)] else {
                added += 1
                continue
            }
            let block = old.blocks[oldIndex]
            if Self.same(old.module.functions[oldIndex], in: old.module, function, in: new) {
                kept[index] = block
            } else {
                changed += 1
                if function.code.count <= block.capacity, !busy.contains(block.id), block.version === old {
                    inPlace[index] = block
                }
            }
        }
        let newNames = Set(new.functions.map { unquoted($0.name) })
        removed = old.module.functions.indices.filter { !newNames.contains(unquoted(old.module.functions[$0].name)) }
        var oldData: [String: Int] = [:]
        for (index, object) in old.module.data.enumerated() { oldData[unquoted(object.name)] = index }
        for (index, object) in new.data.enumerated() {
            guard let oldIndex = oldData[unquoted(object.name)] else { continue }
            let previous = old.module.data[oldIndex]
            if previous.hasSameContents(as: object), previous.alignment == object.alignment,
               previous.isThreadLocal == object.isThreadLocal, previous.managedSlots == object.managedSlots,
               Self.same(previous.relocations, in: old.module, object.relocations, in: new) {
                keptData[index] = oldIndex
            }
        }
    }

    static func same(_ a: CodeObject, in aModule: CompiledModule, _ b: CodeObject, in bModule: CompiledModule) -> Bool {
        a.code == b.code && a.stackMaps == b.stackMaps && same(a.relocations, in: aModule, b.relocations, in: bModule)
    }

    /// Whether two record lists are equal once indices are read as the names they stand for.
    static func same(_ a: [Relocation], in aModule: CompiledModule, _ b: [Relocation], in bModule: CompiledModule) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) {
            guard x.offset == y.offset, x.kind == y.kind, x.addend == y.addend else { return false }
            let equal: Bool = switch (x.target, y.target) {
            case (.function(let i), .function(let j)), (.stub(let i), .stub(let j)):
                aModule.functions[i].name == bModule.functions[j].name
            case (.data(let i), .data(let j)), (.threadLocal(let i), .threadLocal(let j)):
                aModule.data[i].name == bModule.data[j].name
            case (.external(let m), .external(let n)), (.callSlot(let m), .callSlot(let n)),
                 (.addressSlot(let m), .addressSlot(let n)):
                m == n
            default:
                false
            }
            guard equal else { return false }
        }
        return true
    }
}
