// The passes checked against the machine: programs run by the `kiln` binary
// (which runs every pass) must print what the processor computes.
//
// The folding oracle computes each operation twice in one program: once on
// literal constants, which `fold` evaluates at compile time, and once on the
// same values returned by a function the passes cannot see through, which the
// generated code evaluates at run time. Every pair must agree bit for bit.

import Foundation
import Testing

/// The built `kiln` binary: $KILN_BINARY, or next to the test executable.
private let kilnBinary: String? = {
    var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("kiln").path]
    if let environment = ProcessInfo.processInfo.environment["KILN_BINARY"] { candidates.insert(environment, at: 0) }
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

/// Runs `text` as a program; its standard output, or nil (with an issue recorded) when it cannot run.
private func run(_ text: String) throws -> String? {
    guard let binary = kilnBinary else {
        Issue.record("the kiln executable was not found; build it or set KILN_BINARY")
        return nil
    }
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-passes-\(UUID()).ssa")
    try text.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["run", file.path]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(String(decoding: errors, as: UTF8.self))")
    return String(decoding: data, as: UTF8.self)
}

private let integersW = ["0", "1", "-1", "7", "-7", "31", "33", "2147483647", "-2147483648", "305419896"]
private let integersL = ["0", "1", "-1", "7", "-7", "63", "65", "4294967296", "9223372036854775807",
                         "-9223372036854775808", "1311768467463790320"]
private let doubles = ["d_0", "d_-0", "d_1.5", "d_-2.5", "d_0.1", "d_1e308", "d_inf", "d_-inf", "d_nan", "d_3e9",
                       "d_-3e9", "d_1e19", "d_4294967295.5"]
private let singles = ["s_0", "s_-0", "s_1.5", "s_-2.5", "s_0.1", "s_3.4e38", "s_inf", "s_-inf", "s_nan", "s_3e9",
                       "s_-3e9", "s_1e19"]

/// Builds the oracle program: for each case, the folded and the run-time result as two longs.
private struct OracleProgram {
    var body = ""
    var count = 0

    /// An operand the passes cannot fold: the value passed through `$id<cls>`.
    mutating func opaque(_ value: String, _ cls: String) -> String {
        count += 1
        body += "\t%o\(count) =\(cls) call $id\(cls)(\(cls) \(value))\n"
        return "%o\(count)"
    }

    /// The bits of a result of class `cls` as an `l`.
    mutating func asLong(_ value: String, _ cls: String) -> String {
        count += 1
        switch cls {
        case "w": body += "\t%b\(count) =l extsw \(value)\n"
        case "s": body += "\t%c\(count) =w cast \(value)\n\t%b\(count) =l extuw %c\(count)\n"
        case "d": body += "\t%b\(count) =l cast \(value)\n"
        default: body += "\t%b\(count) =l copy \(value)\n"
        }
        return "%b\(count)"
    }

    mutating func add(_ op: String, _ cls: String, _ operandClass: String, _ a: String, _ b: String?) {
        let x = opaque(a, operandClass)
        let y = b.map { opaque($0, operandClass) }
        count += 1
        let n = count
        let constantOperands = b.map { "\(a), \($0)" } ?? a
        let temporaryOperands = y.map { "\(x), \($0)" } ?? x
        body += "\t%f\(n) =\(cls) \(op) \(constantOperands)\n\t%r\(n) =\(cls) \(op) \(temporaryOperands)\n"
        let folded = asLong("%f\(n)", cls), computed = asLong("%r\(n)", cls)
        let label = "\(op) \(cls) \(constantOperands)"
        body += "\tcall $printf(l $fmt, ..., l \(folded), l \(computed), l $s\(n))\n"
        strings += "data $s\(n) = { b \"\(label)\", b 0 }\n"
        cases += 1
        // Small functions: register allocation time grows faster than linearly with size.
        if cases % 40 == 0 { finishFunction() }
    }
    var strings = ""
    var cases = 0
    var finished = ""
    var functionCount = 0

    mutating func finishFunction() {
        guard !body.isEmpty else { return }
        finished += "function $case\(functionCount)() {\n@start\n\(body)\tret\n}\n"
        functionCount += 1
        body = ""
    }

    mutating func text() -> String {
        finishFunction()
        var functions = finished
        for cls in ["w", "l", "s", "d"] {
            functions += "function \(cls) $id\(cls)(\(cls) %x) {\n@start\n\tret %x\n}\n"
        }
        let calls = (0..<functionCount).map { "\tcall $case\($0)()\n" }.joined()
        return """
            data $fmt = { b "%ld %ld %s\\n", b 0 }
            \(strings)\(functions)
            export function w $main() {
            @start
            \(calls)	ret 0
            }
            """
    }
}

