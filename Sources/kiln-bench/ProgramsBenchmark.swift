// `kiln-bench programs`: how fast Kiln's generated code runs, against gcc and QBE.
//
// For each program in Benchmarks/programs (NAME.c and its cproc translation
// NAME.ssa) it builds, in a temporary directory, `gcc -O2` and `gcc -O0`
// binaries of the C and QBE's ahead-of-time build of the IL (`qbe -o x.s
// NAME.ssa && gcc -o x x.s -lm`, when qbe is found), then runs each of them and
// `kiln run NAME.ssa` once as a warm-up and `--runs` times more, round-robin,
// with the programs' default sizes. Every output must equal gcc -O2's; a runner
// whose output differs or that fails is reported loudly and left out of the
// figures. The table gives the median wall time of each runner, the ratios
// kiln/qbe and kiln/gcc-O2 and their geometric means. Kiln's compile time is
// measured separately, in-process, through the libraries linked into kiln-bench.

#if canImport(Glibc)
import Glibc
private let system_write = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let system_write = Darwin.write
#endif

/// The benchmark programs, in the order of the table; others found are appended.
private let programOrder = ["fib", "sieve", "nbody", "mandelbrot", "matmul", "qsort", "strhash"]

private let programsGoal = "generated code no slower than QBE's (geometric mean of kiln/qbe ≤ 1.0)"

/// One way of running a program, and what its runs gave.
private struct Runner {
    var name: String
    var command: [String]
    var times: [Double] = []
    /// Why it is left out of the figures, when it is.
    var failure: String?
}

/// Benchmarks/programs: `--dir`, else found from the working directory or upwards from this executable.
func programsDirectory(_ given: String?) throws -> String {
    try benchmarkDirectory("programs", given: given) { isDirectory($0) && !listDirectory($0, suffix: ".ssa").isEmpty }
}

