// The rules every `CompiledModule` must keep before it is placed in memory.
//
// The code generator keeps them by construction; a crate file read from disk
// may break any of them, so the loader checks every module, whatever its
// origin, before it allocates anything. After `validate()` succeeds, every
// index in a record is in range, every field lies inside its object, and every
// target is used with a kind that can reach it, so applying the records cannot
// write outside an object or read outside a table.

/// A broken rule of `CompiledModule`, with the object it concerns.
public struct InvalidModule: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension CompiledModule {
    /// The largest object (code or data) a module may hold: 256 MiB.
    public static let maximumObjectSize = 1 << 28

    /// Checks every rule; throws the first broken one.
    public func validate() throws(InvalidModule) {
        try validate(knownValid: nil)
    }

    /// Checks every rule, taking the names and the functions `knownValid` selects as known to
    /// keep them: a reload whose module has the old one's names in the same order, and
    /// functions identical to old ones (same bytes, same records, indices meaning the same),
    /// need not check those again.
    public func validate(knownValid: ((Int) -> Bool)?) throws(InvalidModule) {
        if knownValid == nil {
            var names = Set<String>()
            for index in functions.indices { try checkName(functions[index].name, in: &names) }
            for index in data.indices { try checkName(data[index].name, in: &names) }
        }
        for index in functions.indices where !(knownValid?(index) ?? false) {
            try validate(functions[index])
        }
        for object in data {
            let alignment = object.alignment
            guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= 4096 else {
                throw InvalidModule("$\(object.name) has alignment \(object.alignment), not a power of two up to 4096")
            }
            guard object.size >= 0, object.size <= Self.maximumObjectSize else {
                throw InvalidModule("$\(object.name) is \(object.size) bytes, more than \(Self.maximumObjectSize)")
            }
            if let problem = DataContents.canonicalFormProblem(size: object.size, segments: object.segments) {
                throw InvalidModule("$\(object.name): \(problem)")
            }
            for slot in object.managedSlots where Int(slot) + 8 > object.size || slot % 8 != 0 {
                throw InvalidModule("$\(object.name): managed slot at \(slot) is not an aligned word inside the object")
            }
            for relocation in object.relocations {
                try validate(relocation, in: object.name, size: object.size, isCode: false,
                             isThreadData: object.isThreadLocal)
            }
        }
    }

    private func checkName(_ name: String, in names: inout Set<String>) throws(InvalidModule) {
        guard !name.isEmpty else { throw InvalidModule("an object has an empty name") }
        guard names.insert(name).inserted else { throw InvalidModule("$\(name) is defined twice") }
    }

    private func validate(_ function: CodeObject) throws(InvalidModule) {
        let size = function.code.count
        guard size > 0, size <= Self.maximumObjectSize else {
            throw InvalidModule("$\(function.name) has \(size) bytes of code")
        }
        for relocation in function.relocations {
            try validate(relocation, in: function.name, size: size, isCode: true, isThreadData: false)
        }
        var previous: UInt32 = 0
        for (index, entry) in function.lineTable.enumerated() {
            guard Int(entry.codeOffset) < size, index == 0 || entry.codeOffset >= previous else {
                throw InvalidModule("$\(function.name): line table entry \(index) (code offset \(entry.codeOffset)) is out of order or past the end")
            }
            previous = entry.codeOffset
        }
        previous = 0
        for (index, map) in function.stackMaps.enumerated() {
            guard Int(map.codeOffset) <= size, index == 0 || map.codeOffset > previous else {
                throw InvalidModule("$\(function.name): stack map \(index) (code offset \(map.codeOffset)) is out of order or past the end")
            }
            // The collector rewrites these words: each must be a word of the function's own
            // frame, below its saved rbp.
            for slot in map.frameSlots where slot >= 0 || slot % 8 != 0 || slot < -StackMap.deepestSlot {
                throw InvalidModule("$\(function.name): stack map \(index) lists frame slot rbp\(slot < 0 ? "" : "+")\(slot), "
                                    + "which is not an aligned word of the frame")
            }
            previous = map.codeOffset
        }
    }

    private func validate(
        _ relocation: Relocation, in object: String, size: Int, isCode: Bool, isThreadData: Bool
    ) throws(InvalidModule) {
        // Built only when a check fails: validation runs on every record of every crate file.
        var place: String { "$\(object)+0x\(String(relocation.offset, radix: 16))" }
        guard Int(relocation.offset) + relocation.kind.size <= size else {
            throw InvalidModule("\(place): \(relocation.kind) field runs past the end of the object (\(size) bytes)")
        }
        switch relocation.target {
        case .function(let index):
            guard functions.indices.contains(index) else { throw InvalidModule("\(place) refers to function #\(index), which does not exist") }
            guard isCode, relocation.kind == .pcRelative32 else {
                throw InvalidModule("\(place): the entry of $\(functions[index].name) can only be a pc32 field in code; a function's address as a value is its stub")
            }
        case .stub(let index):
            guard functions.indices.contains(index) else { throw InvalidModule("\(place) refers to function #\(index), which does not exist") }
            guard relocation.kind != .offset32 else { throw InvalidModule("\(place): a stub address cannot be an off32 field") }
        case .data(let index):
            guard data.indices.contains(index) else { throw InvalidModule("\(place) refers to data #\(index), which does not exist") }
            guard !data[index].isThreadLocal else {
                throw InvalidModule("\(place) refers to thread-local $\(data[index].name) as plain data")
            }
            guard relocation.kind != .offset32 else { throw InvalidModule("\(place): a data address cannot be an off32 field") }
        case .threadLocal(let index):
            guard data.indices.contains(index), data[index].isThreadLocal else {
                throw InvalidModule("\(place) refers to thread data #\(index), which is not thread-local data")
            }
            guard relocation.kind == .offset32, isCode else {
                throw InvalidModule("\(place): a thread-local offset must be an off32 field in code")
            }
        case .external(let name):
            guard !name.isEmpty else { throw InvalidModule("\(place) refers to an external symbol with an empty name") }
            guard relocation.kind == .absolute64 || relocation.kind == .absolute32 else {
                throw InvalidModule("\(place): external $\(name) may be anywhere in memory; it needs an abs64 or abs32 field")
            }
        case .callSlot(let name), .addressSlot(let name):
            guard !name.isEmpty else { throw InvalidModule("\(place) refers to a slot with an empty name") }
            guard isCode, relocation.kind == .pcRelative32 else {
                throw InvalidModule("\(place): a TOC slot of $\(name) can only be a pc32 field in code")
            }
        }
        if isThreadData && relocation.kind == .pcRelative32 {
            throw InvalidModule("\(place): thread-local data cannot hold a pc32 field (each thread has its own copy)")
        }
    }
}
