// `kiln-bench frontend`: how fast text becomes checked IR.
//
// Generates a realistic IL file (ILGenerator, default 1.2 million lines), then
// times `SourceFile` + `parseModule` + `verifyModule` over it: one warm-up run,
// then `--repeat` timed runs, reporting the median and the best. The goal is
// 2,000,000 lines per second for the whole front end. The generated file must
// verify without errors; a benchmark of an error path would measure the wrong thing.

import KilnIL

/// The front end's goal, in lines per second.
let frontEndGoal = 2_000_000.0

func runFrontEndBenchmark(_ arguments: [String]) throws {
    let options = try Options(arguments, allowed: ["lines", "repeat", "seed", "dump"])
    let targetLines = try options.integer("lines", default: 1_200_000)
    let repetitions = try options.integer("repeat", default: 5)
    let seed = try options.integer("seed", default: 0x4B49_4C4E)

    var generator = ILGenerator(seed: UInt64(seed))
    var generated = GeneratedIL(bytes: [], lines: 0, functions: 0, dataDefinitions: 0)
    let generationTime = seconds { generated = generator.generate(lines: targetLines) }
    if let path = options.string("dump") {
        try write(generated.bytes, to: path)
        print("wrote \(path)")
    }

    // Warm-up, and the check that the input is valid; its peak is one module's cost.
    let baseline = MemoryUsage.now().current
    MemoryUsage.resetPeak()
    let (module, diagnostics) = parseAndVerify(SourceFile(name: "generated.ssa", bytes: generated.bytes))
    let modulePeak = MemoryUsage.now().peak - baseline
    let errors = diagnostics.filter { $0.severity == .error }
    if let first = errors.first {
        throw UsageError(description: "generated IL has \(errors.count) errors; first: \(first.rendered)")
    }
    let functionCount = module.functions.count
    _ = consume module

    var parseTimes: [Double] = []
    var verifyTimes: [Double] = []
    var totalTimes: [Double] = []
    for _ in 0..<repetitions {
        var parsed: (Module, DiagnosticList)?
        let parseTime = seconds {
            parsed = parseModule(SourceFile(name: "generated.ssa", bytes: generated.bytes))
        }
        var verified = parsed!.0
        parsed = nil
        var verifyErrors = false
        let verifyTime = seconds { verifyErrors = verifyModule(&verified).hasErrors }
        precondition(!verifyErrors, "the generated IL stopped verifying between runs")
        parseTimes.append(parseTime)
        verifyTimes.append(verifyTime)
        totalTimes.append(parseTime + verifyTime)
    }
    let peak = MemoryUsage.now().peak

    let medianTime = median(totalTimes)
    let bestTime = totalTimes.min()!
    let linesPerSecond = Double(generated.lines) / medianTime
    let megabytesPerSecond = Double(generated.bytes.count) / 1_048_576 / medianTime
    let standing = linesPerSecond >= frontEndGoal
        ? "met (\(Format.fixed(linesPerSecond / frontEndGoal, 2))x the goal)"
        : "not met: \(Format.fixed(100 * linesPerSecond / frontEndGoal, 0))% of the goal, needs \(Format.fixed(frontEndGoal / linesPerSecond, 2))x"
    print(Format.table("kiln-bench frontend: SourceFile + parseModule + verifyModule", [
        ("input", "\(Format.grouped(generated.lines)) lines, \(Format.megabytes(generated.bytes.count)), "
            + "\(Format.grouped(functionCount)) functions, \(Format.grouped(generated.dataDefinitions)) data"),
        ("generated in", Format.milliseconds(generationTime) + " (not timed below)"),
        ("runs", "1 warm-up + \(repetitions) timed"),
        ("parse", "median \(Format.milliseconds(median(parseTimes))), best \(Format.milliseconds(parseTimes.min()!))"),
        ("verify", "median \(Format.milliseconds(median(verifyTimes))), best \(Format.milliseconds(verifyTimes.min()!))"),
        ("total", "median \(Format.milliseconds(medianTime)), best \(Format.milliseconds(bestTime))"),
        ("lines/s", "\(Format.grouped(Int(linesPerSecond))) (median), \(Format.grouped(Int(Double(generated.lines) / bestTime))) (best)"),
        ("MB/s", Format.fixed(megabytesPerSecond, 1) + " (median)"),
        ("peak memory", "\(Format.megabytes(peak)) resident during the runs; parsing and verifying once added "
            + "\(Format.megabytes(max(0, modulePeak))) to the \(Format.megabytes(baseline)) already resident"),
        ("goal", "\(Format.grouped(Int(frontEndGoal))) lines/s: \(standing)"),
    ]))
}
