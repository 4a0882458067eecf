// `kiln dis`: each function's machine code, interleaved with the IL it came
// from, and its relocation records.
//
// The instructions are rendered by objdump when it is installed (binutils);
// without it, each IL line's bytes are printed in hex. Either way the offsets,
// IL lines and relocations come from Kiln itself.

import ArgumentParser
import Foundation
import KilnCode
import KilnCodegen
import KilnIL

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
        case .slot(let name): "slot of $\(name) (external)"
        }
        let addend = relocation.addend == 0 ? "" : (relocation.addend > 0 ? " + \(relocation.addend)" : " - \(-relocation.addend)")
        return String(format: "%04x", relocation.offset) + " \(relocation.kind) \(target)\(addend)"
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
                    out += "  # \(module.source.name):\(line): \(module.source.lineText(line).trimmingCharacters(in: .whitespaces))\n"
                }
                out += String(format: "    %04x  ", offset) + text + notes(offset, offset + length) + "\n"
            }
        } else {
            let starts = ([0] + code.lineTable.map { Int($0.codeOffset) } + [code.code.count]).sorted()
            for (start, end) in zip(starts, starts.dropFirst()) where start < end {
                if let line = lineStarts[UInt32(start)] {
                    out += "  # \(module.source.name):\(line): \(module.source.lineText(line).trimmingCharacters(in: .whitespaces))\n"
                }
                let hex = code.code[start..<end].map { String(format: "%02x", $0) }.joined(separator: " ")
                out += String(format: "    %04x  ", start) + hex + notes(start, end) + "\n"
            }
        }
        out += "  relocations:\n"
        for relocation in code.relocations { out += "    \(describe(relocation, compiled))\n" }
        return out
    }

    /// (offset, length, text) of each instruction, or nil when objdump is not available.
    func objdump(_ bytes: [UInt8]) -> [(Int, Int, String)]? {
        let path = NSTemporaryDirectory() + "kiln-dis-\(getpid()).bin"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return nil }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["objdump", "-D", "-b", "binary", "-mi386:x86-64", "-M", "intel", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        var result: [(Int, Int, String)] = []
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count >= 3, let offset = Int(parts[0].trimmingCharacters(in: .whitespaces).dropLast(), radix: 16) else {
                continue
            }
            let length = parts[1].split(separator: " ").count
            let text = parts[2...].joined(separator: " ").trimmingCharacters(in: .whitespaces)
                .replacingOccurrences(of: "  ", with: " ")
            result.append((offset, length, text))
        }
        return result
    }
}
