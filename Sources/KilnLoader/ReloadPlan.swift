// Which parts of a crate a reload can keep: the matching of an old version's
// functions and data objects with a new module's, by name.
//
// Two definitions are the same when their bytes are equal and their records
// are equal once indices are replaced by the names they stand for (a new
// function added before `$f` shifts `$f`'s index, not its meaning). Line
// tables are not compared: a function moved down the file is still the same
// code.
//
// The usual edit changes function bodies and nothing else: the new module has
// the old one's functions and data, same names, same order, exported alike.
// Then (`sameShape`) everything matches by position, indices mean the same
// in both modules, and the plan costs a comparison of bytes per function;
// otherwise names are looked up. Results are arrays indexed by the new
// module's functions and data, and by the old version's functions (`role`),
// so the reload asks "is this kept?" without hashing.

import KilnCode
#if canImport(Glibc)
import Glibc
#endif

struct ReloadPlan {
    /// What becomes of an old function's block.
    enum Role {
        /// The new version keeps it unchanged.
        case kept
        /// Its function changed and the new code is written over it.
        case rewritten
        /// Its function changed (new code goes elsewhere) or is gone: it retires.
        case retired
    }

    /// New function index → the old block it keeps, unchanged.
    private(set) var kept: [CodeBlock?]
    /// New function index → the old block its new code is written over.
    private(set) var inPlace: [CodeBlock?]
    /// Old function index → what becomes of its block.
    private(set) var role: [Role]
    /// New data index → the old data index whose storage (and value) it keeps.
    private(set) var keptData: [Int?]
    private(set) var keptCount = 0
    private(set) var inPlaceCount = 0
    private(set) var keptDataCount = 0
    /// Functions whose code changed (in place or not).
    private(set) var changed = 0
    /// Functions that are new.
    private(set) var added = 0
    /// Old functions with no function of the same name in the new module.
    private(set) var removed = 0
    /// Whether the new module has the old one's functions and data objects, with the same
    /// names, in the same order, exported alike: see the file comment.
    let sameShape: Bool

    /// Matches `new` against `old`; blocks in `busy` (a frame runs in them) are never
    /// rewritten in place. `unchanged`, with the same shape, says which functions are the
    /// same (compared already).
    init(old: CrateVersion, new: CompiledModule, busy: Set<UInt32>, unchanged: [Bool]? = nil) {
        sameShape = Self.sameShape(old.module, new)
        kept = Array(repeating: nil, count: new.functions.count)
        inPlace = Array(repeating: nil, count: new.functions.count)
        role = Array(repeating: .retired, count: old.module.functions.count)
        keptData = Array(repeating: nil, count: new.data.count)
        var matched = 0
        for index in new.functions.indices {
            guard let oldIndex = sameShape ? index : old.functionIndex[unquoted(new.functions[index].name)] else {
                added += 1
                continue
            }
            matched += 1
            let block = old.blocks[oldIndex]
            if unchanged?[index] ?? Self.same(old.module, oldIndex, new, index, byPosition: sameShape) {
                kept[index] = block
                role[oldIndex] = .kept
                keptCount += 1
            } else {
                changed += 1
                if new.functions[index].code.count <= block.capacity, !busy.contains(block.id), block.version === old {
                    inPlace[index] = block
                    role[oldIndex] = .rewritten
                    inPlaceCount += 1
                }
            }
        }
        removed = old.module.functions.count - matched
        var oldData: [String: Int] = [:]
        if !sameShape {
            for (index, object) in old.module.data.enumerated() { oldData[unquoted(object.name)] = index }
        }
        for index in new.data.indices {
            guard let oldIndex = sameShape ? index : oldData[unquoted(new.data[index].name)] else { continue }
            let previous = old.module.data[oldIndex], object = new.data[index]
            if previous.hasSameContents(as: object), previous.alignment == object.alignment,
               previous.isThreadLocal == object.isThreadLocal, previous.managedSlots == object.managedSlots,
               Self.same(previous.relocations, in: old.module, object.relocations, in: new, byPosition: sameShape) {
                keptData[index] = oldIndex
                keptDataCount += 1
            }
        }
    }

    /// Whether `block` (of any version) is one the new version keeps or rewrites: its
    /// records are then the new version's business, not old code's.
    func isReplaced(_ block: CodeBlock, in old: CrateVersion) -> Bool {
        block.version === old && role[block.functionIndex] != .retired
    }

    /// Whether `block` is one the new version keeps unchanged.
    func isKept(_ block: CodeBlock, in old: CrateVersion) -> Bool {
        block.version === old && role[block.functionIndex] == .kept
    }

    static func sameShape(_ a: CompiledModule, _ b: CompiledModule) -> Bool {
        guard a.functions.count == b.functions.count, a.data.count == b.data.count else { return false }
        for index in a.functions.indices {
            guard a.functions[index].name == b.functions[index].name,
                  a.functions[index].isExported == b.functions[index].isExported else { return false }
        }
        for index in a.data.indices {
            guard a.data[index].name == b.data[index].name, a.data[index].isExported == b.data[index].isExported else {
                return false
            }
        }
        return true
    }

    /// Whether function `i` of `a` and function `j` of `b` are the same code.
    static func same(_ a: CompiledModule, _ i: Int, _ b: CompiledModule, _ j: Int, byPosition: Bool) -> Bool {
        let count = a.functions[i].code.count
        guard count == b.functions[j].code.count else { return false }
        let equalBytes = count == 0 || a.functions[i].code.withUnsafeBytes { x in
            b.functions[j].code.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, count) == 0 }
        }
        return equalBytes && a.functions[i].stackMaps == b.functions[j].stackMaps
            && same(a.functions[i].relocations, in: a, b.functions[j].relocations, in: b, byPosition: byPosition)
    }

    /// Whether two record lists are equal once indices are read as the names they stand
    /// for; `byPosition` when the modules have the same shape (an index then means the same).
    static func same(_ a: [Relocation], in aModule: CompiledModule, _ b: [Relocation], in bModule: CompiledModule,
                     byPosition: Bool = false) -> Bool {
        guard a.count == b.count else { return false }
        for index in a.indices {
            let (x, y) = (a[index], b[index])
            guard x.offset == y.offset, x.kind == y.kind, x.addend == y.addend else { return false }
            let equal: Bool = switch (x.target, y.target) {
            case (.function(let i), .function(let j)), (.stub(let i), .stub(let j)):
                byPosition ? i == j : aModule.functions[i].name == bModule.functions[j].name
            case (.data(let i), .data(let j)), (.threadLocal(let i), .threadLocal(let j)):
                byPosition ? i == j : aModule.data[i].name == bModule.data[j].name
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
