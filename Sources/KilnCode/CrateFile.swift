// Crate files (`.kcrate`): a `CompiledModule` on disk, loaded without compiling.
//
// `kiln build` writes one; `kiln run` loads it next to IL files. A crate file is
// untrusted input: decoding checks every count against the bytes that remain
// before it allocates, refuses anything it does not understand with the byte
// offset and the record concerned, and ends with `CompiledModule.validate()`,
// so a decoded module is as safe to load as a freshly compiled one. Decoding
// never traps, whatever the bytes.
//
// Every module has exactly one encoding: there are no optional fields, padding
// must be zero and every derived list is checked, so `encode(decode(x)) == x`
// byte for byte for every file that decodes.
//
// Layout, version 3. Integers are little-endian and fixed width, so that the
// reader copies arrays in bulk. A *count* is a u32; a *name* is a u32 byte
// length followed by that many bytes of UTF-8.
//
//     header (40 bytes)
//       0  magic "KILNCRAT"          8 bytes
//       8  format version            u32 (`CrateFile.formatVersion`)
//      12  header length             u32 (40)
//      16  flags                     u32 (none defined: 0)
//      20  reserved                  u32 (0)
//      24  total length of the file  u64
//      32  checksum                  u64, `CrateFile.checksum` of bytes 40..<total
//     crate name                     name
//     source line starts             count, u32 each
//     functions                      count, then for each:
//       name                         name
//       flags                        u8: bit 0 exported
//       code                         u32 length, bytes
//       relocations                  count, records (below)
//       line table                   count, (u32 code offset, u32 source offset) each
//       stack maps                   count, then for each: u32 code offset, count, i32 slots
//     data objects                   count, then for each:
//       name                         name
//       flags                        u8: bit 0 exported, bit 1 thread-local
//       alignment                    u32
//       size                         u32
//       segments                     count, then for each: u32 offset, u32 length, bytes
//       relocations                  count, records
//       managed slots                count, u32 each
//     TOC layout                     count, names of call slots; count, names of address slots
//     exports                        count, names (exported functions, then exported data)
//     imports                        count, names (`CompiledModule.externalSymbols`)
//
// A relocation record is 20 bytes: u32 offset, u8 kind (`RelocationKind` raw
// value), u8 target kind (`TargetKind`), u16 zero, u32 target, i64 addend.
// For a function, stub, data or thread-local target, the target is the object's
// index. For a named target (external, call slot, address slot) it is an import
// number: imports are numbered in order of first use, functions before data; a
// number equal to the count of imports seen so far introduces a new import,
// and its name follows the record. So each name is stored (and decoded) once,
// and the import list at the end is a check, as are the TOC layout and the
// export list: the reader derives all three and refuses a file that disagrees.
//
// A data object stores only the segments of its contents that are not zero,
// in canonical form (DataContents.swift), so a 16 MiB `z` array takes a few
// bytes. Version 1 stored every byte; such files are refused with a request
// to rebuild them.

/// Reads and writes crate files; see the file comment for the layout.
public enum CrateFile {
    /// The version this Kiln writes and the only one it reads (2: data as segments; 3: code
    /// that uses the managed heap, with stack maps listing the rbp-relative slots of the
    /// references live across each call; version 2 files never held such code).
    public static let formatVersion: UInt32 = 3

    /// The first eight bytes of every crate file.
    public static let magic: [UInt8] = Array("KILNCRAT".utf8)

    /// The length of the header; the checksum covers everything after it.
    public static let headerLength = 40

    /// The byte offsets of the header's fields.
    enum HeaderField {
        static let version = 8, headerLength = 12, flags = 16, reserved = 20, totalLength = 24, checksum = 32
    }

    /// The size of a relocation record without the name of a new import.
    static let relocationRecordSize = 20

    /// How a relocation record names its target's case. Stored in files: never renumber.
    enum TargetKind: UInt8 {
        case function = 0, stub, data, external, callSlot, addressSlot, threadLocal
    }

    /// The crate file of a module. The module should pass `validate()`: the file of one
    /// that does not is written all the same, but `decode` refuses it.
    public static func encode(_ module: CompiledModule) -> [UInt8] {
        var writer = CrateWriter(capacity: estimatedSize(of: module))
        writer.write(module)
        return writer.finish()
    }

