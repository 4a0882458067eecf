// `kiln-bench differential`: random programs (KilnShapes.RandomProgram) run
// by Kiln and by QBE's ahead-of-time build, outputs compared.
//
// Not a timing benchmark but a long-running check that lives with the tools:
// the test suite runs a few seeds on every run; this runs as many as asked.
// For each seed it writes the program, builds it with `qbe` and `cc`, runs
// both that binary and `kiln run`, and reports every seed whose outputs or
// exit statuses differ (with the file kept for a look, under --keep DIR),
// with the reference interpreter's opinion on which of the two is right.

import KilnIL
import KilnShapes

func runDifferentialCheck(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["count", "seed", "functions", "blocks", "kiln", "qbe", "keep", "interpret"])
    if let file = options.string("interpret") {
        // The interpreter's output for one file (for reducing a disagreement by hand).
        switch interpret(String(decoding: try readFile(file), as: UTF8.self)) {
        case .success(let output): print(String(decoding: output, as: UTF8.self), terminator: "")
        case .failure(let error): throw UsageError(description: "\(file): \(error)")
        }
        return
    }
    let count = try options.integer("count", default: 100)
    let first = try options.integer("seed", default: 1)
    let functions = try options.integer("functions", default: 6)
    let blocks = try options.integer("blocks", default: 8)
    guard let qbe = try locateTool("qbe", option: options.string("qbe")) else {
        throw UsageError(description: "qbe: not installed (not on PATH and no --qbe)")
    }
    guard let kiln = options.string("kiln") ?? executablePath().map({ directoryName($0) + "/kiln" }), isExecutable(kiln) else {
        throw UsageError(description: "kiln: not found next to kiln-bench (or give --kiln)")
    }
    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }
    var failures: [String] = []
    for seed in first..<(first + count) {
        let program = RandomProgram(seed: UInt64(seed), functions: functions, blocks: blocks)
        let path = scratch.file("random-\(seed).ssa")
        try write(Array(program.text.utf8), to: path)
        let assembly = scratch.file("random.s"), binary = scratch.file("random")
        let built = try runProcess([qbe, "-o", assembly, path], in: scratch)
        let linked = built.succeeded ? try runProcess(["cc", "-o", binary, assembly], in: scratch) : built
        guard built.succeeded, linked.succeeded else {
            failures.append("seed \(seed): QBE could not build it: \(built.succeeded ? linked.errorSummary : built.errorSummary)")
            if let keep = options.string("keep") { try write(Array(program.text.utf8), to: keep + "/random-\(seed).ssa") }
            continue
        }
        let expected = try runProcess([binary], in: scratch)
        let actual = try runProcess([kiln, "run", path], in: scratch)
        if actual.status != expected.status || actual.output != expected.output {
            // The interpreter's opinion says which of the two is wrong.
            let verdict: String
            switch interpret(program.text) {
            case .success(let output) where output == actual.output: verdict = "the interpreter agrees with kiln"
            case .success(let output) where output == expected.output: verdict = "the interpreter agrees with QBE"
            case .success: verdict = "the interpreter agrees with neither"
            case .failure(let error): verdict = "the interpreter failed: \(error)"
            }
            failures.append("seed \(seed): kiln \(actual.succeeded ? "printed other output" : actual.errorSummary); \(verdict)")
            if let keep = options.string("keep") { try write(Array(program.text.utf8), to: keep + "/random-\(seed).ssa") }
        }
        if seed % 10 == 0 { progress("differential: \(seed - first + 1) programs, \(failures.count) differ") }
    }
    print("\(count) random programs (seeds \(first)..<\(first + count), \(functions) functions of up to \(blocks + 1) blocks):"
          + " \(count - failures.count) agree with QBE, \(failures.count) differ")
    for failure in failures { print("  " + failure) }
}

/// What the reference interpreter prints for a program.
func interpret(_ text: String) -> Result<[UInt8], InterpreterError> {
    let (module, diagnostics) = parseAndVerify(SourceFile(name: "random.ssa", text: text))
    if let error = diagnostics.first(where: { $0.severity == .error }) {
        return .failure(InterpreterError(description: error.description))
    }
    do {
        var interpreter = try Interpreter(module)
        _ = try interpreter.runMain()
        return .success(interpreter.output)
    } catch let error as InterpreterError {
        return .failure(error)
    } catch {
        return .failure(InterpreterError(description: "\(error)"))
    }
}
