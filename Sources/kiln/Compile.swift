// `kiln compile`: compile without running, optionally timing each phase.

import ArgumentParser
import KilnCode
import KilnCodegen
import KilnIL
import KilnTooling

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile IL files to machine code in memory without running them.",
        discussion: "Exits with status 0 when every file compiles. With --times, prints the time of each phase."
    )

    @Argument(help: "IL files to compile.")
    var files: [String]

    @Flag(name: .long, help: "Print the time spent in each phase.")
    var times = false

    @Option(name: .long, help: ArgumentHelp(
        "Write each function's machine code to DIR/NAME.bin (for external disassemblers); DIR is created if need be.",
        valueName: "DIR"))
    var writeCode: String?

    func run() throws {
        var failed = false
        if let directory = writeCode {
            do {
                try Host.makeDirectories(directory)
            } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
        }
        let clock = ContinuousClock()
        for path in files {
            let start = clock.now
            guard let module = frontEnd(path) else { failed = true; continue }
            let parsed = clock.now - start
            var phases = PhaseTimes()
            do {
                let compiled = try compileModule(module, times: &phases)
                if let directory = writeCode {
                    for function in compiled.functions {
                        try Host.writeFile("\(directory)/\(function.name).bin", function.code)
                    }
                }
                if times {
                    func ms(_ duration: Duration) -> String {
                        let value = Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
                        let text = fixed(value, 3)
                        return String(repeating: " ", count: max(0, 8 - text.count)) + text + " ms"
                    }
                    print("\(path):")
                    print("  parse+verify \(ms(parsed))")
                    print("  passes       \(ms(phases.passes))")
                    print("  selection    \(ms(phases.selection))")
                    print("  allocation   \(ms(phases.allocation))")
                    print("  emission     \(ms(phases.emission))")
                    print("  data         \(ms(phases.data))")
                    let bytes = compiled.functions.reduce(0) { $0 + $1.code.count }
                    print("  \(compiled.functions.count) functions, \(bytes) bytes of code")
                }
            } catch let error as CompileError {
                printError(error.diagnostic.rendered)
                failed = true
            } catch {
                printError("error: \(path): \(error)")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}

