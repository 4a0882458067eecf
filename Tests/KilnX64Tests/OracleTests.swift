// The exhaustive oracle: every encoding in `OracleSuite` is written to one
// binary file, disassembled once by objdump (and once by llvm-mc when it is
// installed), and each decoded instruction must start where the case starts,
// span exactly the bytes the encoder wrote, and read as the expected text.
//
// objdump is required: without it the test fails, it does not skip.

import Foundation
import KilnX64
import Testing

@Suite struct OracleTests {
    /// Writes the suite's bytes to a temporary file and returns its path.
    private static func writeBinary(_ suite: OracleSuite, _ suffix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("kiln-x64-oracle-\(ProcessInfo.processInfo.processIdentifier)-\(suffix)")
        let data = suite.buffer.withUnsafeBytes { Data($0) }
        try data.write(to: url)
        return url
    }

    /// Records one issue listing the first mismatches, if there are any.
    private static func report(_ mismatches: [String], _ total: Int, tool: String) {
        guard !mismatches.isEmpty else { return }
        let shown = mismatches.prefix(25).joined(separator: "\n")
        Issue.record("\(tool): \(mismatches.count) of \(total) encodings disagree; first ones:\n\(shown)")
    }

    @Test func objdumpDecodesEveryEncodingAsExpected() throws {
        guard let objdump = Disassembler.find("objdump") else {
            Issue.record("objdump is not installed (binutils); the encoder oracle cannot run")
            return
        }
        let suite = OracleSuite.build()
        let url = try Self.writeBinary(suite, "objdump.bin")
        defer { try? FileManager.default.removeItem(at: url) }
        let output = try Disassembler.run(
            objdump, ["-D", "-b", "binary", "-mi386:x86-64", "-M", "intel", "--insn-width=16", url.path])
        var decoded: [Int: DecodedInstruction] = [:]
        for instruction in Disassembler.parseObjdump(output) { decoded[instruction.offset] = instruction }

        var mismatches: [String] = []
        for item in suite.cases {
            let bytes = { suite.buffer.withUnsafeBytes { Array($0[item.offset..<item.offset + item.length]) } }
            guard let instruction = decoded[item.offset] else {
                mismatches.append("no instruction starts at \(item.offset): \(item.text) [\(hex(bytes()))]")
                continue
            }
            let expected = Disassembler.canonical(item.objdumpText, immediateBits: item.immediateBits)
            let actual = Disassembler.canonical(
                output, instruction.textStart, instruction.textEnd, immediateBits: item.immediateBits)
            if instruction.length != item.length || expected != actual {
                let text = String(decoding: output[instruction.textStart..<instruction.textEnd], as: UTF8.self)
                mismatches.append(
                    "\(item.text) [\(hex(bytes()))]: objdump read \(instruction.length) bytes as '\(text)' (\(actual) vs \(expected))")
            }
        }
        #expect(suite.cases.count > 40_000)
        Self.report(mismatches, suite.cases.count, tool: "objdump")
    }

    @Test func llvmMCDecodesEveryEncodingAsExpected() throws {
        guard let llvmMC = Disassembler.find("llvm-mc") else { return }  // optional second oracle
        let suite = OracleSuite.build()
        // One line per case: "0x48 0x01 0xc8".
        let digits = Array("0123456789abcdef".utf8)
        var input: [UInt8] = []
        input.reserveCapacity(suite.buffer.count * 5 + suite.cases.count)
        suite.buffer.withUnsafeBytes { bytes in
            for item in suite.cases {
                for byte in bytes[item.offset..<item.offset + item.length] {
                    input += [UInt8(ascii: "0"), UInt8(ascii: "x"), digits[Int(byte >> 4)], digits[Int(byte & 15)], UInt8(ascii: " ")]
                }
                input.append(UInt8(ascii: "\n"))
            }
        }
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("kiln-x64-oracle-\(ProcessInfo.processInfo.processIdentifier)-llvm.txt")
        try Data(input).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let output = try Disassembler.run(
            llvmMC, ["--disassemble", "-triple=x86_64", "-output-asm-variant=1", url.path])
        let lines = Disassembler.parseLLVM(output)

        // llvm-mc prints no offsets, so instructions are matched in order; a
        // wrong length shifts everything after it, so stop at the first one.
        var mismatches: [String] = []
        for (index, item) in suite.cases.enumerated() {
            guard index < lines.count else {
                mismatches.append("llvm-mc decoded only \(lines.count) instructions, expected \(suite.cases.count)")
                break
            }
            let expected = Disassembler.canonical(item.llvmText, immediateBits: item.immediateBits, indexMayPrintAsBase: true)
            let line = lines[index]
            let actual = Disassembler.canonical(
                output, line.start, line.end, immediateBits: item.immediateBits, indexMayPrintAsBase: true)
            if expected != actual {
                let bytes = suite.buffer.withUnsafeBytes { Array($0[item.offset..<item.offset + item.length]) }
                mismatches.append("\(item.text) [\(hex(bytes))]: llvm-mc says '\(String(decoding: output[line.start..<line.end], as: UTF8.self))' (\(actual) vs \(expected))")
            }
        }
        if lines.count > suite.cases.count {
            mismatches.append("llvm-mc decoded \(lines.count) instructions, expected \(suite.cases.count)")
        }
        Self.report(mismatches, suite.cases.count, tool: "llvm-mc")
    }
}
