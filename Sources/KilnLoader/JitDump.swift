// perf sees generated code: perf's jitdump format (tools/perf/Documentation/
// jitdump-specification.txt in Linux), one file per process, `jit-PID.dump`.
//
// `perf record -k 1` records the file's mapping (the dump is mapped
// executable once, as the format asks, so the kernel reports it), and
// `perf inject --jit` reads the records back: JIT_CODE_LOAD (a function's
// code, name, address and an index), JIT_CODE_DEBUG_INFO just before it (its
// IL lines), and JIT_CODE_MOVE when compaction moves a block (same index, new
// address). A block rewritten by a reload is loaded again under a new index.
// Records are written when CodeEvents.swift reports changes, after the world
// has resumed; timestamps are CLOCK_MONOTONIC, perf's clock with `-k 1`.
//
// One writer per process (every loader writes into the same file), under a
// lock of its own; on with `kiln run --perf`, KILN_PERF=1 (any loader) or
// `Loader.writePerfJitDump()`. The file goes to KILN_PERF_DIR, or the current
// directory.

import KilnCode

extension Loader {
    /// Writes this loader's code to the process's perf jitdump file from now on (see
    /// JitDump.swift); returns the file's path. Throws when the file cannot be made.
    @discardableResult
    public func writePerfJitDump() throws(LoadError) -> String {
        let writer: JitDumpWriter
        do {
            writer = try JitDumpWriter.shared()
        } catch {
            throw .system(error)
        }
        if !(lock.locked { codeEvents.listeners.contains { $0 is JitDumpListener } }) {
            addCodeListener(JitDumpListener(writer: writer))
        }
        return writer.path
    }

    /// Whether KILN_PERF=1 asks every loader to write the jitdump file.
    static var perfWanted: Bool { System.environmentValue("KILN_PERF") == "1" }
}

/// One loader's view of the writer: which index each of its blocks was loaded under.
final class JitDumpListener: CodeListener {
    let writer: JitDumpWriter
    private var indices: [ObjectIdentifier: UInt64] = [:]

    init(writer: JitDumpWriter) {
        self.writer = writer
    }

    func codeChanged(_ changes: CodeChanges) {
        writer.locked { file in
            for removed in changes.removed { indices[ObjectIdentifier(removed.block)] = nil }
            for (block, from) in changes.moved {
                guard let index = indices[ObjectIdentifier(block)] else { continue }
                file.move(index: index, from: from, to: block.entry, size: block.size)
            }
            for block in changes.placed {
                indices[ObjectIdentifier(block)] = file.load(block)
            }
        }
    }
}

/// The process's jitdump file; see the file comment.
final class JitDumpWriter: @unchecked Sendable {
    let path: String
    private let descriptor: Int32
    private var nextIndex: UInt64 = 1
    private let lock = RuntimeLock()
    private var record = ByteWriter()

    nonisolated(unsafe) private static var instance: JitDumpWriter?
    private static let instanceLock = RuntimeLock()

    /// The process's writer, made (and the file written with its header) on first use.
    static func shared() throws(SystemError) -> JitDumpWriter {
        instanceLock.lock()
        defer { instanceLock.unlock() }
        if let instance { return instance }
        let directory = System.environmentValue("KILN_PERF_DIR") ?? "."
        let writer = try JitDumpWriter(path: "\(directory)/jit-\(System.processID).dump")
        instance = writer
        return writer
    }

    private init(path: String) throws(SystemError) {
        self.path = path
        descriptor = try System.createFile(path)
        var header = ByteWriter()
        header.u32(0x4A69_5444)  // "JiTD"
        header.u32(1)  // version
        header.u32(40)  // header size
        header.u32(62)  // EM_X86_64
        header.u32(0)
        header.u32(UInt32(System.processID))
        header.u64(Self.timestamp)
        header.u64(0)  // flags
        try System.writeAll(descriptor, header.bytes)
        // perf finds the file through this mapping (kept for the life of the process).
        try System.mapForPerf(descriptor)
    }

    static var timestamp: UInt64 { UInt64(System.monotonicNanoseconds()) }

    func locked(_ body: (JitDumpWriter) -> Void) {
        lock.locked { body(self) }
    }

    /// Writes JIT_CODE_DEBUG_INFO (when the block has IL lines) and JIT_CODE_LOAD for
    /// `block`; returns the index it was loaded under.
    func load(_ block: CodeBlock) -> UInt64 {
        let index = nextIndex
        nextIndex += 1
        let name = unquoted(block.name)
        if let version = block.version, block.functionIndex < version.module.functions.count {
            let module = version.module
            let table = module.functions[block.functionIndex].lineTable
            if !table.isEmpty, !module.sourceLineStarts.isEmpty {
                var entries = ByteWriter()
                var count: UInt64 = 0
                for (position, entry) in table.enumerated() where Int(entry.codeOffset) < block.size {
                    entries.u64(UInt64(block.entry) + (position == 0 ? 0 : UInt64(entry.codeOffset)))
                    entries.u32(UInt32(Loader.line(ofSourceOffset: entry.sourceOffset, lineStarts: module.sourceLineStarts)))
                    entries.u32(0)  // discriminator
                    entries.cString(module.name)
                    count += 1
                }
                begin(2)
                record.u64(UInt64(block.entry))
                record.u64(count)
                record.bytes += entries.bytes
                end()
            }
        }
        begin(0)
        record.u32(UInt32(System.processID))
        record.u32(UInt32(System.threadID))
        record.u64(UInt64(block.entry))  // vma
        record.u64(UInt64(block.entry))  // code address
        record.u64(UInt64(block.size))
        record.u64(index)
        record.cString(name)
        record.bytes += UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: block.entry), count: block.size)
        end()
        return index
    }

    /// Writes JIT_CODE_MOVE: the code loaded under `index` is now at `to`.
    func move(index: UInt64, from: UInt, to: UInt, size: Int) {
        begin(1)
        record.u32(UInt32(System.processID))
        record.u32(UInt32(System.threadID))
        record.u64(UInt64(to))  // vma
        record.u64(UInt64(from))
        record.u64(UInt64(to))
        record.u64(UInt64(size))
        record.u64(index)
        end()
    }

    /// Starts a record of kind `id` (its header's size is filled in by `end`).
    private func begin(_ id: UInt32) {
        record.bytes.removeAll(keepingCapacity: true)
        record.u32(id)
        record.u32(0)
        record.u64(Self.timestamp)
    }

    private func end() {
        let size = UInt32(record.bytes.count)
        withUnsafeBytes(of: size.littleEndian) { record.bytes.replaceSubrange(4..<8, with: $0) }
        // A full disk loses the profile, not the program.
        try? System.writeAll(descriptor, record.bytes)
    }
}
