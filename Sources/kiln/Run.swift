// `kiln run`: compile a program into memory and call its main.

import ArgumentParser
import Foundation
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
            against libc, libm and the --link libraries. Arguments after -- go to the program.
            """
    )

    @Argument(help: "The IL file to run.")
    var file: String

    @Option(name: .customLong("link"), help: ArgumentHelp("A shared object to link against (repeatable).", valueName: "LIB.so"))
    var libraries: [String] = []

    @Argument(parsing: .captureForPassthrough, help: "Arguments for the program (everything after the file).")
    var arguments: [String] = []

    func run() throws {
        guard let module = frontEnd(file) else { throw ExitCode(1) }
        let status: Int32
        do {
            let compiled = try compileModule(module)
            let loader = try Loader(linkLibraries: libraries)
            let loaded = try loader.load(compiled)
            status = try loaded.runMain(arguments: [file] + arguments)
        } catch {
            printError("\(file): error: \(error)")
            throw ExitCode(1)
        }
        throw ExitCode(status)
    }
}
