// Instructions per IL line: the compile cost as callgrind counts it, which a
// shared, noisy machine does not move the way it moves wall time.
//
// Each input file is compiled by a separate process under
// `valgrind --tool=callgrind`: Kiln as `kiln compile F.ssa` with a stripped
// copy of the `kiln` binary (the way a user meets it, symbols or not), QBE as
// `qbe -o x.s F.ssa` followed by `as -o x.o x.s`. From every count the same
// command's count on a 4-line program is subtracted, so process start-up
// (Foundation, dynamic linking, reading the file) is left out on both sides
// and what remains is the work that grows with the input. A group's figure is
// the sum of its files' counts over the sum of their lines.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The smallest whole program: what every count has subtracted from it.
private let baselineProgram = """
    export function w $main() {
    @start
    \tret 0
    }

    """

/// Counts instructions of whole processes with callgrind.
struct InstructionCounter {
    let valgrind: String
    let scratch: TemporaryDirectory

    /// The instructions `arguments` executed, or why the process failed.
    func count(_ arguments: [String]) throws -> Result<Int, CountFailure> {
        let out = scratch.file("callgrind.out")
        let result = try runProcess([valgrind, "--tool=callgrind", "--callgrind-out-file=" + out] + arguments, in: scratch)
        guard result.succeeded else { return .failure(CountFailure(reason: result.errorSummary)) }
        // callgrind ends its report with "==PID== Collected : N".
        let text = String(decoding: result.errors, as: UTF8.self)
        for line in text.split(separator: "\n").reversed() {
            let words = line.split(separator: " ")
            guard let index = words.firstIndex(of: "Collected"), index + 2 < words.count, words[index + 1] == ":" else { continue }
            if let value = Int(words[index + 2]) { return .success(value) }
        }
        return .failure(CountFailure(reason: "no 'Collected' line in callgrind's report"))
    }
}

struct CountFailure: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

/// Instruction counts per file for Kiln and for QBE + as, each less its baseline.
struct InstructionFigures {
    var kiln: Int?
    var peer: Int?
}

/// Everything needed to count: the stripped `kiln`, the peers and their baselines.
struct InstructionSetup {
    let counter: InstructionCounter
    let kiln: String
    let qbe: String?
    let assembler: String?
    let kilnBaseline: Int
    let peerBaseline: Int?
    let scratch: TemporaryDirectory

    /// Makes a stripped copy of `kiln` in `scratch` and counts the baselines.
    static func make(valgrind: String, kiln: String, qbe: String?, assembler: String?,
                     scratch: TemporaryDirectory) throws -> InstructionSetup {
        let stripped = scratch.file("kiln-stripped")
        try write(try readFile(kiln), to: stripped)
        guard chmod(stripped, 0o755) == 0 else { throw UsageError(description: "cannot make \(stripped) executable") }
        if let strip = findOnPath("strip") {
            let result = try runProcess([strip, stripped], in: scratch)
            guard result.succeeded else { throw UsageError(description: "strip \(stripped): \(result.errorSummary)") }
        } else {
            throw UsageError(description: "strip: not installed (apt-get install -y binutils); counts need a stripped kiln")
        }
        let counter = InstructionCounter(valgrind: valgrind, scratch: scratch)
        let tiny = scratch.file("baseline.ssa")
        try write(Array(baselineProgram.utf8), to: tiny)
        guard case .success(let kilnBaseline) = try counter.count([stripped, "compile", tiny]) else {
            throw UsageError(description: "kiln compile of the 4-line baseline failed under valgrind")
        }
        var peerBaseline: Int?
        if let qbe, let assembler {
            guard case .success(let count) = try countPeer(tiny, qbe: qbe, assembler: assembler, counter: counter, scratch: scratch) else {
                throw UsageError(description: "qbe + as on the 4-line baseline failed under valgrind")
            }
            peerBaseline = count
        }
        return InstructionSetup(counter: counter, kiln: stripped, qbe: qbe, assembler: assembler,
                                kilnBaseline: kilnBaseline, peerBaseline: peerBaseline, scratch: scratch)
    }

    /// QBE plus the assembler on `path`, baseline not subtracted.
    private static func countPeer(_ path: String, qbe: String, assembler: String, counter: InstructionCounter,
                                  scratch: TemporaryDirectory) throws -> Result<Int, CountFailure> {
        let assembly = scratch.file("counted.s"), object = scratch.file("counted.o")
        let compiled = try counter.count([qbe, "-o", assembly, path])
        guard case .success(let compiling) = compiled else { return compiled }
        let assembled = try counter.count([assembler, "-o", object, assembly])
        guard case .success(let assembling) = assembled else { return assembled }
        return .success(compiling + assembling)
    }

    /// Both counts for one file, baselines subtracted; a failure goes to `problems`.
    func figures(for path: String, label: String, problems: inout [String]) throws -> InstructionFigures {
        var figures = InstructionFigures()
        switch try counter.count([kiln, "compile", path]) {
        case .success(let count): figures.kiln = count - kilnBaseline
        case .failure(let failure): problems.append("\(label): kiln under valgrind: \(failure.reason)")
        }
        if let peerBaseline, let qbe, let assembler {
            switch try Self.countPeer(path, qbe: qbe, assembler: assembler, counter: counter, scratch: scratch) {
            case .success(let count): figures.peer = count - peerBaseline
            case .failure(let failure): problems.append("\(label): qbe+as under valgrind: \(failure.reason)")
            }
        }
        return figures
    }
}
