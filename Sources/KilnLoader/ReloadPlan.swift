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
            if previous.bytes == object.bytes, previous.alignment == object.alignment,
               previous.isThreadLocal == object.isThreadLocal, previous.managedSlots == object.managedSlots,
               Self.normalized(previous.relocations, old.module) == Self.normalized(object.relocations, new) {
                keptData[index] = oldIndex
            }
        }
    }

    static func same(_ a: CodeObject, in aModule: CompiledModule, _ b: CodeObject, in bModule: CompiledModule) -> Bool {
        a.code == b.code && a.stackMaps == b.stackMaps
            && normalized(a.relocations, aModule) == normalized(b.relocations, bModule)
    }

    /// A record with its target named instead of numbered.
    struct NamedRecord: Equatable {
        var offset: UInt32
        var kind: RelocationKind
        var target: String
        var addend: Int64
    }

    static func normalized(_ relocations: [Relocation], _ module: CompiledModule) -> [NamedRecord] {
        relocations.map { relocation in
            let target: String = switch relocation.target {
            case .function(let index): "entry " + module.functions[index].name
            case .stub(let index): "stub " + module.functions[index].name
            case .data(let index): "data " + module.data[index].name
            case .threadLocal(let index): "thread " + module.data[index].name
            case .external(let name): "external " + name
            case .callSlot(let name): "call " + name
            case .addressSlot(let name): "address " + name
            }
            return NamedRecord(offset: relocation.offset, kind: relocation.kind, target: target, addend: relocation.addend)
        }
    }
}
