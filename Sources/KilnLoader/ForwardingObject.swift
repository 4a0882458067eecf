// An ELF shared object made in memory, whose only content is forwarding stubs: the way
// crate exports become symbols the dynamic linker knows, so that a library the program
// opens later with dlopen (a C extension module, say) resolves them like any other global
// symbol.
//
// Each symbol is an 8-byte stub `jmp [rip + slot]` (ff 25 rel32, then two int3) through an
// 8-byte slot of a table in the object's writable segment; a slot holds the function's
// callback stub, which never moves and which reloads and compaction re-point, so neither
// the stubs nor the slots change while their loader lives. When it goes, the slots are
// pointed at a routine that reports the call instead of jumping into freed memory.
//
// The image: one read-and-execute segment (ELF header, four program headers, the SysV
// symbol hash table, the dynamic symbol and string tables, the stubs) and, on the next
// page, one read-and-write segment (the dynamic section, then the slots). No section
// headers and no relocations: the stubs reach their slots pc-relatively, and the dynamic
// linker adds the load address to the dynamic section's addresses itself. PT_GNU_STACK
// says the stack need not be executable.

/// The bytes of a forwarding object and where its stubs and slots lie in it.
struct ForwardingObject {
    /// The file's bytes, ready to be written to a memfd and opened.
    private(set) var bytes: [UInt8] = []
    /// The offset from the load address of each symbol's slot, in the order of `names`.
    private(set) var slotOffsets: [Int] = []
    /// The offset from the load address of each symbol's stub.
    private(set) var stubOffsets: [Int] = []

    static let stubSize = 8
    private static let page = 4096
    private static let headerSize = 64, programHeaderSize = 56, programHeaderCount = 4
    private static let symbolSize = 24, dynamicEntrySize = 16

