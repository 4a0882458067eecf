// `kiln dis`: each function's machine code, interleaved with the IL it came
// from, and its relocation records.
//
// The instructions are rendered by objdump when it is installed (binutils);
// without it, each IL line's bytes are printed in hex. Either way the offsets,
// IL lines and relocations come from Kiln itself.

import ArgumentParser
import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader

struct Disassemble: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dis",
        abstract: "Print the machine code of each function with its IL and relocations.",
        discussion: "Instructions are rendered with objdump when it is on PATH (apt-get install binutils)."
    )

    @Argument(help: "The IL file.")
    var file: String

    @Argument(help: "Only this function (name without $).")
    var function: String?

    func run() throws {
        guard let module = frontEnd(file) else { throw ExitCode(1) }
        let compiled: CompiledModule
        do {
            compiled = try compileModule(module)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        let selected = compiled.functions.filter { function == nil || $0.name == function }
        if selected.isEmpty, let function {
            printError("\(file): error: no function $\(function)")
            throw ExitCode(1)
        }
        for code in selected {
            print(listing(code, module: module, compiled: compiled))
        }
        if function == nil {
            for data in compiled.data where !data.relocations.isEmpty {
                print("data $\(data.name): \(data.bytes.count) bytes")
                for relocation in data.relocations { print("    reloc \(describe(relocation, compiled))") }
            }
        }
    }

    func describe(_ relocation: Relocation, _ compiled: CompiledModule) -> String {
        let target: String = switch relocation.target {
        case .function(let index): "$\(compiled.functions[index].name)"
        case .data(let index): "$\(compiled.data[index].name)"
        case .threadLocal(let index): "thread $\(compiled.data[index].name)"
        case .external(let name): "$\(name) (external)"
        case .stub(let index): "stub of $\(compiled.functions[index].name)"
        case .callSlot(let name): "call slot of $\(name) (import)"
        case .addressSlot(let name): "address slot of $\(name) (import)"
        }
        let addend = relocation.addend == 0 ? "" : (relocation.addend > 0 ? " + \(relocation.addend)" : " - \(-relocation.addend)")
        return hex(relocation.offset, 4) + " \(relocation.kind) \(target)\(addend)"
    }

    func listing(_ code: CodeObject, module: Module, compiled: CompiledModule) -> String {
        var out = "\(code.isExported ? "export " : "")function $\(code.name): \(code.code.count) bytes\n"
        let instructions = objdump(code.code)
        var lineStarts: [UInt32: Int] = [:]
        for (codeOffset, sourceOffset) in code.lineTable {
            lineStarts[codeOffset] = module.source.lineAndColumn(of: SourceLocation(offset: sourceOffset)).line
        }
        let relocationsAt = Dictionary(grouping: code.relocations) { $0.offset }
        func notes(_ start: Int, _ end: Int) -> String {
            (start..<end).compactMap { relocationsAt[UInt32($0)] }.flatMap { $0 }
                .map { "    ; " + describe($0, compiled) }.joined()
        }
        if let instructions {
            for (offset, length, text) in instructions {
                if let line = lineStarts[UInt32(offset)] {
                    out += "  # \(module.source.name):\(line): \(module.source.lineText(line).trimmed)\n"
                }
                out += "    \(hex(offset, 4))  " + text + notes(offset, offset + length) + "\n"
            }
        } else {
            let starts = ([0] + code.lineTable.map { Int($0.codeOffset) } + [code.code.count]).sorted()
            for (start, end) in zip(starts, starts.dropFirst()) where start < end {
                if let line = lineStarts[UInt32(start)] {
                    out += "  # \(module.source.name):\(line): \(module.source.lineText(line).trimmed)\n"
                }
                let bytes = code.code[start..<end].map { hex($0, 2) }.joined(separator: " ")
                out += "    \(hex(start, 4))  " + bytes + notes(start, end) + "\n"
            }
        }
        out += "  relocations:\n"
        for relocation in code.relocations { out += "    \(describe(relocation, compiled))\n" }
        return out
    }

    /// (offset, length, text) of each instruction, or nil when objdump is not available.
    func objdump(_ bytes: [UInt8]) -> [(Int, Int, String)]? {
        let path = Host.temporaryPath("kiln-dis") + ".bin"
        guard (try? Host.writeFile(path, bytes)) != nil else { return nil }
        defer { Host.removeFile(path) }
        let (status, output) = Host.run("objdump", ["-D", "-b", "binary", "-mi386:x86-64", "-M", "intel", path])
        guard status == 0 else { return nil }
        var result: [(Int, Int, String)] = []
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count >= 3, let offset = Int(parts[0].trimmed.dropLast(), radix: 16) else { continue }
            let length = parts[1].split(separator: " ").count
            let text = parts[2...].joined(separator: " ").split(separator: " ").joined(separator: " ")
            result.append((offset, length, text))
        }
        return result
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmed: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