    /// Rewrites the header's total length and checksum to match `bytes`, leaving everything
    /// else as it is: for tools that patch crate files, and for fuzzing, so that a mutated
    /// file gets past the checksum to the structural checks. Files shorter than a header
    /// are left alone.
    public static func reseal(_ bytes: inout [UInt8]) {
        guard bytes.count >= headerLength else { return }
        bytes.withUnsafeMutableBytes { file in
            // Safe: the file holds at least a header, and both fields lie inside it.
            file.storeBytes(of: UInt64(file.count).littleEndian, toByteOffset: HeaderField.totalLength, as: UInt64.self)
            let sum = checksum(UnsafeRawBufferPointer(rebasing: file[headerLength...]))
            file.storeBytes(of: sum.littleEndian, toByteOffset: HeaderField.checksum, as: UInt64.self)
        }
    }

    /// A bound on the encoded size, so that the writer allocates once.
    static func estimatedSize(of module: CompiledModule) -> Int {
        var size = headerLength + 64 + module.name.utf8.count + 4 * module.sourceLineStarts.count
        for function in module.functions {
            size += 64 + function.name.utf8.count + function.code.count + 8 * function.lineTable.count
            size += (relocationRecordSize + 8) * function.relocations.count
            for map in function.stackMaps { size += 8 + 4 * map.frameSlots.count }
        }
        for object in module.data {
            size += 64 + object.name.utf8.count + 4 * object.managedSlots.count
            for segment in object.segments { size += 8 + segment.bytes.count }
            size += (relocationRecordSize + 8) * object.relocations.count
        }
        return size
    }
}

/// Why a crate file was refused: what is wrong and where.
public struct CrateFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The byte offset in the file where the problem was found; nil when it concerns the
    /// module as a whole (a rule of `validate()`).
    public var offset: Int?
    /// What is wrong, naming the function, data object or record when known, e.g.
    /// `relocation 7 of $main: unknown target kind 9`.
    public var message: String

    public init(offset: Int?, _ message: String) {
        self.offset = offset
        self.message = message
    }

    /// `byte OFFSET: MESSAGE`, or the message alone when there is no offset.
    public var description: String {
        if let offset { "byte \(offset): \(message)" } else { message }
    }
}

// MARK: - Checksum

extension CrateFile {
    /// A 64-bit hash of `bytes`, the checksum of a crate file's body. It reads eight bytes at
    /// a time in four independent lanes (so that the multiplies overlap), and every step is
    /// a bijection of its lane, so a change to any single word always changes the result.
    /// It detects corruption; it is no defence against someone who means to forge a file.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let count = bytes.count
        var a = 0x9E37_79B9_7F4A_7C15 ^ UInt64(count), b: UInt64 = 0xC2B2_AE3D_27D4_EB4F
        var c: UInt64 = 0x1656_67B1_9E37_79F9, d: UInt64 = 0xD6E8_FEB8_6659_FD93
        var offset = 0
        // Safe: every load below reads eight bytes that end at or before `count`.
        while count - offset >= 32 {
            a = mix(a, bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            b = mix(b, bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
            c = mix(c, bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
            d = mix(d, bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self))
            offset += 32
        }
        var hash = a ^ rotate(b, 17) ^ rotate(c, 31) ^ rotate(d, 47)
        while count - offset >= 8 {
            hash = mix(hash, bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        if offset < count {
            var tail: UInt64 = 0
            withUnsafeMutableBytes(of: &tail) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset...])) }
            hash = mix(hash, tail)
        }
        return finish(hash ^ UInt64(count))
    }

    @inline(__always)
    private static func mix(_ lane: UInt64, _ word: UInt64) -> UInt64 {
        let product = (lane ^ UInt64(littleEndian: word)) &* 0x9FB2_1C65_1E98_DF25
        return product ^ (product >> 29)
    }

    @inline(__always)
    private static func rotate(_ value: UInt64, _ count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }

    /// Spreads every bit of the state over the whole result.
    @inline(__always)
    private static func finish(_ value: UInt64) -> UInt64 {
        var value = value
        value = (value ^ (value >> 32)) &* 0xD6E8_FEB8_6659_FD93
        value = (value ^ (value >> 29)) &* 0x9E37_79B9_7F4A_7C15
        return value ^ (value >> 32)
    }
}

// MARK: - Writing

