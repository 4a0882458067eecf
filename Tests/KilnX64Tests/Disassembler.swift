// Runs the independent disassemblers (objdump, llvm-mc) over a binary file
// and turns their Intel-syntax text into a canonical form that the oracle
// test can compare with the text it expects.
//
// Canonical form: lower case, no comments, "mnemonic op1,op2"; a memory
// operand is "size[base+index*scale+disp]" with a decimal displacement (left
// out when zero and a register is present) and the scale always written; an
// immediate is hex, truncated to the width the case names (objdump prints
// `0xffffff80` where llvm-mc prints `-128`). Quirks smoothed over: objdump's
// `ds:0x10` for an absolute address, `QWORD PTR`, `# 0x...` comments after
// RIP-relative operands, `xchg ax,ax` for the 2-byte nop, and llvm-mc's
// `shl rax` (objdump: `shl rax,1`), `[4*rcx + 16]`, and `[rax - 129]` for an
// index with scale 1 and no base (the caller asks for that leniency).
//
// The text is handled as UTF-8 bytes with index loops, not as `String`s or
// generic slices: the tests run unoptimized, and character-level String
// processing of some 50,000 lines took about ten seconds.

import Foundation

/// One instruction as objdump decoded it; its text is `output[textStart..<textEnd]`.
struct DecodedInstruction {
    var offset: Int
    var length: Int
    var textStart: Int
    var textEnd: Int
}