    /// An object defining `names` (none empty, none twice) as functions, under `soname`.
    init(soname: String, names: [String]) {
        // The read-and-execute part: strings, hash table, symbols, stubs.
        var strings: [UInt8] = [0]
        func intern(_ text: String) -> UInt32 {
            let offset = UInt32(strings.count)
            strings.append(contentsOf: Array(text.utf8) + [0])
            return offset
        }
        let sonameOffset = intern(soname)
        let nameOffsets = names.map(intern)
        let symbolCount = names.count + 1  // symbol 0 is the null symbol
        let bucketCount = max(1, names.count)
        let hashOffset = Self.headerSize + Self.programHeaderSize * Self.programHeaderCount
        let hashSize = 4 * (2 + bucketCount + symbolCount)
        let symbolsOffset = align(hashOffset + hashSize, 8)
        let stringsOffset = symbolsOffset + Self.symbolSize * symbolCount
        let stubsOffset = align(stringsOffset + strings.count, 16)
        let textEnd = stubsOffset + Self.stubSize * names.count
        // The read-and-write part, on the next page: the dynamic section, then the slots.
        let writableOffset = align(textEnd, Self.page)
        let dynamicEntries = 7
        let slotsOffset = writableOffset + Self.dynamicEntrySize * dynamicEntries
        let end = slotsOffset + 8 * names.count
        stubOffsets = names.indices.map { stubsOffset + Self.stubSize * $0 }
        slotOffsets = names.indices.map { slotsOffset + 8 * $0 }

        var image = ImageWriter(size: end)
        // ELF header: 64-bit, little-endian, version 1, System V ABI; a shared object for x86-64.
        image.bytes(0, [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0])
        image.u16(16, 3)
        image.u16(18, 62)
        image.u32(20, 1)
        image.u64(32, UInt64(Self.headerSize))  // program headers right after
        image.u16(52, UInt16(Self.headerSize))
        image.u16(54, UInt16(Self.programHeaderSize))
        image.u16(56, UInt16(Self.programHeaderCount))
        image.u16(58, 64)  // section header size, though there are none
        // Program headers: the two loads, the dynamic section, the stack's permissions.
        let read: UInt32 = 4, write: UInt32 = 2, execute: UInt32 = 1
        image.programHeader(0, type: 1, flags: read | execute, offset: 0, size: textEnd, align: Self.page)
        image.programHeader(1, type: 1, flags: read | write, offset: writableOffset, size: end - writableOffset, align: Self.page)
        image.programHeader(2, type: 2, flags: read | write, offset: writableOffset,
                            size: Self.dynamicEntrySize * dynamicEntries, align: 8)
        image.programHeader(3, type: 0x6474_e551, flags: read | write, offset: 0, size: 0, align: 16)
        // The SysV hash table: buckets hold the first symbol of each chain.
        var buckets = [UInt32](repeating: 0, count: bucketCount)
        var chains = [UInt32](repeating: 0, count: symbolCount)
        for (index, name) in names.enumerated() {
            let symbol = UInt32(index + 1)
            let bucket = Int(elfHash(name) % UInt32(bucketCount))
            chains[Int(symbol)] = buckets[bucket]
            buckets[bucket] = symbol
        }
        image.u32(hashOffset, UInt32(bucketCount))
        image.u32(hashOffset + 4, UInt32(symbolCount))
        for (index, value) in (buckets + chains).enumerated() { image.u32(hashOffset + 8 + 4 * index, value) }
        // Symbols: global functions defined in section 1 (any index but undefined and
        // absolute will do: the dynamic linker reads no section headers).
        for (index, nameOffset) in nameOffsets.enumerated() {
            let at = symbolsOffset + Self.symbolSize * (index + 1)
            image.u32(at, nameOffset)
            image.bytes(at + 4, [0x12, 0])  // STB_GLOBAL, STT_FUNC; default visibility
            image.u16(at + 6, 1)
            image.u64(at + 8, UInt64(stubOffsets[index]))
            image.u64(at + 16, UInt64(Self.stubSize))
        }
        image.bytes(stringsOffset, strings)
        for index in names.indices {
            let stub = stubOffsets[index]
            let displacement = Int32(slotOffsets[index] - (stub + 6))
            image.bytes(stub, [0xff, 0x25])
            image.u32(stub + 2, UInt32(bitPattern: displacement))
            image.bytes(stub + 6, [0xcc, 0xcc])
        }
        // The dynamic section: where the tables are (load-relative), then the end.
        let dynamic: [(UInt64, UInt64)] = [
            (4, UInt64(hashOffset)), (5, UInt64(stringsOffset)), (6, UInt64(symbolsOffset)),
            (10, UInt64(strings.count)), (11, UInt64(Self.symbolSize)), (14, UInt64(sonameOffset)), (0, 0),
        ]
        for (index, (tag, value)) in dynamic.enumerated() {
            image.u64(writableOffset + Self.dynamicEntrySize * index, tag)
            image.u64(writableOffset + Self.dynamicEntrySize * index + 8, value)
        }
        bytes = image.image
    }
}

/// The SysV ELF hash of a symbol name.
func elfHash(_ name: String) -> UInt32 {
    var hash: UInt32 = 0
    for byte in name.utf8 {
        hash = (hash << 4) &+ UInt32(byte)
        let high = hash & 0xf000_0000
        if high != 0 { hash ^= high >> 24 }
        hash &= ~high
    }
    return hash
}

/// Little-endian fields written into a zeroed image.
private struct ImageWriter {
    var image: [UInt8]

    init(size: Int) { image = [UInt8](repeating: 0, count: size) }

    mutating func bytes(_ offset: Int, _ values: [UInt8]) {
        image.replaceSubrange(offset..<(offset + values.count), with: values)
    }

    mutating func u16(_ offset: Int, _ value: UInt16) { field(offset, UInt64(value), 2) }
    mutating func u32(_ offset: Int, _ value: UInt32) { field(offset, UInt64(value), 4) }
    mutating func u64(_ offset: Int, _ value: UInt64) { field(offset, value, 8) }

    private mutating func field(_ offset: Int, _ value: UInt64, _ width: Int) {
        for index in 0..<width { image[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }

    /// Program header `index`: file offset and address are equal, file and memory sizes too.
    mutating func programHeader(_ index: Int, type: UInt32, flags: UInt32, offset: Int, size: Int, align: Int) {
        let at = 64 + 56 * index
        u32(at, type)
        u32(at + 4, flags)
        u64(at + 8, UInt64(offset))
        u64(at + 16, UInt64(offset))
        u64(at + 24, UInt64(offset))
        u64(at + 32, UInt64(size))
        u64(at + 40, UInt64(size))
        u64(at + 48, UInt64(align))
    }
}
