// What the C API loads: IL text compiled here, or a crate file decoded, told apart by the
// crate file's magic. Files are read with plain system calls (the tooling target, which
// the command uses for this, is not part of what an embedder links).

import Glibc
import KilnCode
import KilnCodegen
import KilnIL

enum Inputs {
    /// The compiled module of `bytes` (IL text or a crate file) named `name`.
    static func module(named name: String, bytes: [UInt8]) throws(EntryError) -> CompiledModule {
        if bytes.starts(with: CrateFile.magic) {
            do {
                var module = try CrateFile.decode(bytes)
                module.name = name
                return module
            } catch {
                throw EntryError(.input, "\(name): not a usable crate file: \(error)")
            }
        }
        let (module, diagnostics) = parseAndVerify(SourceFile(name: name, bytes: bytes))
        let errors = diagnostics.filter { $0.severity == .error }
        guard errors.isEmpty else { throw EntryError(.input, errors.map(\.description).joined(separator: "\n")) }
        do {
            return try compileModule(module)
        } catch let error as CompileError {
            throw EntryError(.input, error.diagnostic.description)
        } catch {
            throw EntryError(.input, "\(name): \(error)")
        }
    }

    /// The compiled module of the file at `path`, named by the path.
    static func module(atPath path: String) throws(EntryError) -> CompiledModule {
        try module(named: path, bytes: try readFile(path))
    }

    /// The whole file; its reason when it cannot be read.
    static func readFile(_ path: String) throws(EntryError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw EntryError(.input, "\(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var information = stat()
        guard fstat(descriptor, &information) == 0, information.st_mode & S_IFMT == S_IFREG else {
            throw EntryError(.input, "\(path): not a regular file")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw EntryError(.input, "\(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<count])
        }
    }
}
