// GDB sees generated code: one in-memory ELF object per crate version, given
// to GDB's JIT interface (CKilnShim's gdb_jit.c), with a symbol per function
// and DWARF line tables that map code to IL lines.
//
// Cheap on purpose (a debugger slows down with thousands of objects): one
// object per crate version, not per function, and only when a debugger is
// attached when the loader starts, or KILN_GDB=1 asks (KILN_GDB=0 never).
// When a version's blocks change (placed, moved by compaction, rewritten by
// a reload, freed), CodeEvents.swift says so after the world has resumed, and
// that version's object is unregistered and made again; a version with no
// blocks left has none. Objects are freed when unregistered or when the
// loader goes.
//
// The object: an ELF executable for x86-64 with no program headers. Each
// block is a section of its own (SHT_NOBITS, at the block's address: GDB
// reads the code from the process), so objects of different versions never
// overlap even where their blocks interleave in the heap. DWARF 4: one
// compilation unit named after the IL file, a subprogram per function, and a
// line program with one sequence per block.

import CKilnShim
import KilnCode

extension Loader {
    /// Registers this loader's code with GDB's JIT interface from now on, and keeps it
    /// registered as it moves and goes (what a loader does by itself when a debugger is
    /// attached as it starts, or with KILN_GDB=1).
    public func registerCodeWithDebugger() {
        guard !(lock.locked { codeEvents.listeners.contains { $0 is GdbJit } }) else { return }
        addCodeListener(GdbJit(heap: heap))
    }
}

/// Registers a loader's code with GDB; see the file comment.
final class GdbJit: CodeListener {
    /// Whether loaders register their code: KILN_GDB=1 (yes), KILN_GDB=0 (no), otherwise
    /// when a debugger is attached.
    static let isWanted: Bool = {
        switch System.environmentValue("KILN_GDB") {
        case "1": return true
        case "0": return false
        default: return kiln_is_traced() != 0
        }
    }()

    private unowned let heap: CodeHeap
    /// Each crate version's registered object: GDB's entry and the bytes (ours to free).
    private var objects: [ObjectIdentifier: (entry: UnsafeMutableRawPointer?, bytes: UnsafeMutableRawBufferPointer)] = [:]

    init(heap: CodeHeap) {
        self.heap = heap
    }

    deinit {
        for key in Array(objects.keys) { drop(key) }
    }

    /// How many objects GDB has been given and not told to drop (for tests).
    var registeredCount: Int { objects.count }

