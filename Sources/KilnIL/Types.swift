// Value classes, ABI types and aggregate types.
//
// QBE gives every temporary one of four base classes (`w l s d`). Kiln adds a
// fifth, `r`, for managed references (see docs/IL-EXTENSIONS.md): a 64-bit
// tagged word that the collector may rewrite, so it never mixes with `l`.
// Sub-word types (`sb ub sh uh`) and aggregates (`:name`) appear only at call
// boundaries; memory layouts use the extended types `b h w l s d`.

/// The class of a temporary: QBE's four base classes plus Kiln's managed reference.
public enum Class: UInt8, Sendable, CaseIterable {
    case w = 0, l, s, d, r

    /// The letter used in the IL.
    public var letter: String {
        switch self {
        case .w: "w"
        case .l: "l"
        case .s: "s"
        case .d: "d"
        case .r: "r"
        }
    }

    /// Whether this is one of the integer classes `w`/`l`.
    @inlinable public var isInteger: Bool { self == .w || self == .l }
    /// Whether this is one of the floating classes `s`/`d`.
    @inlinable public var isFloat: Bool { self == .s || self == .d }
    /// Whether the class is 64 bits wide.
    @inlinable public var is64: Bool { self == .l || self == .d || self == .r }

    /// Whether a value of class `self` may be used where `expected` is required
    /// (QBE's only subtyping rule: an `l` may stand for a `w`).
    @inlinable public func canBeUsed(as expected: Class) -> Bool {
        self == expected || (self == .l && expected == .w)
    }
}

/// The sub-word ABI types of parameters, arguments and returns.
public enum SubWord: UInt8, Sendable {
    case sb = 1, ub, sh, uh

    public var letters: String {
        switch self {
        case .sb: "sb"
        case .ub: "ub"
        case .sh: "sh"
        case .uh: "uh"
        }
    }
}

/// A handle to an aggregate type of a module.
public struct TypeID: Hashable, Sendable {
    public var index: UInt32
    @inlinable public init(index: UInt32) { self.index = index }
}

/// A type usable at a call boundary: base class, sub-word, or aggregate.
public enum ABIType: Hashable, Sendable {
    case base(Class)
    case subWord(SubWord)
    case aggregate(TypeID)

    /// The class of the temporary that holds a value of this type
    /// (aggregates are passed around as pointers, sub-words as `w`).
    public var temporaryClass: Class {
        switch self {
        case .base(let c): c
        case .subWord: .w
        case .aggregate: .l
        }
    }
}

/// The memory types of aggregate fields and data items.
public enum ExtType: UInt8, Sendable {
    case b, h, w, l, s, d

    /// Size in bytes.
    public var size: Int {
        switch self {
        case .b: 1
        case .h: 2
        case .w, .s: 4
        case .l, .d: 8
        }
    }

    public var letter: String {
        switch self {
        case .b: "b"
        case .h: "h"
        case .w: "w"
        case .l: "l"
        case .s: "s"
        case .d: "d"
        }
    }
}

/// One member of an aggregate: a memory type or a nested aggregate, repeated `count` times.
public struct Field: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case scalar(ExtType)
        case aggregate(TypeID)
    }
    public var kind: Kind
    public var count: UInt32
    public var location: SourceLocation

    public init(kind: Kind, count: UInt32, location: SourceLocation) {
        self.kind = kind
        self.count = count
        self.location = location
    }
}

/// An aggregate type definition: a struct, a union of structs, or an opaque block.
///
/// `size` and `alignment` follow QBE: fields are naturally aligned, the size is
/// rounded up to the alignment, `align N` can only raise the alignment.
public struct AggregateType: Sendable {
    public var name: Name
    /// The alignment written after `align`, if any (in bytes).
    public var declaredAlignment: UInt64?
    /// Effective alignment in bytes (a power of two).
    public var alignment: UInt64
    /// Size in bytes, a multiple of `alignment`.
    public var size: UInt64
    /// For an opaque type, no variants; for a struct, one; for a union, one per variant.
    public var variants: [[Field]]
    /// Whether written as `{ { ... } { ... } }`.
    public var isUnion: Bool
    /// Whether written as `align N { size }`.
    public var isOpaque: Bool
    public var location: SourceLocation

    public init(name: Name, location: SourceLocation) {
        self.name = name
        self.declaredAlignment = nil
        self.alignment = 1
        self.size = 0
        self.variants = []
        self.isUnion = false
        self.isOpaque = false
        self.location = location
    }
}