/// Appends a module's encoding to one growing buffer, numbering imports as it goes.
struct CrateWriter {
    private var bytes: [UInt8] = []
    private var importNumbers: [String: Int] = [:]
    private var imports: [String] = []

    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// Everything after the header; `finish` fills the header in.
    mutating func write(_ module: CompiledModule) {
        bytes.append(contentsOf: CrateFile.magic)
        integer(CrateFile.formatVersion)
        integer(UInt32(CrateFile.headerLength))
        integer(UInt32(0))
        integer(UInt32(0))
        bytes.append(contentsOf: repeatElement(0, count: 16))
        name(module.name)
        integers(module.sourceLineStarts)
        count(module.functions.count)
        for function in module.functions { write(function) }
        count(module.data.count)
        for object in module.data { write(object) }
        let layout = module.tocLayout
        names(layout.callSlots)
        names(layout.addressSlots)
        names(module.functions.filter(\.isExported).map(\.name) + module.data.filter(\.isExported).map(\.name))
        names(imports)
    }

    /// The finished file, with its total length and checksum.
    consuming func finish() -> [UInt8] {
        CrateFile.reseal(&bytes)
        return bytes
    }

    private mutating func write(_ function: CodeObject) {
        name(function.name)
        bytes.append(function.isExported ? 1 : 0)
        count(function.code.count)
        bytes.append(contentsOf: function.code)
        write(function.relocations)
        count(function.lineTable.count)
        for entry in function.lineTable {
            integer(entry.codeOffset)
            integer(entry.sourceOffset)
        }
        count(function.stackMaps.count)
        for map in function.stackMaps {
            integer(map.codeOffset)
            integers(map.frameSlots)
        }
    }

    private mutating func write(_ object: DataObject) {
        name(object.name)
        bytes.append((object.isExported ? 1 : 0) | (object.isThreadLocal ? 2 : 0))
        integer(UInt32(truncatingIfNeeded: object.alignment))
        count(object.size)
        count(object.segments.count)
        for segment in object.segments {
            integer(segment.offset)
            count(segment.bytes.count)
            bytes.append(contentsOf: segment.bytes)
        }
        write(object.relocations)
        integers(object.managedSlots)
    }

    private mutating func write(_ relocations: [Relocation]) {
        count(relocations.count)
        for relocation in relocations {
            let (kind, target, newImport) = encodedTarget(relocation.target)
            integer(relocation.offset)
            bytes.append(relocation.kind.rawValue)
            bytes.append(kind.rawValue)
            integer(UInt16(0))
            integer(target)
            integer(UInt64(bitPattern: relocation.addend))
            if let newImport { name(newImport) }
        }
    }

    /// A target's kind and number; for a name not seen before, also the name to store.
    private mutating func encodedTarget(_ target: RelocationTarget) -> (CrateFile.TargetKind, UInt32, String?) {
        func index(_ value: Int) -> UInt32 { UInt32(truncatingIfNeeded: value) }
        switch target {
        case .function(let value): return (.function, index(value), nil)
        case .stub(let value): return (.stub, index(value), nil)
        case .data(let value): return (.data, index(value), nil)
        case .threadLocal(let value): return (.threadLocal, index(value), nil)
        case .external(let name): return importNumber(name, kind: .external)
        case .callSlot(let name): return importNumber(name, kind: .callSlot)
        case .addressSlot(let name): return importNumber(name, kind: .addressSlot)
        }
    }

    private mutating func importNumber(_ name: String, kind: CrateFile.TargetKind) -> (CrateFile.TargetKind, UInt32, String?) {
        if let number = importNumbers[name] { return (kind, UInt32(truncatingIfNeeded: number), nil) }
        importNumbers[name] = imports.count
        imports.append(name)
        return (kind, UInt32(truncatingIfNeeded: imports.count - 1), name)
    }

    private mutating func integer<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func count(_ value: Int) {
        integer(UInt32(truncatingIfNeeded: value))
    }

    /// A count, then the values in one copy.
    private mutating func integers<T: FixedWidthInteger>(_ values: [T]) {
        count(values.count)
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for value in values { integer(value) }
        #endif
    }

    private mutating func name(_ text: String) {
        count(text.utf8.count)
        bytes.append(contentsOf: text.utf8)
    }

    private mutating func names(_ list: [String]) {
        count(list.count)
        for text in list { name(text) }
    }
}