private func traps(_ op: String, _ cls: String, _ a: String, _ b: String) -> Bool {
    guard ["div", "rem", "udiv", "urem"].contains(op), cls == "w" || cls == "l" else { return false }
    let divisor = Int64(b)!, dividend = Int64(a)!
    if cls == "w" {
        if Int32(truncatingIfNeeded: divisor) == 0 { return true }
        return op.first != "u" && Int32(truncatingIfNeeded: divisor) == -1
            && Int32(truncatingIfNeeded: dividend) == .min
    }
    return divisor == 0 || (op.first != "u" && divisor == -1 && dividend == .min)
}

@Suite struct SemanticTests {
    @Test func foldingAgreesWithTheMachine() throws {
        var program = OracleProgram()
        let integerOps = ["add", "sub", "mul", "and", "or", "xor", "sar", "shr", "shl", "div", "rem", "udiv", "urem"]
        let comparisons = ["eq", "ne", "sle", "slt", "sge", "sgt", "ule", "ult", "uge", "ugt"]
        for (cls, values) in [("w", integersW), ("l", integersL)] {
            for op in integerOps {
                for a in values.prefix(8) { for b in values where !traps(op, cls, a, b) {
                    program.add(op, cls, cls, a, b)
                } }
            }
            for op in comparisons { for a in values { for b in values.prefix(6) {
                program.add("c\(op)\(cls)", "w", cls, a, b)
            } } }
            for a in values { program.add("neg", cls, cls, a, nil) }
            for op in ["extsb", "extub", "extsh", "extuh"] { for a in integersL { program.add(op, cls, "w", a, nil) } }
            for op in [cls == "w" ? "swtof" : "sltof", cls == "w" ? "uwtof" : "ultof"] {
                for a in values { program.add(op, "s", cls, a, nil); program.add(op, "d", cls, a, nil) }
            }
        }
        for op in ["extsw", "extuw"] { for a in integersL { program.add(op, "l", "w", a, nil) } }
        for (cls, values) in [("s", singles), ("d", doubles)] {
            for op in ["add", "sub", "mul", "div"] { for a in values { for b in values { program.add(op, cls, cls, a, b) } } }
            for op in ["eq", "ne", "lt", "le", "gt", "ge", "o", "uo"] {
                for a in values { for b in values { program.add("c\(op)\(cls)", "w", cls, a, b) } }
            }
            for a in values {
                program.add("neg", cls, cls, a, nil)
                for op in ["\(cls)tosi", "\(cls)toui"] { program.add(op, "w", cls, a, nil); program.add(op, "l", cls, a, nil) }
                program.add(cls == "s" ? "exts" : "truncd", cls == "s" ? "d" : "s", cls, a, nil)
                program.add("cast", cls == "s" ? "w" : "l", cls, a, nil)
            }
        }
        for a in integersW { program.add("cast", "s", "w", a, nil) }
        for a in integersL { program.add("cast", "d", "l", a, nil) }
        guard let output = try run(program.text()) else { return }
        let lines = output.split(separator: "\n")
        #expect(lines.count > 3000)
        for line in lines {
            let fields = line.split(separator: " ", maxSplits: 2)
            #expect(fields.count == 3 && fields[0] == fields[1], "\(line)")
        }
    }

    @Test func loopsMemoryAndBranchesKeepTheirMeaning() throws {
        let output = try run("""
            data $fmt = { b "%d %d %d %ld\\n", b 0 }
            data $g = { w 5 }
            function w $twice(l %p) {
            @start
            	%v =w loadw %p
            	%w =w add %v, %v
            	storew %w, %p
            	ret %w
            }
            export function w $main() {
            @start
            	%slot =l alloc8 16
            	%hi =l add %slot, 8
            	storel 0, %slot
            	storel 1, %hi
            	%i =w copy 0
            	%s =w copy 0
            @loop
            	%a =w mul %i, 3
            	%b =w mul 3, %i
            	%c =w add %a, %b
            	%s =w add %s, %c
            	%k =w csltw 4, 2
            	jnz %k, @never, @next
            @never
            	%s =w add %s, 1000
            @next
            	%x =l loadl %slot
            	%x =l add %x, 1
            	storel %x, %slot
            	%y =l loadl %slot
            	%t =w call $twice(l $g)
            	%u =w loadw $g
            	%i =w add %i, 1
            	%d =w csltw %i, 3
            	jnz %d, @loop, @end
            @end
            	%z =l loadl %hi
            	%y =l add %y, %z
            	call $printf(l $fmt, ..., w %s, w %t, w %u, l %y)
            	ret 0
            }
            """)
        #expect(output == "18 40 40 4\n")
    }
}
