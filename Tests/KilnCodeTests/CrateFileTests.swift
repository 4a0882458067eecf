// Crate files: the layout against a file written by hand, the round trip of
// every conformance program, and each kind of refusal with its exact message.
//
// Refusals are aimed at one field of the hand-written `tinyCrate` (its marks
// give the offsets) and the file is resealed, so that the decoder's check of
// that field, not the checksum, is what refuses it.

import KilnCode
import Testing

/// `bytes` with `values` written at `offset`, resealed unless asked not to.
func patched(_ bytes: [UInt8], at offset: Int, _ values: [UInt8], reseal: Bool = true) -> [UInt8] {
    var result = bytes
    result.replaceSubrange(offset..<(offset + values.count), with: values)
    if reseal { CrateFile.reseal(&result) }
    return result
}

/// The little-endian bytes of a u32.
func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

@Suite struct CrateFileTests {
    let tiny = tinyCrate.bytes
    let marks = tinyCrate.marks

    // MARK: Round trips

    @Test func theLayoutIsAsDocumented() throws {
        #expect(CrateFile.encode(tinyModule) == tiny)
        let decoded = try CrateFile.decode(tiny)
        #expect(difference(decoded, tinyModule) == nil)
    }

    @Test func theCorpusIsThere() {
        #expect(conformanceFiles.count >= 40)
    }

    @Test(arguments: conformanceFiles)
    func roundTrip(_ path: String) throws {
        let module = try compiledModule(path)
        let file = CrateFile.encode(module)
        let decoded = try CrateFile.decode(file)
        #expect(difference(decoded, module) == nil)
        #expect(CrateFile.encode(decoded) == file)
    }

