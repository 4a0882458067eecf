// Decoding crate files: untrusted bytes to a validated `CompiledModule`.
//
// The header is checked first (magic, version, lengths, checksum), then the
// body is read front to back by one cursor. Every read is preceded by a check
// that the bytes are there; every count is checked against the bytes that
// remain (times the smallest size its element can take) before anything is
// allocated, so memory stays proportional to the file and every loop ends.
// Messages name the byte offset and the record: `byte 1234: relocation 7 of
// $main: unknown target kind 9`. See CrateFile.swift for the layout.

extension CrateFile {
    /// Decodes a crate file; throws what is wrong and where, and never traps.
    public static func decode(_ bytes: [UInt8]) throws(CrateFileError) -> CompiledModule {
        let result = bytes.withUnsafeBytes { file in
            Result { () throws(CrateFileError) -> CompiledModule in try decode(file) }
        }
        return try result.get()
    }

    /// Decodes a crate file in memory (a mapped file, say); see `decode(_: [UInt8])`.
    public static func decode(_ file: UnsafeRawBufferPointer) throws(CrateFileError) -> CompiledModule {
        try checkHeader(file)
        var reader = CrateReader(file)
        var module = try reader.readModule()
        do {
            try module.validate()
        } catch {
            throw CrateFileError(offset: nil, "invalid module: \(error.message)")
        }
        module.isValidated = true
        return module
    }

    /// Checks the magic, version, lengths and checksum.
    static func checkHeader(_ file: UnsafeRawBufferPointer) throws(CrateFileError) {
        let prefix = UnsafeRawBufferPointer(rebasing: file.prefix(magic.count))
        guard prefix.elementsEqual(magic.prefix(prefix.count)) else {
            throw CrateFileError(offset: 0, "wrong magic: not a Kiln crate file (it starts with \"KILNCRAT\")")
        }
        guard file.count >= headerLength else {
            throw CrateFileError(offset: file.count, "truncated: \(file.count) bytes, less than the \(headerLength)-byte header")
        }
        // Safe: the file holds a whole header, and every field lies inside it.
        func field<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            T(littleEndian: file.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        let version = field(HeaderField.version, UInt32.self)
        guard version >= formatVersion else {
            throw CrateFileError(offset: HeaderField.version, "format version \(version) is older than this Kiln's "
                                 + "(\(formatVersion)): rebuild the crate file from its IL with `kiln build`")
        }
        guard version == formatVersion else {
            throw CrateFileError(offset: HeaderField.version,
                                 "format version \(version), but this Kiln reads only version \(formatVersion) (a newer Kiln wrote it)")
        }
        let length = field(HeaderField.headerLength, UInt32.self)
        guard length == headerLength else {
            throw CrateFileError(offset: HeaderField.headerLength,
                                 "header length \(length), but a version \(formatVersion) header is \(headerLength) bytes")
        }
        let flags = field(HeaderField.flags, UInt32.self), reserved = field(HeaderField.reserved, UInt32.self)
        guard flags == 0 else { throw CrateFileError(offset: HeaderField.flags, "unknown header flags 0x\(String(flags, radix: 16))") }
        guard reserved == 0 else { throw CrateFileError(offset: HeaderField.reserved, "reserved header field is \(reserved), not 0") }
        let total = field(HeaderField.totalLength, UInt64.self)
        guard total <= UInt64(file.count) else {
            throw CrateFileError(offset: file.count, "truncated: the header gives a length of \(total) bytes, the file has \(file.count)")
        }
        guard total == UInt64(file.count) else {
            throw CrateFileError(offset: Int(total),
                                 "trailing garbage: \(UInt64(file.count) - total) bytes after the \(total) bytes the header gives")
        }
        let stored = field(HeaderField.checksum, UInt64.self)
        let computed = checksum(UnsafeRawBufferPointer(rebasing: file[headerLength...]))
        guard stored == computed else {
            throw CrateFileError(offset: HeaderField.checksum, "checksum mismatch: the header says 0x\(String(stored, radix: 16)), "
                                 + "bytes \(headerLength)..<\(file.count) hash to 0x\(String(computed, radix: 16))")
        }
    }
}

/// A cursor over a crate file's body, and the imports, TOC slots and exports it has seen.
struct CrateReader {
    private let file: UnsafeRawBufferPointer
    private var position = CrateFile.headerLength
    /// The imports in order of first use, with their numbers.
    private var imports: [String] = []
    private var importNumbers: [String: Int] = [:]
    /// The import numbers of the call and address slots, in order of first use by code.
    private var callSlots: [Int] = [], addressSlots: [Int] = []
    private var isCallSlot: [Bool] = [], isAddressSlot: [Bool] = []

