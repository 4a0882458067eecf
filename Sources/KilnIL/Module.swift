// A module: everything one IL file defines.
//
// A module owns the name table shared by all its definitions, its aggregate
// types, data definitions and functions, in the order the file gives them.
// One module becomes one crate later on; nothing here knows about code.

/// One item of a data definition.
public struct DataItem: Sendable {
    public enum Kind: Sendable {
        /// An integer or float bit pattern stored in `type`'s width.
        case bits(UInt64)
        /// The address of a symbol plus an offset, stored in `type`'s width.
        case address(Name, Int64)
        /// Bytes of a string literal (after escapes), a range of `Module.stringBytes`.
        case string(start: UInt32, count: UInt32)
        /// `z N`: N zero bytes.
        case zero(UInt64)
    }
    public var kind: Kind
    /// The item letter; meaningless for `zero`. `r` items are `l`-sized managed slots.
    public var type: ExtType
    /// Whether the item is a managed-reference slot (`r` letter).
    public var isManaged: Bool
    /// How a float literal was written (for printing).
    public var floatKind: Constant.FloatKind
    public var location: SourceLocation

    public init(kind: Kind, type: ExtType, isManaged: Bool = false, floatKind: Constant.FloatKind = .none,
                at location: SourceLocation) {
        self.kind = kind
        self.type = type
        self.isManaged = isManaged
        self.floatKind = floatKind
        self.location = location
    }

    /// The number of bytes the item occupies.
    public var size: UInt64 {
        switch kind {
        case .bits, .address: UInt64(type.size)
        case .string(_, let count): UInt64(count)
        case .zero(let count): count
        }
    }
}

/// A data definition (`data $name = { ... }`).
public struct DataDefinition: Sendable {
    public var name: Name
    public var linkage: Linkage
    /// The alignment written after `align`, if any.
    public var declaredAlignment: UInt64?
    public var items: [DataItem] = []
    public var location: SourceLocation

    public init(name: Name, location: SourceLocation) {
        self.name = name
        self.linkage = Linkage()
        self.declaredAlignment = nil
        self.location = location
    }

    /// The alignment in bytes (QBE's parser default is 8).
    public var alignment: UInt64 { declaredAlignment ?? 8 }

    /// The total size in bytes.
    public var size: UInt64 { items.reduce(0) { $0 &+ $1.size } }

    /// Whether every item is zero fill (QBE places such data in BSS).
    public var isZeroFill: Bool {
        items.allSatisfy { if case .zero = $0.kind { true } else { false } }
    }
}

/// A top-level definition, in file order.
public enum Definition: Sendable {
    case type(TypeID)
    case data(Int)
    case function(Int)
    /// `dbgfile "..."`: an index into `Module.debugFiles`.
    case debugFile(Int)
}

/// Everything parsed from one IL file.
public struct Module: Sendable {
    public var source: SourceFile
    public var names: NameTable
    public var types: [AggregateType] = []
    public var data: [DataDefinition] = []
    public var functions: [Function] = []
    /// Paths given to `dbgfile`, raw text between the quotes.
    public var debugFiles: [String] = []
    /// The order of definitions in the file (for printing and for line tables).
    public var definitions: [Definition] = []
    /// Decoded bytes of all string literals in data definitions.
    public var stringBytes: [UInt8] = []

    public init(source: SourceFile) {
        self.source = source
        self.names = NameTable.withKeywords()
    }

    /// The text of a name.
    public func text(_ name: Name) -> String { names.text(name) }

    /// An aggregate type by handle.
    public func type(_ id: TypeID) -> AggregateType { types[Int(id.index)] }

    /// The bytes of a string item.
    public func bytes(start: UInt32, count: UInt32) -> ArraySlice<UInt8> {
        stringBytes[Int(start)..<Int(start + count)]
    }
}
