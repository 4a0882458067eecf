// `kiln dis`: each crate's TOC, exports, imports and users, then each
// function's machine code, interleaved with the IL it came from, and its
// relocation records.
//
// The crates are linked as `kiln run` would link them (nothing runs), so the
// TOC shows real slot addresses and what each address slot is bound to; call
// slots show their resolver stubs, since binding happens at the first call.
// Instructions are rendered by objdump when it is installed (binutils);
// without it, each IL line's bytes are printed in hex. Either way the offsets,
// IL lines and relocations come from Kiln itself.

import ArgumentParser
import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader
import KilnTooling

struct Disassemble: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dis",
        abstract: "Print crates: TOC, exports, imports, users, and each function's code with its IL, relocations and stack maps.",
        discussion: """
            Takes IL files and crate files (.kcrate) in any mix, links them as `kiln run` would, \
            and prints each crate. The lines of a crate file's code are named by the IL file \
            recorded in it (with their text when that file is still there, unchanged). A last argument that is not a file name selects one function. \
            Instructions are rendered with objdump when it is on PATH (apt-get install binutils).
            """
    )

    @Argument(help: "IL or crate files, then optionally a function name (without $).")
    var arguments: [String] = []

    /// The IL file a crate file was built from, when it is still there unchanged (the same
    /// line starts as recorded), so its lines can be shown; nil otherwise.
    func recordedSource(of module: CompiledModule) -> SourceFile? {
        guard !module.sourceLineStarts.isEmpty, let bytes = try? Host.readFile(module.name) else { return nil }
        let source = SourceFile(name: module.name, bytes: bytes)
        return source.lineStarts == module.sourceLineStarts ? source : nil
    }

    func run() throws {
        // Every argument is a crate except a last one that names no file and lacks a
        // crate's extension: that one selects a function.
        var paths = arguments
        var function: String?
        if paths.count > 1, let last = paths.last, !isCrateFile(last), !Host.exists(last) {
            function = last
            paths.removeLast()
        }
        guard !paths.isEmpty else { throw ValidationError("name at least one IL file or crate file") }
        var modules: [CompiledModule] = []
        var sources: [SourceFile?] = []
        // For each crate file, the IL file recorded in it: its lines are named by that file.
        var lineNames: [String: String] = [:]
        for path in paths {
            let bytes: [UInt8]
            do {
                bytes = try Host.readFile(path)
            } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
            if isCrateFileContents(path, bytes) {
                guard var module = decodedCrateFile(path, contents: bytes) else { throw ExitCode(1) }
                sources.append(recordedSource(of: module))
                lineNames[path] = module.name
                module.name = path
                modules.append(module)
            } else {
                guard let module = frontEnd(SourceFile(name: path, bytes: bytes)) else { throw ExitCode(1) }
                do {
                    modules.append(try compileModule(module))
                } catch let error as CompileError {
                    printError(error.diagnostic.rendered)
                    throw ExitCode(1)
                }
                sources.append(module.source)
            }
        }
        var crates: [Crate?] = Array(repeating: nil, count: modules.count)
        do {
            let loader = try Loader(options: .init())
            crates = try loader.load(modules).map { $0 }
        } catch {
            print("(not linked: \(error))\n")
        }
        var found = false
        for (index, compiled) in modules.enumerated() {
            let selected = compiled.functions.filter { function == nil || unquoted($0.name) == function }
            found = found || !selected.isEmpty
            if function == nil { print(crateSummary(compiled, crates[index])) }
            for code in selected {
                print(listing(code, source: sources[index], lineName: lineNames[compiled.name] ?? compiled.name,
                              compiled: compiled, crate: crates[index]))
            }
            if function == nil {
                for data in compiled.data where !data.relocations.isEmpty {
                    print("data $\(data.name): \(data.size) bytes")
                    for relocation in data.relocations { print("    reloc \(describe(relocation, compiled))") }
                }
            }
        }
        if !found, let function {
            printError("error: no function $\(function) in \(paths.joined(separator: ", "))")
            throw ExitCode(1)
        }
    }

    /// The crate's header: exports, imports, the TOC with what each slot holds, and its users.
    func crateSummary(_ compiled: CompiledModule, _ crate: Crate?) -> String {
        var out = "crate \(compiled.name): \(compiled.functions.count) functions, \(compiled.data.count) data objects\n"
        let exports = compiled.functions.filter(\.isExported).map { "$" + unquoted($0.name) }
            + compiled.data.filter(\.isExported).map { "$" + unquoted($0.name) }
        out += "  exports: " + (exports.isEmpty ? "none" : exports.joined(separator: " ")) + "\n"
        let imports = compiled.externalSymbols
        out += "  imports: " + (imports.isEmpty ? "none" : imports.map { "$\($0)" }.joined(separator: " ")) + "\n"
        let layout = compiled.tocLayout
        guard let crate else {
            out += "  toc: \(layout.callSlots.count) call slots, \(layout.addressSlots.count) address slots (not linked)\n"
            return out
        }
        let toc = crate.toc
        out += "  toc at 0x\(String(toc.address, radix: 16)): \(toc.callSlots.count) call slots, \(toc.addressSlots.count) address slots\n"
        for (index, name) in toc.callSlots.enumerated() {
            let address = toc.callSlotAddress(index)
            let value = toc.value(at: address)
            let state = value == toc.resolverStubs[index] ? "unbound, resolver stub 0x\(String(value, radix: 16))"
                : "bound to 0x\(String(value, radix: 16))"
            out += "    0x\(String(address, radix: 16))  call    $\(name): \(state)\n"
        }
        for (index, name) in toc.addressSlots.enumerated() {
            let address = toc.addressSlotAddress(index)
            let definer = crate.loader.loadedCrates.first { $0.exports.contains(unquoted(name)) }
            let origin = definer.map { " (exported by \($0.name))" } ?? " (outside the crates)"
            out += "    0x\(String(address, radix: 16))  address $\(name): 0x\(String(toc.value(at: address), radix: 16))\(origin)\n"
        }
        let users = crate.users.map(\.name)
        out += "  users: " + (users.isEmpty ? "none" : users.joined(separator: " ")) + "\n"
        return out
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

    func listing(_ code: CodeObject, source: SourceFile?, lineName: String, compiled: CompiledModule, crate: Crate?) -> String {
        var out = "\(code.isExported ? "export " : "")function $\(code.name): \(code.code.count) bytes"
        if let crate, let index = crate.functionIndex(named: code.name) {
            out += " at 0x\(String(crate.entry(ofFunction: index), radix: 16))"
        }
        out += "\n"
        let instructions = objdump(code.code)
        var lineStarts: [UInt32: Int] = [:]
        for (codeOffset, sourceOffset) in code.lineTable {
            lineStarts[codeOffset] = line(of: sourceOffset, source: source, compiled: compiled)
        }
        func lineText(_ line: Int) -> String {
            guard let source else { return "\(lineName):\(line)" }
            return "\(source.name):\(line): \(source.lineText(line).trimmed)"
        }
        let relocationsAt = Dictionary(grouping: code.relocations) { $0.offset }
        func notes(_ start: Int, _ end: Int) -> String {
            (start..<end).compactMap { relocationsAt[UInt32($0)] }.flatMap { $0 }
                .map { "    ; " + describe($0, compiled) }.joined()
        }
        // A stack map belongs to the call that ends at its offset (the return address).
        let mapsAt = Dictionary(code.stackMaps.map { ($0.codeOffset, $0) }) { first, _ in first }
        func stackMap(endingAt end: Int) -> String {
            guard let map = mapsAt[UInt32(end)] else { return "" }
            let slots = map.frameSlots.map { $0 < 0 ? "rbp-0x\(String(-$0, radix: 16))" : "rbp+0x\(String($0, radix: 16))" }
            return "    ; stack map: " + (slots.isEmpty ? "no references" : slots.joined(separator: ", "))
        }
        if let instructions {
            for (offset, length, text) in instructions {
                if let line = lineStarts[UInt32(offset)] {
                    out += "  # \(lineText(line))\n"
                }
                out += "    \(hex(offset, 4))  " + text + notes(offset, offset + length) + stackMap(endingAt: offset + length) + "\n"
            }
        } else {
            let starts = ([0] + code.lineTable.map { Int($0.codeOffset) } + [code.code.count]).sorted()
            for (start, end) in zip(starts, starts.dropFirst()) where start < end {
                if let line = lineStarts[UInt32(start)] {
                    out += "  # \(lineText(line))\n"
                }
                let bytes = code.code[start..<end].map { hex($0, 2) }.joined(separator: " ")
                out += "    \(hex(start, 4))  " + bytes + notes(start, end) + "\n"
            }
        }
        out += "  relocations:\n"
        for relocation in code.relocations { out += "    \(describe(relocation, compiled))\n" }
        if !code.stackMaps.isEmpty {
            out += "  stack maps:\n"
            for map in code.stackMaps {
                let slots = map.frameSlots.map { String($0) }.joined(separator: ", ")
                out += "    \(hex(map.codeOffset, 4)): [\(slots)]\n"
            }
        }
        return out
    }

    /// The 1-based line of a source offset, from the source or the crate's line starts.
    func line(of offset: UInt32, source: SourceFile?, compiled: CompiledModule) -> Int {
        if let source { return source.lineAndColumn(of: SourceLocation(offset: offset)).line }
        let starts = compiled.sourceLineStarts
        var low = 0, high = starts.count
        while low < high {
            let middle = (low + high) / 2
            if starts[middle] <= offset { low = middle + 1 } else { high = middle }
        }
        return max(low, 1)
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
