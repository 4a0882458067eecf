// The relink section: every reference of a crate, indexed both ways.
//
// A *pointer* is a place that holds a reference: a relocated field of a code
// or data object, or a TOC slot. A *pointee* is what it refers to: a
// function's entry or stub, a data object, thread data, a TOC slot, or a
// symbol outside the crate. By pointee, the section answers "what must be
// rewritten when this moves or is reloaded" (the entry of a function that
// compaction moved; a symbol whose defining crate was reloaded); by pointer,
// "what does this field refer to" (when the object holding it moves or is
// replaced, its own records are applied again). It is built once per crate
// from the relocation vectors and the TOC layout, and is pure data: the
// reload machinery reads it, `kiln dis` prints it.

import KilnCode

/// A crate's references by pointee and by pointer; see the file comment.
public struct RelinkSection: Sendable {
    /// A place holding a reference.
    public enum Pointer: Hashable, Sendable, CustomStringConvertible {
        /// Relocation `relocation` of function `function`.
        case code(function: Int, relocation: Int)
        /// Relocation `relocation` of data object `object`.
        case data(object: Int, relocation: Int)
        /// A call slot of the TOC.
        case callSlot(Int)
        /// An address slot of the TOC.
        case addressSlot(Int)

        public var description: String {
            switch self {
            case .code(let function, let relocation): "function #\(function) record \(relocation)"
            case .data(let object, let relocation): "data #\(object) record \(relocation)"
            case .callSlot(let index): "call slot \(index)"
            case .addressSlot(let index): "address slot \(index)"
            }
        }
    }

    /// What a reference refers to.
    public enum Pointee: Hashable, Sendable, CustomStringConvertible {
        case entry(Int)
        case stub(Int)
        case data(Int)
        case threadData(Int)
        case callSlot(Int)
        case addressSlot(Int)
        /// A symbol defined outside the crate.
        case symbol(String)

        public var description: String {
            switch self {
            case .entry(let index): "entry of function #\(index)"
            case .stub(let index): "stub of function #\(index)"
            case .data(let index): "data #\(index)"
            case .threadData(let index): "thread data #\(index)"
            case .callSlot(let index): "call slot \(index)"
            case .addressSlot(let index): "address slot \(index)"
            case .symbol(let name): "$\(name)"
            }
        }
    }

    /// Every pointer of each pointee, in crate order (functions, data, then TOC slots).
    public let byPointee: [Pointee: [Pointer]]
    /// The pointee of every pointer.
    public let byPointer: [Pointer: Pointee]

    /// Builds the section of `module`, whose TOC has `layout`.
    public init(module: CompiledModule, layout: (callSlots: [String], addressSlots: [String])) {
        var byPointee: [Pointee: [Pointer]] = [:]
        var byPointer: [Pointer: Pointee] = [:]
        func add(_ pointer: Pointer, _ pointee: Pointee) {
            byPointee[pointee, default: []].append(pointer)
            byPointer[pointer] = pointee
        }
        let callIndex = Dictionary(uniqueKeysWithValues: layout.callSlots.enumerated().map { ($1, $0) })
        let addressIndex = Dictionary(uniqueKeysWithValues: layout.addressSlots.enumerated().map { ($1, $0) })
        func pointee(_ target: RelocationTarget) -> Pointee {
            switch target {
            case .function(let index): .entry(index)
            case .stub(let index): .stub(index)
            case .data(let index): .data(index)
            case .threadLocal(let index): .threadData(index)
            case .external(let name): .symbol(name)
            case .callSlot(let name): .callSlot(callIndex[name]!)
            case .addressSlot(let name): .addressSlot(addressIndex[name]!)
            }
        }
        for (function, object) in module.functions.enumerated() {
            for (index, relocation) in object.relocations.enumerated() {
                add(.code(function: function, relocation: index), pointee(relocation.target))
            }
        }
        for (objectIndex, object) in module.data.enumerated() {
            for (index, relocation) in object.relocations.enumerated() {
                add(.data(object: objectIndex, relocation: index), pointee(relocation.target))
            }
        }
        for (index, name) in layout.callSlots.enumerated() { add(.callSlot(index), .symbol(name)) }
        for (index, name) in layout.addressSlots.enumerated() { add(.addressSlot(index), .symbol(name)) }
        self.byPointee = byPointee
        self.byPointer = byPointer
    }

    /// The pointers that refer to `pointee` (empty when none does).
    public func pointers(to pointee: Pointee) -> [Pointer] { byPointee[pointee] ?? [] }

    /// The symbols outside the crate that anything refers to.
    public var importedSymbols: Set<String> {
        Set(byPointee.keys.compactMap { if case .symbol(let name) = $0 { name } else { nil } })
    }
}
