// `kiln run`: compile a program into memory and call its main.

import ArgumentParser
import KilnCode
import KilnCodegen
import KilnIL
import KilnLoader

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile an IL program to machine code in memory and run it.",
        discussion: """
            Calls the exported function $main(argc, argv, envp) and exits with its result, \
            after flushing C's output streams. Symbols the program does not define resolve \
            against libc, libm and the --link libraries. --link options may come before or \
            right after the file; everything after them (or after --) goes to the program: \
            `kiln run prog.ssa a b c`, `kiln run prog.ssa --link lib.so -- --verbose`.
            """
    )

    @Argument(help: "The IL file to run.")
    var file: String

    @Option(name: .customLong("link"), help: ArgumentHelp("A shared object to link against (repeatable).", valueName: "LIB.so"))
    var libraries: [String] = []

    @Argument(parsing: .captureForPassthrough, help: "Arguments for the program (everything after the file).")
    var arguments: [String] = []

    /// `--link` options written after the file, and the program's own arguments.
    func split() throws -> (libraries: [String], program: [String]) {
        var libraries = self.libraries
        var rest = arguments[...]
        while let first = rest.first {
            if first == "--link" {
                guard rest.count >= 2 else { throw ValidationError("--link needs a shared object") }
                libraries.append(rest[rest.startIndex + 1])
                rest = rest.dropFirst(2)
            } else if first.hasPrefix("--link=") {
                libraries.append(String(first.dropFirst("--link=".count)))
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        if rest.first == "--" { rest = rest.dropFirst() }
        return (libraries, Array(rest))
    }

    func run() throws {
        let (libraries, program) = try split()
        guard let module = frontEnd(file) else { throw ExitCode(1) }
        let status: Int32
        do {
            let compiled = try compileModule(module)
            let loader = try Loader(linkLibraries: libraries)
            let loaded = try loader.load(compiled)
            status = try loaded.runMain(arguments: [file] + program)
        } catch let error as CompileError {
            printError(error.diagnostic.rendered)
            throw ExitCode(1)
        } catch {
            printError("\(file): error: \(error)")
            throw ExitCode(1)
        }
        throw ExitCode(status)
    }
}