    /// The smallest encodings: a function or data object with empty name and contents.
    private static let smallestObject = 21, smallestName = 4, smallestStackMap = 8, smallestSegment = 9

    init(_ file: UnsafeRawBufferPointer) {
        self.file = file
    }

    /// The whole body, up to the last byte of the file.
    mutating func readModule() throws(CrateFileError) -> CompiledModule {
        let name = try name("crate name")
        let lineStarts: [UInt32] = try integers("source line starts")
        let functionCount = try count("function count", smallest: Self.smallestObject)
        var functions: [CodeObject] = []
        functions.reserveCapacity(functionCount)
        for index in 0..<functionCount { functions.append(try readFunction(index)) }
        let dataCount = try count("data object count", smallest: Self.smallestObject)
        var data: [DataObject] = []
        data.reserveCapacity(dataCount)
        for index in 0..<dataCount { data.append(try readDataObject(index)) }
        let module = CompiledModule(name: name, functions: functions, data: data, sourceLineStarts: lineStarts)
        try checkNames("call slot", expected: callSlots.map { imports[$0] }, implied: "the code uses")
        try checkNames("address slot", expected: addressSlots.map { imports[$0] }, implied: "the code uses")
        let exports = functions.filter(\.isExported).map(\.name) + data.filter(\.isExported).map(\.name)
        try checkNames("export", expected: exports, implied: "the objects' flags give")
        try checkNames("import", expected: imports, implied: "the relocations use")
        guard position == file.count else {
            throw CrateFileError(offset: position, "trailing garbage: \(file.count - position) bytes after the import list")
        }
        return module
    }

    private mutating func readFunction(_ index: Int) throws(CrateFileError) -> CodeObject {
        let name = try name("name of function \(index)")
        let flagsOffset = position
        let flags = try byte("flags of $\(name)")
        guard flags & ~1 == 0 else {
            throw CrateFileError(offset: flagsOffset, "flags of $\(name): unknown bits 0x\(String(flags & ~1, radix: 16))")
        }
        let code = try bytes("code of $\(name)")
        let relocations = try readRelocations(of: name, isCode: true)
        let lineCount = try count("line table count of $\(name)", smallest: 8)
        let file = self.file, start = position
        position += 8 * lineCount
        let lineTable = [(codeOffset: UInt32, sourceOffset: UInt32)](unsafeUninitializedCapacity: lineCount) { buffer, initialized in
            // Safe: `count` checked that 8 * lineCount bytes remain.
            for entry in 0..<lineCount {
                let at = start + 8 * entry
                buffer.initializeElement(at: entry, to: (littleEndian(file, at), littleEndian(file, at + 4)))
            }
            initialized = lineCount
        }
        let mapCount = try count("stack map count of $\(name)", smallest: Self.smallestStackMap)
        var stackMaps: [StackMap] = []
        stackMaps.reserveCapacity(mapCount)
        for map in 0..<mapCount {
            let codeOffset: UInt32 = try integer("stack map \(map) of $\(name)")
            stackMaps.append(StackMap(codeOffset: codeOffset, frameSlots: try integers("frame slots of stack map \(map) of $\(name)")))
        }
        return CodeObject(name: name, isExported: flags & 1 != 0, code: code, relocations: relocations,
                          lineTable: lineTable, stackMaps: stackMaps)
    }