enum Disassembler {
    /// The full path of `name` on PATH, if it exists.
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `executable` and returns its standard output; throws on a failing status.
    static func run(_ executable: String, _ arguments: [String]) throws -> [UInt8] {
        let directory = FileManager.default.temporaryDirectory
        let outURL = directory.appendingPathComponent("kiln-x64-\(UUID().uuidString).out")
        let errURL = directory.appendingPathComponent("kiln-x64-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        process.waitUntilExit()
        if process.terminationStatus != 0 {
            let errors = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            throw DisassemblerFailure(
                message: "\(executable) exited with \(process.terminationStatus): \(errors.prefix(2000))")
        }
        return [UInt8](try Data(contentsOf: outURL))
    }

    /// Parses `objdump -D -b binary -M intel --insn-width=16` output.
    static func parseObjdump(_ output: [UInt8]) -> [DecodedInstruction] {
        var result: [DecodedInstruction] = []
        let count = output.count
        var lineStart = 0
        while lineStart < count {
            var lineEnd = lineStart
            while lineEnd < count && output[lineEnd] != newline { lineEnd += 1 }
            var i = lineStart
            while i < lineEnd && output[i] == space { i += 1 }
            var offset = 0
            var digits = 0
            while i < lineEnd, let digit = hexDigit(output[i]) {
                offset = offset * 16 + Int(digit)
                digits += 1
                i += 1
            }
            if digits > 0 && i + 1 < lineEnd && output[i] == colon && output[i + 1] == tab {
                i += 2
                var length = 0
                var inByte = false
                while i < lineEnd && output[i] != tab {
                    if output[i] == space {
                        inByte = false
                    } else if !inByte {
                        inByte = true
                        length += 1
                    }
                    i += 1
                }
                let textStart = i < lineEnd ? i + 1 : lineEnd
                if textStart >= lineEnd && !result.isEmpty {
                    result[result.count - 1].length += length  // continuation of a long instruction
                } else {
                    result.append(DecodedInstruction(offset: offset, length: length, textStart: textStart, textEnd: lineEnd))
                }
            }
            lineStart = lineEnd + 1
        }
        return result
    }

    /// Parses `llvm-mc --disassemble` output: one instruction per line, no
    /// offsets. Returns the (start, end) of each instruction's text.
    static func parseLLVM(_ output: [UInt8]) -> [(start: Int, end: Int)] {
        var result: [(start: Int, end: Int)] = []
        let count = output.count
        var lineStart = 0
        while lineStart < count {
            var lineEnd = lineStart
            while lineEnd < count && output[lineEnd] != newline { lineEnd += 1 }
            var i = lineStart
            while i < lineEnd && (output[i] == space || output[i] == tab) { i += 1 }
            if i < lineEnd && output[i] != hash && output[i] != dot {
                result.append((i, lineEnd))
            }
            lineStart = lineEnd + 1
        }
        return result
    }

    // MARK: Canonical text

    private static let newline = UInt8(ascii: "\n"), tab = UInt8(ascii: "\t"), space = UInt8(ascii: " ")
    private static let colon = UInt8(ascii: ":"), hash = UInt8(ascii: "#"), dot = UInt8(ascii: ".")
    private static let comma = UInt8(ascii: ","), plus = UInt8(ascii: "+"), minus = UInt8(ascii: "-")
    private static let star = UInt8(ascii: "*"), open = UInt8(ascii: "["), close = UInt8(ascii: "]")
    private static let shifts: Set<String> = ["shl", "shr", "sar", "rol", "ror", "sal"]

    private static func isLetter(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
    }

    /// The canonical form of an expected instruction text.
    static func canonical(_ text: String, immediateBits: Int, indexMayPrintAsBase: Bool = false) -> String {
        let bytes = Array(text.utf8)
        return canonical(bytes, 0, bytes.count, immediateBits: immediateBits, indexMayPrintAsBase: indexMayPrintAsBase)
    }

    /// The canonical form of the instruction text in `text[start..<end]`.
    ///
    /// With `indexMayPrintAsBase`, an index of scale 1 and no base reads as a
    /// base (llvm-mc prints both the same way).
    static func canonical(
        _ text: [UInt8], _ start: Int, _ end: Int, immediateBits: Int, indexMayPrintAsBase: Bool = false
    ) -> String {
        var line: [UInt8] = []
        line.reserveCapacity(end - start)
        var i = start
        while i < end {
            let byte = text[i]
            if byte == hash { break }
            line.append(byte == tab ? space : (byte >= 65 && byte <= 90 ? byte + 32 : byte))
            i += 1
        }
        var p = 0
        while p < line.count && line[p] == space { p += 1 }
        let mnemonicStart = p
        while p < line.count && line[p] != space { p += 1 }
        let mnemonic = String(decoding: line[mnemonicStart..<p], as: UTF8.self)
        var operandBytes: [UInt8] = []
        while p < line.count {
            if line[p] != space { operandBytes.append(line[p]) }
            p += 1
        }
        var operands: [String] = []
        if !operandBytes.isEmpty {
            var depth = 0
            var operandStart = 0
            var q = 0
            while q <= operandBytes.count {
                if q == operandBytes.count || (operandBytes[q] == comma && depth == 0) {
                    operands.append(
                        canonicalOperand(operandBytes, operandStart, q, immediateBits, indexMayPrintAsBase))
                    operandStart = q + 1
                } else if operandBytes[q] == open {
                    depth += 1
                } else if operandBytes[q] == close {
                    depth -= 1
                }
                q += 1
            }
        }
        if mnemonic == "xchg" && operands == ["ax", "ax"] { return "nop" }
        if shifts.contains(mnemonic) && operands.count == 1 { operands.append("0x1") }
        return operands.isEmpty ? mnemonic : mnemonic + " " + operands.joined(separator: ",")
    }

    private static func canonicalOperand(_ text: [UInt8], _ start: Int, _ end: Int, _ bits: Int, _ lenient: Bool) -> String {
        var s = start
        var size = ""
        var j = start
        while j + 3 <= end {
            if text[j] == UInt8(ascii: "p") && text[j + 1] == UInt8(ascii: "t") && text[j + 2] == UInt8(ascii: "r") {
                size = String(decoding: text[start..<j], as: UTF8.self)
                s = j + 3
                break
            }
            j += 1
        }
        if s + 3 <= end && text[s] == UInt8(ascii: "d") && text[s + 1] == UInt8(ascii: "s") && text[s + 2] == colon {
            s += 3
            if s < end && text[s] != open { return size + "[" + canonicalAddress(text, s, end, lenient) + "]" }
        }
        if s < end && text[s] == open && text[end - 1] == close {
            return size + "[" + canonicalAddress(text, s + 1, end - 1, lenient) + "]"
        }
        if s < end && isLetter(text[s]) { return size + String(decoding: text[s..<end], as: UTF8.self) }
        guard let value = parseNumber(text, s, end) else {
            return "?" + String(decoding: text[start..<end], as: UTF8.self)
        }
        let mask: UInt64 = bits >= 64 ? ~0 : (1 << UInt64(bits)) - 1
        return "0x" + String(UInt64(bitPattern: value) & mask, radix: 16)
    }

    private static func canonicalAddress(_ text: [UInt8], _ start: Int, _ end: Int, _ lenient: Bool) -> String {
        var base = ""
        var index = ""
        var scale: Int64 = 1
        var displacement: Int64 = 0
        var unknown = false
        var termStart = start
        var negative = false
        var j = start
        while j <= end {
            if j == end || text[j] == plus || text[j] == minus {
                if j > termStart {
                    var starAt = -1
                    for k in termStart..<j where text[k] == star { starAt = k }
                    if starAt >= 0 {
                        let leftIsRegister = isLetter(text[termStart])
                        let register = leftIsRegister ? (termStart, starAt) : (starAt + 1, j)
                        let factor = leftIsRegister ? (starAt + 1, j) : (termStart, starAt)
                        index = String(decoding: text[register.0..<register.1], as: UTF8.self)
                        scale = parseNumber(text, factor.0, factor.1) ?? -1
                    } else if isLetter(text[termStart]) {
                        let name = String(decoding: text[termStart..<j], as: UTF8.self)
                        if base.isEmpty { base = name } else if index.isEmpty { index = name } else { unknown = true }
                    } else if let value = parseNumber(text, termStart, j) {
                        displacement = negative ? displacement &- value : displacement &+ value
                    } else {
                        unknown = true
                    }
                }
                if j < end { negative = text[j] == minus }
                termStart = j + 1
            }
            j += 1
        }
        if lenient && base.isEmpty && scale == 1 && !index.isEmpty {
            base = index
            index = ""
        }
        var result = base
        if !index.isEmpty { result += (result.isEmpty ? "" : "+") + index + "*\(scale)" }
        if displacement != 0 || result.isEmpty {
            result += displacement < 0 || result.isEmpty ? "\(displacement)" : "+\(displacement)"
        }
        return unknown ? "?" + String(decoding: text[start..<end], as: UTF8.self) : result
    }

    private static func hexDigit(_ byte: UInt8) -> UInt64? {
        if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { return UInt64(byte - UInt8(ascii: "0")) }
        if byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f") { return UInt64(byte - UInt8(ascii: "a") + 10) }
        return nil
    }

    /// The decimal or 0x-hex number in `text[start..<end]`, possibly negative;
    /// hex wider than 63 bits is read as a two's-complement bit pattern.
    static func parseNumber(_ text: [UInt8], _ start: Int, _ end: Int) -> Int64? {
        var i = start
        var negative = false
        if i < end && text[i] == minus {
            negative = true
            i += 1
        }
        var magnitude: UInt64 = 0
        if i + 1 < end && text[i] == UInt8(ascii: "0") && text[i + 1] == UInt8(ascii: "x") {
            i += 2
            guard i < end, end - i <= 16 else { return nil }
            while i < end {
                guard let digit = hexDigit(text[i]) else { return nil }
                magnitude = magnitude << 4 | digit
                i += 1
            }
        } else {
            guard i < end else { return nil }
            while i < end {
                let byte = text[i]
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
                let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
                guard !o1 && !o2 else { return nil }
                magnitude = sum
                i += 1
            }
        }
        let value = Int64(bitPattern: magnitude)
        return negative ? 0 &- value : value
    }
}

struct DisassemblerFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
