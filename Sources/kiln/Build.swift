// `kiln build`: compile an IL file into a crate file.

import ArgumentParser

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compile an IL file into a crate file (.kcrate).")

    @Argument(help: "The IL file.")
    var file: String

    @Option(name: .shortAndLong, help: "The crate file to write (default: FILE with .kcrate).")
    var output: String?

    func run() throws {
        printError("kiln build: not implemented yet")
        throw ExitCode(1)
    }
}