    func codeChanged(_ changes: CodeChanges) {
        var blocksByVersion: [ObjectIdentifier: [CodeBlock]] = [:]
        for block in heap.blocks {
            guard let version = block.version.map(ObjectIdentifier.init), changes.versions.contains(version) else { continue }
            blocksByVersion[version, default: []].append(block)
        }
        for version in changes.versions {
            drop(version)
            guard let blocks = blocksByVersion[version], let module = blocks[0].version?.module else { continue }
            let image = Self.object(of: blocks, module: module)
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: image.count, alignment: 16)
            bytes.copyBytes(from: image)
            objects[version] = (kiln_gdb_register(bytes.baseAddress, UInt64(bytes.count)), bytes)
        }
    }

    private func drop(_ version: ObjectIdentifier) {
        guard let object = objects.removeValue(forKey: version) else { return }
        kiln_gdb_unregister(object.entry)
        object.bytes.deallocate()
    }

    // MARK: The object file

    /// The ELF object of `blocks` (all of one version of a crate compiled from `module`).
    static func object(of blocks: [CodeBlock], module: CompiledModule) -> [UInt8] {
        let sectionNames = StringTable()
        let symbolNames = StringTable()
        var symbols = ByteWriter()
        symbols.zeros(24)  // the null symbol
        for (index, block) in blocks.enumerated() {
            symbols.u32(symbolNames.offset(of: unquoted(block.name)))
            symbols.u8(0x12)  // STB_GLOBAL, STT_FUNC
            symbols.u8(0)
            symbols.u16(UInt16(1 + index))
            symbols.u64(UInt64(block.entry))
            symbols.u64(UInt64(block.size))
        }
        let dwarf = Dwarf(blocks: blocks, module: module)

        // Sections: null, one per block, then the tables.
        struct Section { var name: UInt32; var type: UInt32; var flags: UInt64; var address: UInt64; var contents: [UInt8]; var size: UInt64; var link: UInt32 = 0; var info: UInt32 = 0; var alignment: UInt64 = 1; var entrySize: UInt64 = 0 }
        var sections: [Section] = [Section(name: 0, type: 0, flags: 0, address: 0, contents: [], size: 0)]
        let text = sectionNames.offset(of: ".text")
        for block in blocks {
            sections.append(Section(name: text, type: 8, flags: 6, address: UInt64(block.entry), contents: [], size: UInt64(block.size), alignment: 16))
        }
        let symbolTableIndex = sections.count
        sections.append(Section(name: sectionNames.offset(of: ".symtab"), type: 2, flags: 0, address: 0, contents: symbols.bytes,
                                size: UInt64(symbols.bytes.count), link: UInt32(symbolTableIndex + 1), info: 1, alignment: 8, entrySize: 24))
        sections.append(Section(name: sectionNames.offset(of: ".strtab"), type: 3, flags: 0, address: 0, contents: symbolNames.bytes,
                                size: UInt64(symbolNames.bytes.count)))
        for (name, contents) in [(".debug_abbrev", dwarf.abbreviations), (".debug_info", dwarf.information), (".debug_line", dwarf.lines)] {
            sections.append(Section(name: sectionNames.offset(of: name), type: 1, flags: 0, address: 0, contents: contents, size: UInt64(contents.count)))
        }
        let namesIndex = sections.count
        let namesName = sectionNames.offset(of: ".shstrtab")
        sections.append(Section(name: namesName, type: 3, flags: 0, address: 0, contents: sectionNames.bytes, size: UInt64(sectionNames.bytes.count)))

        var file = ByteWriter()
        // Contents first (after the 64-byte header), then the section headers.
        var offsets: [UInt64] = []
        var body = ByteWriter()
        for section in sections {
            while (64 + body.bytes.count) % 8 != 0 { body.u8(0) }
            offsets.append(UInt64(64 + body.bytes.count))
            body.bytes += section.contents
        }
        while (64 + body.bytes.count) % 8 != 0 { body.u8(0) }
        let headersOffset = UInt64(64 + body.bytes.count)
        file.bytes += [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        file.u16(2)  // ET_EXEC
        file.u16(62)  // EM_X86_64
        file.u32(1)
        file.u64(0)  // entry
        file.u64(0)  // program headers: none
        file.u64(headersOffset)
        file.u32(0)
        file.u16(64)
        file.u16(0)
        file.u16(0)
        file.u16(64)
        file.u16(UInt16(sections.count))
        file.u16(UInt16(namesIndex))
        file.bytes += body.bytes
        for (index, section) in sections.enumerated() {
            file.u32(section.name)
            file.u32(section.type)
            file.u64(section.flags)
            file.u64(section.address)
            file.u64(section.type == 8 || index == 0 ? 0 : offsets[index])
            file.u64(section.size)
            file.u32(section.link)
            file.u32(section.info)
            file.u64(section.alignment)
            file.u64(section.entrySize)
        }
        return file.bytes
    }
}

/// The DWARF 4 sections of one object: see GdbJit's file comment.
private struct Dwarf {
    var abbreviations: [UInt8] = []
    var information: [UInt8] = []
    var lines: [UInt8] = []

