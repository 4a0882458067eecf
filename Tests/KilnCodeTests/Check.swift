// Helpers shared by the crate-file tests: the conformance corpus compiled to
// crate files, a structural comparison of modules, a hand-written crate file
// whose every field is placed by the test (so refusals can be aimed at one
// byte), and the one `expectRefused` check.

import Foundation
import KilnCode
import KilnCodegen
import KilnIL
import Testing

/// The package's root folder (this file is Tests/KilnCodeTests/Check.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Every IL file of the conformance corpus, sorted.
let conformanceFiles: [String] = {
    let directory = packageRoot.appendingPathComponent("Tests/Conformance")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { $0.hasSuffix(".ssa") }.sorted().map { directory.appendingPathComponent($0).path }
}()

struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

/// An IL file compiled as `kiln build` compiles it, line starts included.
func compiledModule(_ path: String) throws -> CompiledModule {
    let source = SourceFile(name: path, bytes: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    let (module, diagnostics) = parseAndVerify(source)
    let errors = diagnostics.filter { $0.severity == .error }
    guard errors.isEmpty else { throw TestFailure(description: errors.map(\.rendered).joined(separator: "\n")) }
    var compiled = try compileModule(module)
    compiled.sourceLineStarts = source.lineStarts
    return compiled
}

/// The crate files of a few conformance programs, the hand-written one first: the seeds of
/// the mutation tests.
let seedCrates: [[UInt8]] = {
    let names = ["abi-agg-mixed-il.ssa", "callback-qsort.ssa", "data-items.ssa", "data-tls.ssa", "env.ssa"]
    let paths = conformanceFiles.filter { path in names.contains { path.hasSuffix("/" + $0) } }
    return [tinyCrate.bytes] + paths.compactMap { try? CrateFile.encode(compiledModule($0)) }
}()

/// The first difference between two modules, or nil when they are equal field by field
/// (names compared byte for byte, not by Unicode equivalence).
func difference(_ a: CompiledModule, _ b: CompiledModule) -> String? {
    func same(_ x: String, _ y: String) -> Bool { x.utf8.elementsEqual(y.utf8) }
    guard same(a.name, b.name) else { return "crate names \(a.name) and \(b.name)" }
    guard a.sourceLineStarts == b.sourceLineStarts else { return "source line starts" }
    guard a.functions.count == b.functions.count else { return "\(a.functions.count) and \(b.functions.count) functions" }
    guard a.data.count == b.data.count else { return "\(a.data.count) and \(b.data.count) data objects" }
    for (f, g) in zip(a.functions, b.functions) {
        guard same(f.name, g.name), f.isExported == g.isExported else { return "function $\(f.name) and $\(g.name)" }
        guard f.code == g.code else { return "code of $\(f.name)" }
        guard f.relocations == g.relocations else { return "relocations of $\(f.name)" }
        guard f.lineTable.map({ [$0.codeOffset, $0.sourceOffset] }) == g.lineTable.map({ [$0.codeOffset, $0.sourceOffset] }) else {
            return "line table of $\(f.name)"
        }
        guard f.stackMaps == g.stackMaps else { return "stack maps of $\(f.name)" }
    }
    for (x, y) in zip(a.data, b.data) {
        guard same(x.name, y.name), x.isExported == y.isExported, x.isThreadLocal == y.isThreadLocal else {
            return "data $\(x.name) and $\(y.name)"
        }
        guard x.alignment == y.alignment, x.size == y.size, x.segments == y.segments else {
            return "alignment, size or contents of $\(x.name)"
        }
        guard x.relocations == y.relocations else { return "relocations of $\(x.name)" }
        guard x.managedSlots == y.managedSlots else { return "managed slots of $\(x.name)" }
    }
    return nil
}

/// Expects `bytes` to be refused with exactly `message` (the error's description).
func expectRefused(_ bytes: [UInt8], _ message: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    do {
        let module = try CrateFile.decode(bytes)
        Issue.record("decoded a crate named \(module.name); expected: \(message)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.description == message, sourceLocation: sourceLocation)
    }
}

// MARK: - A crate file written by hand

/// A crate file's body written field by field, with named marks at the file offsets of the
/// fields the refusal tests aim at.
struct HandWrittenCrate {
    var body: [UInt8] = []
    private(set) var marks: [String: Int] = [:]

    /// The file offset of the next byte.
    var offset: Int { CrateFile.headerLength + body.count }

    mutating func mark(_ label: String) { marks[label] = offset }
    mutating func u8(_ value: UInt8) { body.append(value) }
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { body += $0 } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { body += $0 } }
    mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
    mutating func i64(_ value: Int64) { withUnsafeBytes(of: value.littleEndian) { body += $0 } }
    mutating func name(_ text: String) { u32(UInt32(text.utf8.count)); body += text.utf8 }

    /// A relocation record: offset, kind, target kind, zero, target, addend.
    mutating func record(_ offset: UInt32, _ kind: UInt8, _ targetKind: UInt8, _ target: UInt32, _ addend: Int64) {
        u32(offset); u8(kind); u8(targetKind); u16(0); u32(target); i64(addend)
    }

    /// The whole file: header, body, total length and checksum.
    var bytes: [UInt8] {
        var file = Array("KILNCRAT".utf8)
        for field: UInt32 in [CrateFile.formatVersion, 40, 0, 0] { withUnsafeBytes(of: field.littleEndian) { file += $0 } }
        file += [UInt8](repeating: 0, count: 16) + body
        CrateFile.reseal(&file)
        return file
    }
}

/// The module `tinyCrate` encodes: every kind of target, a reused import, line table,
/// stack map, thread-local data with a data segment, and managed slot.
let tinyModule = CompiledModule(
    name: "tiny.ssa",
    functions: [
        CodeObject(name: "main", isExported: true, code: [UInt8](repeating: 0x90, count: 24), relocations: [
            Relocation(offset: 1, kind: .pcRelative32, target: .callSlot("puts"), addend: -4),
            Relocation(offset: 6, kind: .pcRelative32, target: .data(0), addend: -4),
            Relocation(offset: 11, kind: .pcRelative32, target: .function(1), addend: -4),
            Relocation(offset: 16, kind: .offset32, target: .threadLocal(1)),
            Relocation(offset: 20, kind: .pcRelative32, target: .addressSlot("errno"), addend: -4),
        ], lineTable: [(0, 10), (5, 24)], stackMaps: [StackMap(codeOffset: 10, frameSlots: [-8, -16])]),
        CodeObject(name: "helper", isExported: false, code: [0xE8, 0, 0, 0, 0, 0xC3], relocations: [
            Relocation(offset: 1, kind: .pcRelative32, target: .callSlot("puts"), addend: -4),
        ]),
    ],
    data: [
        DataObject(name: "message", isExported: true, isThreadLocal: false, alignment: 8,
                   bytes: [UInt8](repeating: 0, count: 16), relocations: [
                       Relocation(offset: 0, kind: .absolute64, target: .stub(1)),
                       Relocation(offset: 8, kind: .absolute64, target: .external("environ"), addend: 16),
                   ], managedSlots: [8]),
        DataObject(name: "counter", isExported: false, isThreadLocal: true, alignment: 4, bytes: [0, 0, 5, 0],
                   relocations: []),
    ],
    sourceLineStarts: [0, 10, 24]
)

/// `tinyModule`'s crate file, written by hand from the layout in CrateFile.swift.
let tinyCrate: HandWrittenCrate = {
    var crate = HandWrittenCrate()
    crate.name("tiny.ssa")
    crate.u32(3); crate.u32(0); crate.u32(10); crate.u32(24)
    crate.u32(2)
    crate.mark("main"); crate.name("main"); crate.u8(1)
    crate.u32(24); crate.body += [UInt8](repeating: 0x90, count: 24)
    crate.mark("relocations of main"); crate.u32(5)
    crate.mark("relocation 0 of main"); crate.record(1, 0, 4, 0, -4); crate.name("puts")
    crate.record(6, 0, 2, 0, -4)
    crate.record(11, 0, 0, 1, -4)
    crate.record(16, 3, 6, 1, 0)
    crate.mark("relocation 4 of main"); crate.record(20, 0, 5, 1, -4); crate.name("errno")
    crate.u32(2); crate.u32(0); crate.u32(10); crate.u32(5); crate.u32(24)
    crate.u32(1); crate.u32(10); crate.u32(2); crate.i32(-8); crate.i32(-16)
    crate.name("helper"); crate.mark("flags of helper"); crate.u8(0)
    crate.u32(6); crate.body += [0xE8, 0, 0, 0, 0, 0xC3]
    crate.u32(1); crate.record(1, 0, 4, 0, -4)
    crate.u32(0); crate.u32(0)
    crate.u32(2)
    crate.name("message"); crate.u8(1); crate.u32(8)
    crate.u32(16); crate.u32(0)
    crate.u32(2); crate.record(0, 1, 1, 1, 0); crate.record(8, 1, 3, 2, 16); crate.name("environ")
    crate.u32(1); crate.u32(8)
    crate.name("counter"); crate.u8(2); crate.u32(4)
    crate.mark("size of counter"); crate.u32(4)
    crate.mark("segments of counter"); crate.u32(1); crate.u32(2); crate.u32(1); crate.u8(5)
    crate.u32(0); crate.u32(0)
    crate.mark("call slots"); crate.u32(1); crate.name("puts")
    crate.u32(1); crate.name("errno")
    crate.mark("exports"); crate.u32(2); crate.name("main"); crate.name("message")
    crate.mark("imports"); crate.u32(3); crate.name("puts"); crate.name("errno"); crate.name("environ")
    return crate
}()

/// A deterministic pseudo-random generator (SplitMix64), so that failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
