// `kiln build`: compile an IL file into a crate file.
//
// The crate file holds the compiled module and the IL's line starts, so that
// `kiln run` can load it without the compiler and still report IL lines. The
// format is described in Sources/KilnCode/CrateFile.swift.

import ArgumentParser
import KilnCode
import KilnCodegen
import KilnIL
import KilnTooling

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile an IL file into a crate file (.kcrate).",
        discussion: "Exits with status 1, after printing why, when the file does not compile or cannot be written."
    )

    @Argument(help: "The IL file.")
    var file: String

    @Option(name: .shortAndLong, help: "The crate file to write (default: FILE with .kcrate).")
    var output: String?

    func run() throws {
        guard let module = frontEnd(file) else { throw ExitCode(1) }
        var compiled: CompiledModule
        do {
            compiled = try compileModule(module)
        } catch let error as CompileError {
            printError(error.diagnostic.rendered)
            throw ExitCode(1)
        } catch {
            printError("error: \(file): \(error)")
            throw ExitCode(1)
        }
        compiled.sourceLineStarts = module.source.lineStarts
        do {
            // What every loader would refuse (an object over the size limit, say) is not written.
            try compiled.validate()
        } catch {
            printError("error: \(file): cannot be loaded: \(error)")
            throw ExitCode(1)
        }
        let destination = output ?? crateFilePath(for: file)
        do {
            try Host.writeFile(destination, CrateFile.encode(compiled))
        } catch {
            printError("error: \(destination): cannot write the crate file: \(error)")
            throw ExitCode(1)
        }
    }
}

/// `path` with its extension replaced by `.kcrate` (or `.kcrate` added when it has none).
func crateFilePath(for path: String) -> String {
    let name = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
    guard let dot = path[name...].lastIndex(of: "."), dot != name else { return path + ".kcrate" }
    return path[..<dot] + ".kcrate"
}