    private mutating func readDataObject(_ index: Int) throws(CrateFileError) -> DataObject {
        let name = try name("name of data object \(index)")
        let flagsOffset = position
        let flags = try byte("flags of $\(name)")
        guard flags & ~3 == 0 else {
            throw CrateFileError(offset: flagsOffset, "flags of $\(name): unknown bits 0x\(String(flags & ~3, radix: 16))")
        }
        let alignment: UInt32 = try integer("alignment of $\(name)")
        let size: UInt32 = try integer("size of $\(name)")
        let segmentCount = try count("segment count of $\(name)", smallest: Self.smallestSegment)
        var segments: [DataSegment] = []
        segments.reserveCapacity(segmentCount)
        for segment in 0..<segmentCount {
            let offset: UInt32 = try integer("segment \(segment) of $\(name)")
            segments.append(DataSegment(offset: offset, bytes: try bytes("bytes of segment \(segment) of $\(name)")))
        }
        let relocations = try readRelocations(of: name, isCode: false)
        let managedSlots: [UInt32] = try integers("managed slots of $\(name)")
        return DataObject(name: name, isExported: flags & 1 != 0, isThreadLocal: flags & 2 != 0, alignment: Int(alignment),
                          size: Int(size), segments: segments, relocations: relocations, managedSlots: managedSlots)
    }

    private mutating func readRelocations(of owner: String, isCode: Bool) throws(CrateFileError) -> [Relocation] {
        let recordSize = CrateFile.relocationRecordSize
        let count = try count("relocation count of $\(owner)", smallest: recordSize)
        var relocations: [Relocation] = []
        relocations.reserveCapacity(count)
        for index in 0..<count {
            let start = position
            try need(recordSize, "relocation \(index) of $\(owner)")
            position += recordSize
            // Safe: `need` checked that the whole record is there.
            let kindValue: UInt8 = load(at: start + 4), targetKind: UInt8 = load(at: start + 5)
            let reserved: UInt16 = load(at: start + 6), target: UInt32 = load(at: start + 8)
            guard let kind = RelocationKind(rawValue: kindValue) else {
                throw CrateFileError(offset: start + 4, "relocation \(index) of $\(owner): unknown relocation kind \(kindValue)")
            }
            guard reserved == 0 else {
                throw CrateFileError(offset: start + 6, "relocation \(index) of $\(owner): reserved field is \(reserved), not 0")
            }
            let resolved: RelocationTarget
            switch CrateFile.TargetKind(rawValue: targetKind) {
            case .function: resolved = .function(Int(target))
            case .stub: resolved = .stub(Int(target))
            case .data: resolved = .data(Int(target))
            case .threadLocal: resolved = .threadLocal(Int(target))
            case .external:
                resolved = .external(try importName(target, record: start, "relocation \(index) of $\(owner)"))
            case .callSlot:
                let name = try importName(target, record: start, "relocation \(index) of $\(owner)")
                if isCode { noteSlot(Int(target), in: &callSlots, seen: &isCallSlot) }
                resolved = .callSlot(name)
            case .addressSlot:
                let name = try importName(target, record: start, "relocation \(index) of $\(owner)")
                if isCode { noteSlot(Int(target), in: &addressSlots, seen: &isAddressSlot) }
                resolved = .addressSlot(name)
            case nil:
                throw CrateFileError(offset: start + 5, "relocation \(index) of $\(owner): unknown target kind \(targetKind)")
            }
            let addend = Int64(bitPattern: load(at: start + 12) as UInt64)
            relocations.append(Relocation(offset: load(at: start), kind: kind, target: resolved, addend: addend))
        }
        return relocations
    }

    /// The name of import `number`; a new import's name follows its record.
    private mutating func importName(
        _ number: UInt32, record: Int, _ what: @autoclosure () -> String
    ) throws(CrateFileError) -> String {
        if Int(number) < imports.count { return imports[Int(number)] }
        guard Int(number) == imports.count else {
            throw CrateFileError(offset: record + 8, "\(what()): import \(number), but the next new import is \(imports.count)")
        }
        let start = position
        let name = try name("\(what()): name of import \(number)")
        if let earlier = importNumbers[name] {
            throw CrateFileError(offset: start, "\(what()): import \(number) is $\(name) again (import \(earlier))")
        }
        importNumbers[name] = imports.count
        imports.append(name)
        isCallSlot.append(false)
        isAddressSlot.append(false)
        return name
    }

    private func noteSlot(_ number: Int, in order: inout [Int], seen: inout [Bool]) {
        if !seen[number] {
            seen[number] = true
            order.append(number)
        }
    }