    init(blocks: [CodeBlock], module: CompiledModule) {
        // 1: the compilation unit; 2: a function.
        var abbreviation = ByteWriter()
        abbreviation.uleb(1); abbreviation.uleb(0x11); abbreviation.u8(1)  // DW_TAG_compile_unit, children
        for (attribute, form) in [(0x03, 0x08), (0x1B, 0x08), (0x25, 0x08), (0x13, 0x05), (0x10, 0x17)] {
            abbreviation.uleb(UInt64(attribute)); abbreviation.uleb(UInt64(form))  // name, comp_dir, producer: string; language: data2; stmt_list: sec_offset
        }
        abbreviation.u16(0)
        abbreviation.uleb(2); abbreviation.uleb(0x2E); abbreviation.u8(0)  // DW_TAG_subprogram, no children
        for (attribute, form) in [(0x03, 0x08), (0x11, 0x01), (0x12, 0x07), (0x3F, 0x19)] {
            abbreviation.uleb(UInt64(attribute)); abbreviation.uleb(UInt64(form))  // name, low_pc: addr, high_pc: data8, external
        }
        abbreviation.u16(0)
        abbreviation.u8(0)
        abbreviations = abbreviation.bytes

        var unit = ByteWriter()
        unit.u16(4)  // version
        unit.u32(0)  // abbreviations at 0
        unit.u8(8)  // address size
        unit.uleb(1)
        unit.cString(module.name)
        unit.cString(System.currentDirectory)
        unit.cString("Kiln")
        unit.u16(0x0C)  // DW_LANG_C99: GDB prints frames as C
        unit.u32(0)  // the line program at 0
        for block in blocks {
            unit.uleb(2)
            unit.cString(unquoted(block.name))
            unit.u64(UInt64(block.entry))
            unit.u64(UInt64(block.size))
        }
        unit.u8(0)
        var info = ByteWriter()
        info.u32(UInt32(unit.bytes.count))
        info.bytes += unit.bytes
        information = info.bytes

        var header = ByteWriter()
        header.u8(1)  // minimum instruction length
        header.u8(1)  // maximum operations per instruction
        header.u8(1)  // default is_stmt
        header.u8(0xFB)  // line base -5
        header.u8(14)  // line range
        header.u8(13)  // opcode base
        header.bytes += [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1]
        header.u8(0)  // no include directories
        header.cString(module.name)
        header.uleb(0); header.uleb(0); header.uleb(0)
        header.u8(0)
        var program = ByteWriter()
        for block in blocks {
            guard block.functionIndex < module.functions.count, !module.sourceLineStarts.isEmpty else { continue }
            let table = module.functions[block.functionIndex].lineTable
            guard !table.isEmpty else { continue }
            program.u8(0); program.uleb(9); program.u8(2); program.u64(UInt64(block.entry))  // DW_LNE_set_address
            var address: UInt64 = 0
            var line: Int64 = 1
            for (index, entry) in table.enumerated() {
                let offset = index == 0 ? 0 : UInt64(entry.codeOffset)
                guard offset < UInt64(block.size) else { break }
                let next = Int64(Loader.line(ofSourceOffset: entry.sourceOffset, lineStarts: module.sourceLineStarts))
                if offset > address { program.u8(2); program.uleb(offset - address) }  // DW_LNS_advance_pc
                if next != line { program.u8(3); program.sleb(next - line) }  // DW_LNS_advance_line
                program.u8(1)  // DW_LNS_copy
                address = offset
                line = next
            }
            if UInt64(block.size) > address { program.u8(2); program.uleb(UInt64(block.size) - address) }
            program.u8(0); program.uleb(1); program.u8(1)  // DW_LNE_end_sequence
        }
        var line = ByteWriter()
        line.u16(4)
        line.u32(UInt32(header.bytes.count))
        line.bytes += header.bytes
        line.bytes += program.bytes
        var unitLines = ByteWriter()
        unitLines.u32(UInt32(line.bytes.count))
        unitLines.bytes += line.bytes
        lines = unitLines.bytes
    }
}

/// A string table: offsets of NUL-terminated names, the first byte empty.
private final class StringTable {
    private(set) var bytes: [UInt8] = [0]
    private var offsets: [String: UInt32] = [:]

    func offset(of name: String) -> UInt32 {
        if let offset = offsets[name] { return offset }
        let offset = UInt32(bytes.count)
        bytes += Array(name.utf8)
        bytes.append(0)
        offsets[name] = offset
        return offset
    }
}

/// Little-endian bytes for object files and debug records (JitDump.swift too).
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func zeros(_ count: Int) { bytes += repeatElement(0, count: count) }
    mutating func cString(_ text: String) {
        bytes += Array(text.utf8)
        bytes.append(0)
    }

    mutating func uleb(_ value: UInt64) {
        var rest = value
        repeat {
            var byte = UInt8(rest & 0x7F)
            rest >>= 7
            if rest != 0 { byte |= 0x80 }
            bytes.append(byte)
        } while rest != 0
    }

    mutating func sleb(_ value: Int64) {
        var rest = value
        while true {
            let byte = UInt8(rest & 0x7F)
            rest >>= 7
            if (rest == 0 && byte & 0x40 == 0) || (rest == -1 && byte & 0x40 != 0) {
                bytes.append(byte)
                return
            }
            bytes.append(byte | 0x80)
        }
    }
}
