// Crate files that are damaged: every truncation of a real one, and a short
// fuzz of mutated ones from a fixed seed (the long fuzzing is libFuzzer's, see
// scripts/fuzz-crate.sh). The promise under test: decoding refuses with an
// error or returns a module that passes `validate()` and encodes back to the
// very same bytes. A trap would end the test run, which is a failure too.

import KilnCode
import Testing

/// Decodes `bytes`; records an issue if a decoded module breaks the promise. Returns the
/// error, or nil when the file decoded.
func decodeKeepingPromises(_ bytes: [UInt8], _ label: @autoclosure () -> String) -> CrateFileError? {
    let module: CompiledModule
    do {
        module = try CrateFile.decode(bytes)
    } catch {
        return error
    }
    do {
        try module.validate()
    } catch {
        Issue.record("\(label()): decoded a module that fails validate(): \(error)")
    }
    if CrateFile.encode(module) != bytes { Issue.record("\(label()): decoded, but encodes to other bytes") }
    return nil
}

/// One to three mutations of one seed: bit flips, byte and word changes, truncations,
/// splices with another seed, deleted and repeated ranges.
func mutated(_ seeds: [[UInt8]], using generator: inout SeededGenerator) -> [UInt8] {
    var bytes = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
    for _ in 0..<Int.random(in: 1...3, using: &generator) where !bytes.isEmpty {
        let at = Int.random(in: 0..<bytes.count, using: &generator)
        switch generator.next() % 6 {
        case 0:
            bytes[at] ^= 1 << UInt8(generator.next() % 8)
        case 1:
            bytes[at] = UInt8(truncatingIfNeeded: generator.next())
        case 2:
            let words: [UInt32] = [0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFF_FFFF, UInt32(bytes.count),
                                   UInt32(truncatingIfNeeded: generator.next() % 64)]
            let word = words[Int.random(in: 0..<words.count, using: &generator)]
            let end = min(at + 4, bytes.count)
            bytes.replaceSubrange(at..<end, with: withUnsafeBytes(of: word.littleEndian) { Array($0.prefix(end - at)) })
        case 3:
            bytes.removeLast(bytes.count - at)
        case 4:
            let other = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
            bytes = Array(bytes[..<at]) + other[Int.random(in: 0..<other.count, using: &generator)...]
        default:
            let end = min(bytes.count, at + Int.random(in: 1...16, using: &generator))
            if generator.next() % 2 == 0 {
                bytes.removeSubrange(at..<end)
            } else {
                bytes.insert(contentsOf: bytes[at..<end], at: at)
            }
        }
    }
    return bytes
}

@Suite struct CrateFileMutationTests {
    @Test func seedsDecode() throws {
        #expect(seedCrates.count >= 5)
        for seed in seedCrates {
            #expect(decodeKeepingPromises(seed, "seed") == nil)
        }
    }

    /// Every prefix is refused, as cut (the header's length disagrees) and resealed (the
    /// body itself ends early).
    @Test func everyTruncationIsRefused() throws {
        let file = try #require(seedCrates.max { $0.count < $1.count })
        for length in 0..<file.count {
            var prefix = Array(file[..<length])
            #expect(decodeKeepingPromises(prefix, "prefix \(length)") != nil, "prefix \(length) decoded")
            guard length >= CrateFile.headerLength else { continue }
            CrateFile.reseal(&prefix)
            #expect(decodeKeepingPromises(prefix, "resealed prefix \(length)") != nil, "resealed prefix \(length) decoded")
        }
    }

    /// 20,000 mutated files, half of them resealed so that the mutations reach the checks
    /// behind the checksum. Most resealed ones must be refused inside the body, or the
    /// test would be exercising the checksum alone.
    @Test func mutatedFilesAreRefusedOrKeepTheirPromises() {
        var generator = SeededGenerator(state: 0x6B69_6C6E_6372_6174)
        var refusedInBody = 0, decoded = 0
        for round in 0..<20_000 {
            var input = mutated(seedCrates, using: &generator)
            let resealed = round % 2 == 0
            if resealed { CrateFile.reseal(&input) }
            guard let error = decodeKeepingPromises(input, "round \(round)") else {
                decoded += 1
                continue
            }
            if resealed, (error.offset ?? Int.max) >= CrateFile.headerLength { refusedInBody += 1 }
        }
        #expect(refusedInBody > 5_000, "only \(refusedInBody) resealed inputs reached the body checks")
        #expect(decoded > 100, "only \(decoded) mutated inputs decoded")
    }
}