    /// Reads a list of names and refuses it unless it is `expected`, byte for byte.
    private mutating func checkNames(_ label: String, expected: [String], implied: String) throws(CrateFileError) {
        let start = position
        let count = try count("\(label) count", smallest: Self.smallestName)
        guard count == expected.count else {
            throw CrateFileError(offset: start, "the file lists \(count) \(label)s, but \(implied) \(expected.count)")
        }
        for (index, name) in expected.enumerated() {
            let nameStart = position
            let stored = try nameBytes("\(label) \(index)")
            guard stored.elementsEqual(name.utf8) else {
                throw CrateFileError(offset: nameStart, "\(label) \(index) is $\(String(decoding: stored, as: UTF8.self)), "
                                     + "but \(implied) $\(name)")
            }
        }
    }

    // MARK: Primitive reads

    /// Throws unless `size` more bytes remain.
    private func need(_ size: Int, _ what: @autoclosure () -> String) throws(CrateFileError) {
        let remaining = file.count - position
        guard size <= remaining else {
            throw CrateFileError(offset: position, "\(what()) runs past the end of the file (needs \(size) bytes, \(remaining) remain)")
        }
    }

    /// An unaligned little-endian integer; the caller has checked that it is there.
    @inline(__always)
    private func load<T: FixedWidthInteger>(at offset: Int) -> T {
        littleEndian(file, offset)
    }

    private mutating func integer<T: FixedWidthInteger>(_ what: @autoclosure () -> String) throws(CrateFileError) -> T {
        try need(MemoryLayout<T>.size, what())
        defer { position += MemoryLayout<T>.size }
        return load(at: position)
    }

    private mutating func byte(_ what: @autoclosure () -> String) throws(CrateFileError) -> UInt8 {
        try integer(what())
    }

    /// A u32 count whose elements, each at least `smallest` bytes, fit in what remains.
    private mutating func count(_ what: @autoclosure () -> String, smallest: Int) throws(CrateFileError) -> Int {
        let start = position
        let value = Int(try integer(what()) as UInt32)
        let remaining = file.count - position
        guard value <= remaining / smallest else {
            throw CrateFileError(offset: start, "\(what()) is \(value), more than the \(remaining) remaining bytes can hold")
        }
        return value
    }

    /// A count, then that many integers, copied at once.
    private mutating func integers<T: FixedWidthInteger>(_ what: @autoclosure () -> String) throws(CrateFileError) -> [T] {
        let size = MemoryLayout<T>.size
        let count = try count(what(), smallest: size)
        let file = self.file, start = position
        position += count * size
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            #if _endian(little)
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: file[start..<(start + count * size)]))
            #else
            for index in 0..<count { buffer.initializeElement(at: index, to: littleEndian(file, start + index * size)) }
            #endif
            initialized = count
        }
    }

    /// A u32 length, then that many bytes, copied at once.
    private mutating func bytes(_ what: @autoclosure () -> String) throws(CrateFileError) -> [UInt8] {
        let source = try lengthPrefixed(what())
        return [UInt8](unsafeUninitializedCapacity: source.count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            initialized = source.count
        }
    }

    /// A name's bytes, in place, not yet checked.
    private mutating func nameBytes(_ what: @autoclosure () -> String) throws(CrateFileError) -> UnsafeRawBufferPointer {
        try lengthPrefixed(what())
    }

    /// A name, which must be UTF-8.
    private mutating func name(_ what: @autoclosure () -> String) throws(CrateFileError) -> String {
        let start = position
        let bytes = try lengthPrefixed(what())
        guard let name = String(validating: bytes.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else {
            throw CrateFileError(offset: start, "\(what()) is not valid UTF-8")
        }
        return name
    }

    private mutating func lengthPrefixed(_ what: @autoclosure () -> String) throws(CrateFileError) -> UnsafeRawBufferPointer {
        let length = try count(what(), smallest: 1)
        defer { position += length }
        return UnsafeRawBufferPointer(rebasing: file[position..<(position + length)])
    }
}

/// The little-endian integer at `offset`, unaligned; the caller has checked that it is there.
@inline(__always)
private func littleEndian<T: FixedWidthInteger>(_ file: UnsafeRawBufferPointer, _ offset: Int) -> T {
    T(littleEndian: file.loadUnaligned(fromByteOffset: offset, as: T.self))
}
