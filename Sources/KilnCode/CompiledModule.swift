// The output of the code generator: code and data objects with their records.
//
// Nothing here has an address yet. A loader places the objects, resolves the
// external symbols, fills the slots and applies every record; the code heap
// will later move objects and apply the records again.

/// One compiled function.
public struct CodeObject: Sendable {
    /// The function's symbol name (as written after `$`, quotes kept for quoted names).
    public var name: String
    public var isExported: Bool
    /// Machine code; the entry point is offset 0.
    public var code: [UInt8]
    public var relocations: [Relocation]
    /// Pairs of (code offset, IL source offset), sorted by code offset: the IL line of
    /// every instruction that starts a new source position.
    public var lineTable: [(codeOffset: UInt32, sourceOffset: UInt32)]

    public init(name: String, isExported: Bool, code: [UInt8], relocations: [Relocation],
                lineTable: [(codeOffset: UInt32, sourceOffset: UInt32)] = []) {
        self.name = name
        self.isExported = isExported
        self.code = code
        self.relocations = relocations
        self.lineTable = lineTable
    }
}

/// One data definition, laid out.
public struct DataObject: Sendable {
    public var name: String
    public var isExported: Bool
    /// Thread-local: every thread gets its own copy, initialised from `bytes`.
    public var isThreadLocal: Bool
    public var alignment: Int
    /// The initial contents (all zeros for zero-fill data).
    public var bytes: [UInt8]
    public var relocations: [Relocation]
    /// Offsets of 8-byte managed-reference slots (roots for the collector).
    public var managedSlots: [UInt32]

    public init(name: String, isExported: Bool, isThreadLocal: Bool, alignment: Int, bytes: [UInt8],
                relocations: [Relocation], managedSlots: [UInt32] = []) {
        self.name = name
        self.isExported = isExported
        self.isThreadLocal = isThreadLocal
        self.alignment = alignment
        self.bytes = bytes
        self.relocations = relocations
        self.managedSlots = managedSlots
    }
}

/// Everything compiled from one module.
public struct CompiledModule: Sendable {
    /// A name for messages (usually the source file's).
    public var name: String
    public var functions: [CodeObject]
    public var data: [DataObject]

    public init(name: String, functions: [CodeObject], data: [DataObject]) {
        self.name = name
        self.functions = functions
        self.data = data
    }

    /// The external symbols the module refers to, each once, in order of first use.
    public var externalSymbols: [String] {
        var seen = Set<String>()
        var result: [String] = []
        let all = functions.flatMap(\.relocations) + data.flatMap(\.relocations)
        for relocation in all {
            switch relocation.target {
            case .external(let name), .slot(let name):
                if seen.insert(name).inserted { result.append(name) }
            default:
                break
            }
        }
        return result
    }
}