func runProgramsBenchmark(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["runs", "kiln", "qbe", "only", "dir"])
    let runs = try options.integer("runs", default: 5)
    let directory = try programsDirectory(options.string("dir"))

    let available = Set(listDirectory(directory, suffix: ".c").map { String($0.dropLast(2)) })
        .intersection(listDirectory(directory, suffix: ".ssa").map { String($0.dropLast(4)) })
    var names = programOrder.filter(available.contains) + available.subtracting(programOrder).sorted()
    if let only = options.string("only") {
        let wanted = only.split(separator: ",").map(String.init)
        for name in wanted where !available.contains(name) {
            throw UsageError(description: "no program \(name) in \(directory) (have: \(names.joined(separator: ", ")))")
        }
        names = names.filter(wanted.contains)
    }

    guard let gcc = findOnPath("gcc") else {
        throw UsageError(description: "gcc is not installed; it builds the reference binaries (apt-get install -y gcc)")
    }
    let qbe = try locateTool("qbe", option: options.string("qbe"))
    var kiln: String?
    if let given = options.string("kiln") {
        guard isExecutable(given) else { throw UsageError(description: "\(given) is not an executable file") }
        kiln = given
    } else if let executable = executablePath(), isExecutable(directoryName(executable) + "/kiln") {
        kiln = directoryName(executable) + "/kiln"
    }

    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }
    let loadBefore = loadAverage()

    var rows: [[String]] = [["program", "gcc -O2", "gcc -O0", "qbe", "kiln", "kiln compile", "kiln/qbe", "kiln/gcc-O2"]]
    var kilnOverQBE: [Double] = []
    var kilnOverGCC: [Double] = []
    var problems: [String] = []

    for name in names {
        let source = directory + "/" + name + ".c"
        let il = directory + "/" + name + ".ssa"
        progress("programs: \(name): building")

        var runners: [Runner] = []
        func build(_ runner: String, _ steps: [[String]], binary: String) throws -> Runner {
            for step in steps {
                let result = try runProcess(step, in: scratch)
                if !result.succeeded {
                    return Runner(name: runner, command: [], failure: "build failed (\(step.joined(separator: " "))): \(result.errorSummary)")
                }
            }
            return Runner(name: runner, command: [binary])
        }
        let optimised = scratch.file(name + "-O2")
        runners.append(try build("gcc -O2", [[gcc, "-O2", "-o", optimised, source, "-lm"]], binary: optimised))
        let unoptimised = scratch.file(name + "-O0")
        runners.append(try build("gcc -O0", [[gcc, "-O0", "-o", unoptimised, source, "-lm"]], binary: unoptimised))
        if let qbe {
            let assembly = scratch.file(name + "-qbe.s")
            let binary = scratch.file(name + "-qbe")
            runners.append(try build("qbe", [[qbe, "-o", assembly, il], [gcc, "-o", binary, assembly, "-lm"]], binary: binary))
        } else {
            runners.append(Runner(name: "qbe", command: [], failure: "not installed"))
        }
        if let kiln {
            runners.append(Runner(name: "kiln", command: [kiln, "run", il]))
        } else {
            runners.append(Runner(name: "kiln", command: [], failure: "not found"))
        }

        // Warm-up: gcc -O2's output is the reference for every other run.
        var reference: [UInt8]?
        for index in runners.indices where runners[index].failure == nil {
            let result = try runProcess(runners[index].command, in: scratch)
            if index == 0 {
                if result.succeeded { reference = result.output } else { runners[0].failure = "failed: \(result.errorSummary)" }
            }
            if let reference { check(&runners[index], result, reference, program: name, problems: &problems) }
        }
        guard reference != nil else {
            problems.append("\(name): gcc -O2 \(runners[0].failure!); program skipped")
            rows.append([name, runners[0].failure!, "", "", "", "", "", ""])
            continue
        }
        for round in 0..<runs {
            progress("programs: \(name): run \(round + 1) of \(runs)")
            for index in runners.indices where runners[index].failure == nil {
                let result = try runProcess(runners[index].command, in: scratch)
                check(&runners[index], result, reference!, program: name, problems: &problems)
                if runners[index].failure == nil { runners[index].times.append(result.seconds) }
            }
        }

        // Kiln's compile time, in-process: parse + verify + compileModule + load.
        var compileCell = ""
        do {
            let bytes = try readFile(il)
            _ = try compileInProcess(name: il, bytes: bytes, load: true)
            var samples: [KilnTimes] = []
            var unresolved: [String] = []
            for _ in 0..<runs {
                let (times, missing) = try compileInProcess(name: il, bytes: bytes, load: true)
                samples.append(times)
                unresolved = missing
            }
            compileCell = Format.milliseconds(KilnTimes.median(samples).total)
            if !unresolved.isEmpty { compileCell += " (no load)" }
        } catch {
            compileCell = "error"
            problems.append("\(name): in-process kiln compile failed: \(error)")
        }

        func cell(_ runner: Runner) -> String {
            if let failure = runner.failure {
                if failure == "not installed" { return "qbe: not installed" }
                return failure.hasPrefix("MISMATCH") ? "MISMATCH" : "FAILED"
            }
            return Format.fixed(median(runner.times), 3) + " s"
        }
        func ratio(_ numerator: Runner, _ denominator: Runner, into list: inout [Double]) -> String {
            guard numerator.failure == nil, denominator.failure == nil else { return "-" }
            let value = median(numerator.times) / median(denominator.times)
            list.append(value)
            return Format.fixed(value, 2)
        }
        rows.append([name, cell(runners[0]), cell(runners[1]), cell(runners[2]), cell(runners[3]), compileCell,
                     ratio(runners[3], runners[2], into: &kilnOverQBE), ratio(runners[3], runners[0], into: &kilnOverGCC)])
    }
    let qbeMean = geometricMean(kilnOverQBE)
    let gccMean = geometricMean(kilnOverGCC)
    rows.append(["geometric mean", "", "", "", "", "",
                 qbeMean.map { Format.fixed($0, 2) } ?? "-", gccMean.map { Format.fixed($0, 2) } ?? "-"])

    print("kiln-bench programs: median wall time of \(runs) runs after 1 warm-up, default sizes, outputs checked against gcc -O2")
    print(columns(rows))
    print("notes:")
    print("  wall times are whole processes, start-up included; the runners take turns within each round")
    print("  kiln: `\(kiln ?? "kiln") run NAME.ssa`, so its time includes compiling the program")
    print("  kiln compile: parse+verify+compileModule+load measured in-process through the libraries linked")
    print("    into kiln-bench (median of \(runs) after a warm-up), not by subtracting a `kiln compile` run")
    if let qbe {
        print("  qbe: `\(qbe) -o NAME.s NAME.ssa && gcc -o NAME NAME.s -lm`")
    } else {
        print("  qbe: not installed (not on PATH and no --qbe); its column and the kiln/qbe ratio are absent")
    }
    print("  gcc: \(gcc) -O2 / -O0 NAME.c -lm")
    print("  machine: \(processorCount()) processors; load average \(loadBefore) before, \(loadAverage()) after")
    if problems.isEmpty {
        print("  outputs: every run of every runner printed exactly what gcc -O2 printed")
    } else {
        print("  PROBLEMS (left out of the figures):")
        for problem in problems { print("    " + problem) }
    }
    let standing: String
    if let qbeMean {
        standing = qbeMean <= 1.0
            ? "met (kiln/qbe geometric mean \(Format.fixed(qbeMean, 2)))"
            : "not met: kiln/qbe geometric mean \(Format.fixed(qbeMean, 2)), kiln's code needs to be \(Format.fixed(qbeMean, 2))x faster"
    } else {
        standing = "cannot be judged: no kiln/qbe ratio (qbe: \(qbe == nil ? "not installed" : "no successful runs"))"
    }
    print("goal: \(programsGoal): \(standing)")
}

/// Marks the runner as failed when its run failed or printed something other than the reference.
private func check(_ runner: inout Runner, _ result: ProcessResult, _ reference: [UInt8], program: String,
                   problems: inout [String]) {
    guard runner.failure == nil else { return }
    if !result.succeeded {
        runner.failure = "FAILED"
        let message = "\(program): \(runner.name) FAILED: \(result.errorSummary)"
        problems.append(message)
        print("!!! " + message)
    } else if result.output != reference {
        runner.failure = "MISMATCH"
        let message = "\(program): \(runner.name) output MISMATCH: expected \(quoted(reference)), got \(quoted(result.output))"
        problems.append(message)
        print("!!! " + message)
    }
}

private func quoted(_ bytes: [UInt8]) -> String {
    let text = String(decoding: bytes.prefix(400), as: UTF8.self)
    return "\"" + text.replacingOccurrences("\n", "\\n") + (bytes.count > 400 ? "..." : "") + "\""
}

extension String {
    func replacingOccurrences(_ target: Character, _ replacement: String) -> String {
        var result = ""
        for character in self { if character == target { result += replacement } else { result.append(character) } }
        return result
    }
}

/// Progress, on standard error so the tables on standard output stay clean.
func progress(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { system_write(2, $0.baseAddress, $0.count) }
}