    @Test func theChecksumSeesEveryBit() {
        let body = (0..<75).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let original = body.withUnsafeBytes(CrateFile.checksum)
        for bit in 0..<(8 * body.count) {
            var changed = body
            changed[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(changed.withUnsafeBytes(CrateFile.checksum) != original, "bit \(bit)")
        }
    }

    // MARK: The header

    @Test func refusesShortFilesAndOtherFormats() {
        expectRefused(Array(tiny.prefix(20)), "byte 20: truncated: 20 bytes, less than the 40-byte header")
        expectRefused([], "byte 0: truncated: 0 bytes, less than the 40-byte header")
        let wrongMagic = "byte 0: wrong magic: not a Kiln crate file (it starts with \"KILNCRAT\")"
        expectRefused(patched(tiny, at: 0, Array("KILNCRAP".utf8)), wrongMagic)
        expectRefused(Array("function w $main() {\n".utf8), wrongMagic)
        expectRefused(Array("KILX".utf8), wrongMagic)
    }

    @Test func refusesOtherVersionsAndUnknownHeaderFields() {
        expectRefused(patched(tiny, at: 8, le32(2)),
                      "byte 8: format version 2 is older than this Kiln's (3): rebuild the crate file from its IL with `kiln build`")
        expectRefused(patched(tiny, at: 8, le32(4)), "byte 8: format version 4, but this Kiln reads only version 3 (a newer Kiln wrote it)")
        expectRefused(patched(tiny, at: 12, le32(48)), "byte 12: header length 48, but a version 3 header is 40 bytes")
        expectRefused(patched(tiny, at: 16, le32(4)), "byte 16: unknown header flags 0x4")
        expectRefused(patched(tiny, at: 20, le32(7)), "byte 20: reserved header field is 7, not 0")
    }

    @Test func refusesTruncatedFilesAndTrailingGarbage() {
        let length = tiny.count
        expectRefused(Array(tiny.prefix(100)), "byte 100: truncated: the header gives a length of \(length) bytes, the file has 100")
        expectRefused(tiny + [1, 2, 3], "byte \(length): trailing garbage: 3 bytes after the \(length) bytes the header gives")
        var resealed = tiny + [1, 2, 3]
        CrateFile.reseal(&resealed)
        expectRefused(resealed, "byte \(length): trailing garbage: 3 bytes after the import list")
    }

    @Test func refusesAChecksumMismatch() {
        let corrupted = patched(tiny, at: 60, [tiny[60] ^ 0x10], reseal: false)
        let stored = tiny.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) }
        let computed = corrupted.withUnsafeBytes { CrateFile.checksum(UnsafeRawBufferPointer(rebasing: $0[40...])) }
        expectRefused(corrupted, "byte 32: checksum mismatch: the header says 0x\(String(stored, radix: 16)), "
                      + "bytes 40..<\(tiny.count) hash to 0x\(String(computed, radix: 16))")
    }

    // MARK: The body

    @Test func refusesCountsLargerThanTheFile() throws {
        let relocations = try #require(marks["relocations of main"])
        expectRefused(patched(tiny, at: relocations, le32(.max)),
                      "byte \(relocations): relocation count of $main is 4294967295, more than the "
                      + "\(tiny.count - relocations - 4) remaining bytes can hold")
        let code = try #require(marks["main"]) + 4 + 4 + 1
        expectRefused(patched(tiny, at: code, le32(1 << 20)),
                      "byte \(code): code of $main is 1048576, more than the \(tiny.count - code - 4) remaining bytes can hold")
    }

    @Test func refusesNamesThatAreNotUTF8() throws {
        let main = try #require(marks["main"])
        expectRefused(patched(tiny, at: main + 5, [0xFF]), "byte \(main): name of function 0 is not valid UTF-8")
        let imports = try #require(marks["relocation 0 of main"]) + 20
        expectRefused(patched(tiny, at: imports + 4, [0xC0, 0x80]),
                      "byte \(imports): relocation 0 of $main: name of import 0 is not valid UTF-8")
    }

    @Test func refusesUnknownKindsAndFlags() throws {
        let record = try #require(marks["relocation 0 of main"])
        expectRefused(patched(tiny, at: record + 4, [7]), "byte \(record + 4): relocation 0 of $main: unknown relocation kind 7")
        expectRefused(patched(tiny, at: record + 5, [9]), "byte \(record + 5): relocation 0 of $main: unknown target kind 9")
        expectRefused(patched(tiny, at: record + 6, [1]), "byte \(record + 6): relocation 0 of $main: reserved field is 1, not 0")
        let flags = try #require(marks["flags of helper"])
        expectRefused(patched(tiny, at: flags, [0x81]), "byte \(flags): flags of $helper: unknown bits 0x80")
    }

    @Test func refusesImportsOutOfOrderOrRepeated() throws {
        let record = try #require(marks["relocation 4 of main"])
        expectRefused(patched(tiny, at: record + 8, le32(5)),
                      "byte \(record + 8): relocation 4 of $main: import 5, but the next new import is 1")
        var crate = HandWrittenCrate()
        crate.name("twice"); crate.u32(0); crate.u32(1)
        crate.name("f"); crate.u8(0); crate.u32(16); crate.body += [UInt8](repeating: 0x90, count: 16)
        crate.u32(2); crate.record(0, 0, 4, 0, -4); crate.name("a")
        crate.record(8, 1, 3, 1, 0); crate.mark("second name"); crate.name("a")
        crate.u32(0); crate.u32(0); crate.u32(0)
        let second = try #require(crate.marks["second name"])
        expectRefused(crate.bytes, "byte \(second): relocation 1 of $f: import 1 is $a again (import 0)")
    }

    @Test func refusesDerivedListsThatDisagree() throws {
        let slots = try #require(marks["call slots"])
        expectRefused(patched(tiny, at: slots, le32(2)), "byte \(slots): the file lists 2 call slots, but the code uses 1")
        expectRefused(patched(tiny, at: slots + 8, Array("q".utf8)), "byte \(slots + 4): call slot 0 is $quts, but the code uses $puts")
        let flags = try #require(marks["flags of helper"]), exports = try #require(marks["exports"])
        expectRefused(patched(tiny, at: flags, [1]), "byte \(exports): the file lists 2 exports, but the objects' flags give 3")
        let imports = try #require(marks["imports"])
        expectRefused(patched(tiny, at: imports + 8, Array("P".utf8)),
                      "byte \(imports + 4): import 0 is $Puts, but the relocations use $puts")
    }

    @Test func zeroFillTakesNoRoomInTheFile() throws {
        // What a C compiler emits for `static char big[16 << 20];` and for a mostly empty table.
        let big = DataObject(name: "big", isExported: false, isThreadLocal: false, alignment: 8, size: 16 << 20,
                             segments: [], relocations: [])
        var sparse = DataContents()
        sparse.append(contentsOf: [1, 2, 0, 3])
        sparse.appendZeros(1 << 20)
        sparse.append(contentsOf: [0, 4])
        sparse.appendZeros(4096)
        let table = DataObject(name: "table", isExported: false, isThreadLocal: false, alignment: 8, size: sparse.size,
                               segments: sparse.segments, relocations: [])
        #expect(table.segments == [DataSegment(offset: 0, bytes: [1, 2, 0, 3]), DataSegment(offset: (1 << 20) + 5, bytes: [4])])
        let module = CompiledModule(name: "zeros.ssa", functions: [], data: [big, table])
        let file = CrateFile.encode(module)
        #expect(file.count < 200, "\(file.count) bytes")
        let decoded = try CrateFile.decode(file)
        #expect(difference(decoded, module) == nil)
        #expect(decoded.data[1].materializedBytes.count == (1 << 20) + 4096 + 6)
        #expect(decoded.data[1].materializedBytes[(1 << 20) + 5] == 4)
    }

    /// Contents with zero runs of every length around the minimum gap, appended whole, byte
    /// by byte and as integers, always give the same canonical segments, which give the
    /// bytes back.
    @Test func segmentsAreCanonicalAndGiveTheBytesBack() {
        var generator = SeededGenerator(state: 0x7A65_726F)
        for _ in 0..<300 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &generator) {
                let zeros = [0, 1, 31, 32, 33, 100][Int.random(in: 0..<6, using: &generator)]
                bytes += [UInt8](repeating: 0, count: zeros)
                bytes += (0..<Int.random(in: 0...9, using: &generator)).map { _ in UInt8.random(in: 0...3, using: &generator) }
            }
            let whole = DataContents(bytes)
            var single = DataContents(), words = DataContents()
            for byte in bytes { single.append(byte) }
            for start in stride(from: 0, to: bytes.count, by: 8) {
                let word = bytes[start..<min(start + 8, bytes.count)]
                words.appendLittleEndian(word.reversed().reduce(0) { $0 << 8 | UInt64($1) }, size: word.count)
            }
            #expect(single.segments == whole.segments && words.segments == whole.segments, "\(bytes)")
            #expect(DataContents.canonicalFormProblem(size: whole.size, segments: whole.segments) == nil, "\(bytes)")
            let object = DataObject(name: "x", isExported: false, isThreadLocal: false, alignment: 1, bytes: bytes, relocations: [])
            #expect(object.materializedBytes == bytes)
        }
    }

    @Test func refusesDataSegmentsThatAreNotCanonical() throws {
        let size = try #require(marks["size of counter"]), segments = try #require(marks["segments of counter"])
        expectRefused(patched(tiny, at: size, le32(2)),
                      "invalid module: $counter: segment 0 (bytes 2..<3) runs past the end of the object (2 bytes)")
        expectRefused(patched(tiny, at: segments + 12, [0]), "invalid module: $counter: segment 0 at 2 starts or ends with a zero")
        expectRefused(patched(tiny, at: segments, le32(.max)),
                      "byte \(segments): segment count of $counter is 4294967295, more than the "
                      + "\(tiny.count - segments - 4) remaining bytes can hold")
        // Two segments closer than the minimum gap, and a long zero run inside one segment.
        func problem(size: Int, _ segments: [DataSegment]) -> String? {
            DataContents.canonicalFormProblem(size: size, segments: segments)
        }
        #expect(problem(size: 100, [DataSegment(offset: 0, bytes: [1]), DataSegment(offset: 20, bytes: [2])])
                == "segment 1 at 20 is less than 32 bytes after the end of the one before")
        #expect(problem(size: 100, [DataSegment(offset: 0, bytes: [1] + [UInt8](repeating: 0, count: 32) + [2])])
                == "segment 0 at 0 holds a run of 32 zeros")
        #expect(problem(size: 100, [DataSegment(offset: 4, bytes: [])]) == "segment 0 is empty")
        #expect(problem(size: 100, [DataSegment(offset: 0, bytes: [1]), DataSegment(offset: 33, bytes: [2])]) == nil)
        #expect(problem(size: 100, DataContents([1] + [UInt8](repeating: 0, count: 32) + [2]).segments) == nil)
    }

    @Test func refusesWhatValidateRejects() throws {
        let record = try #require(marks["relocation 0 of main"])
        expectRefused(patched(tiny, at: record, le32(22)),
                      "invalid module: $main+0x16: pc32 field runs past the end of the object (24 bytes)")
        // Relocation 2 follows relocation 0 and the name of its new import, "puts".
        let call = record + 20 + 8 + 20
        expectRefused(patched(tiny, at: call + 8, le32(7)), "invalid module: $main+0xb refers to function #7, which does not exist")
    }

    /// The collector rewrites the words a stack map lists: a map that lists anything but an
    /// aligned word below the saved rbp is refused before the code is placed.
    @Test func stackMapsListOnlyWordsOfTheFrame() {
        for (slot, shown) in [(Int32(8), "rbp+8"), (-12, "rbp-12"), (0, "rbp+0"), (-(1 << 29), "rbp-536870912")] {
            var module = tinyModule
            module.functions[0].stackMaps = [StackMap(codeOffset: 10, frameSlots: [-8, slot])]
            #expect(throws: InvalidModule("$main: stack map 0 lists frame slot \(shown), which is not an aligned word of the frame")) {
                try module.validate()
            }
        }
        var fine = tinyModule
        fine.functions[0].stackMaps = [StackMap(codeOffset: 10, frameSlots: [-8, -(1 << 28)])]
        #expect(throws: Never.self) { try fine.validate() }
    }
}
