// The output of the code generator: code and data objects with their records.
//
// Nothing here has an address yet. A loader places the objects, resolves the
// external symbols, fills the slots and applies every record; the code heap
// moves code objects and applies their records again.

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
    /// The safepoints of the function, sorted by code offset: which frame slots hold managed
    /// references there. Empty until the code generator compiles managed references.
    public var stackMaps: [StackMap]

    public init(name: String, isExported: Bool, code: [UInt8], relocations: [Relocation],
                lineTable: [(codeOffset: UInt32, sourceOffset: UInt32)] = [], stackMaps: [StackMap] = []) {
        self.name = name
        self.isExported = isExported
        self.code = code
        self.relocations = relocations
        self.lineTable = lineTable
        self.stackMaps = stackMaps
    }
}

/// The managed references live in a frame at one safepoint (a call's return address).
public struct StackMap: Hashable, Sendable {
    /// The offset of the return address of the safepoint's call, in the code object.
    public var codeOffset: UInt32
    /// The frame slots (byte offsets from rbp) that hold tagged words at that point: negative
    /// multiples of 8, no deeper than `deepestSlot`.
    public var frameSlots: [Int32]

    /// The deepest frame slot a stack map may list (a frame of 256 MiB).
    public static let deepestSlot: Int32 = 1 << 28

    public init(codeOffset: UInt32, frameSlots: [Int32]) {
        self.codeOffset = codeOffset
        self.frameSlots = frameSlots
    }
}

/// One data definition, laid out: its size and the segments of its initial contents that
/// are not zero (DataContents.swift); every other byte starts as zero.
public struct DataObject: Sendable {
    public var name: String
    public var isExported: Bool
    /// Thread-local: every thread gets its own copy, initialised from the contents.
    public var isThreadLocal: Bool
    public var alignment: Int
    /// The size in bytes.
    public var size: Int
    /// The initial bytes that are not zero, in canonical form (see `DataContents`).
    public var segments: [DataSegment]
    public var relocations: [Relocation]
    /// Offsets of 8-byte managed-reference slots (roots for the collector).
    public var managedSlots: [UInt32]

    public init(name: String, isExported: Bool, isThreadLocal: Bool, alignment: Int, size: Int, segments: [DataSegment],
                relocations: [Relocation], managedSlots: [UInt32] = []) {
        self.name = name
        self.isExported = isExported
        self.isThreadLocal = isThreadLocal
        self.alignment = alignment
        self.size = size
        self.segments = segments
        self.relocations = relocations
        self.managedSlots = managedSlots
    }

    /// An object whose initial contents are `bytes`, zeros included (stored without them).
    public init(name: String, isExported: Bool, isThreadLocal: Bool, alignment: Int, bytes: [UInt8],
                relocations: [Relocation], managedSlots: [UInt32] = []) {
        let contents = DataContents(bytes)
        self.init(name: name, isExported: isExported, isThreadLocal: isThreadLocal, alignment: alignment,
                  size: contents.size, segments: contents.segments, relocations: relocations, managedSlots: managedSlots)
    }

    /// Whether two objects start with the same contents.
    public func hasSameContents(as other: DataObject) -> Bool {
        size == other.size && segments == other.segments
    }

    /// Writes the initial contents into `size` bytes at `destination` that already read as
    /// zero: only the segments are written, so untouched pages stay untouched.
    public func unsafeWriteSegments(toZeroed destination: UnsafeMutableRawPointer) {
        for segment in segments {
            // Safe when the module passed `validate()`: every segment lies inside the object.
            segment.bytes.withUnsafeBytes { source in
                guard let start = source.baseAddress else { return }
                (destination + Int(segment.offset)).copyMemory(from: start, byteCount: source.count)
            }
        }
    }

    /// Every initial byte, zeros included: `size` bytes, so only for objects known to be small.
    public var materializedBytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        for segment in segments { bytes.replaceSubrange(Int(segment.offset)..<segment.end, with: segment.bytes) }
        return bytes
    }
}

/// Everything compiled from one module.
public struct CompiledModule: Sendable {
    /// A name for messages (usually the source file's).
    public var name: String
    public var functions: [CodeObject] { didSet { isValidated = false } }
    public var data: [DataObject] { didSet { isValidated = false } }
    /// Whether `validate()` passed on exactly these functions and data (set by the crate-file
    /// decoder, which validates; any change to the objects clears it), so a loader need not
    /// check again.
    public internal(set) var isValidated = false
    /// Byte offsets where each line of the IL source starts, so that the line tables'
    /// source offsets can be shown as line numbers without the source (crate files carry
    /// them). Empty when unknown.
    public var sourceLineStarts: [UInt32]

    public init(name: String, functions: [CodeObject], data: [DataObject], sourceLineStarts: [UInt32] = []) {
        self.name = name
        self.functions = functions
        self.data = data
        self.sourceLineStarts = sourceLineStarts
    }

    /// The names reached through TOC slots, each once in order of first use: call slots
    /// first, then address slots. This order is the crate's TOC layout.
    public var tocLayout: (callSlots: [String], addressSlots: [String]) {
        var calls: [String] = [], addresses: [String] = []
        var seenCalls = Set<String>(), seenAddresses = Set<String>()
        for relocation in functions.flatMap(\.relocations) {
            switch relocation.target {
            case .callSlot(let name): if seenCalls.insert(name).inserted { calls.append(name) }
            case .addressSlot(let name): if seenAddresses.insert(name).inserted { addresses.append(name) }
            default: break
            }
        }
        return (calls, addresses)
    }

    /// The name of the symbol a record's target stands for, without quotes: the function or
    /// data object of this module it refers to by index, or the imported name.
    public func symbolName(of target: RelocationTarget) -> String {
        switch target {
        case .function(let index), .stub(let index):
            functions.indices.contains(index) ? unquoted(functions[index].name) : "function #\(index)"
        case .data(let index), .threadLocal(let index):
            data.indices.contains(index) ? unquoted(data[index].name) : "data #\(index)"
        case .external(let name), .callSlot(let name), .addressSlot(let name):
            name
        }
    }

    /// The external symbols the module refers to, each once, in order of first use.
    public var externalSymbols: [String] {
        var seen = Set<String>()
        var result: [String] = []
        let all = functions.flatMap(\.relocations) + data.flatMap(\.relocations)
        for relocation in all {
            if let name = relocation.target.importedName, seen.insert(name).inserted { result.append(name) }
        }
        return result
    }
}
