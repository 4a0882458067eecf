// `kiln-bench growth`: how compile time and memory grow with the size of one
// function (or module).
//
// For each shape of KilnShapes (a chain of blocks that reassign temporaries,
// a phi with an argument from every predecessor, a run of constant branches,
// an interpreter's dispatch loop, a module of small functions) and each size
// (default 1,000, 10,000 and 100,000 blocks, arguments, cases or functions),
// it generates the IL, then times parseAndVerify + compileModule in-process,
// one warm-up and --runs timed (median). Memory is measured in a fresh
// process (kiln-bench itself, run as `growth --measure SHAPE SIZE`), because a
// process that compiled before keeps the freed memory resident: it generates
// the IL, resets its peak resident size (Linux: /proc/self/clear_refs),
// compiles once, and prints the peak less the resident size before.
// It prints time and memory per IL line, and how much the time per line
// changed from the previous size: about 1.0 when compile time is linear.

import KilnCodegen
import KilnIL
import KilnShapes

private let growthGoal = "time and memory per line about constant from 1k to 100k (linear growth)"

func runGrowthBenchmark(_ arguments: [String]) throws {
    var arguments = arguments
    // Lists may be given as `--sizes 1000 10000` or `--sizes 1000,10000`.
    let only = extractList("only", from: &arguments)?.flatMap { $0.split(separator: ",").map(String.init) }
    let sizeList = extractList("sizes", from: &arguments)?.flatMap { $0.split(separator: ",").map(String.init) }
    let options = try Options(arguments, allowed: ["runs", "measure"])
    let runs = try options.integer("runs", default: 3)
    let sizes = try (sizeList ?? ["1000", "10000", "100000"]).map { text -> Int in
        guard let size = Int(text.filter { $0 != "_" }), size > 0 else {
            throw UsageError(description: "--sizes: \(text) is not a positive number")
        }
        return size
    }
    var kinds = ShapeKind.allCases
    if let only {
        kinds = try only.map { name in
            guard let kind = ShapeKind(rawValue: name) else {
                throw UsageError(description: "--only: no shape \(name) (shapes: \(ShapeKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return kind
        }
    }
    if let shape = options.string("measure") {
        guard let kind = ShapeKind(rawValue: shape), let size = sizes.first else {
            throw UsageError(description: "--measure SHAPE with --sizes N")
        }
        let text = kind.make(size)
        MemoryUsage.resetPeak()
        let before = MemoryUsage.now()
        try compileShape(text, kind)
        print(max(0, MemoryUsage.now().peak - before.current))
        return
    }
    guard let myself = executablePath() else { throw UsageError(description: "cannot find kiln-bench's own path") }
    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }
    let loadBefore = loadAverage()
    var rows: [[String]] = [["shape", "size", "lines", "compile", "µs/line", "peak memory", "bytes/line", "time/line vs previous"]]
    var worst = 0.0
    for kind in kinds {
        var previous: Double?
        for size in sizes {
            progress("growth: \(kind.rawValue) \(Format.grouped(size))")
            let shape = kind.make(size)
            try compileShape(shape, kind)
            var samples: [Double] = []
            for _ in 0..<runs {
                var failure: (any Error)?
                samples.append(seconds { do { try compileShape(shape, kind) } catch { failure = error } })
                if let failure { throw failure }
            }
            let time = median(samples)
            let measured = try runProcess([myself, "growth", "--measure", kind.rawValue, "--sizes", String(size)], in: scratch)
            guard measured.succeeded, let peak = Int(measured.outputText.filter { $0 != "\n" }) else {
                throw UsageError(description: "measuring the memory of \(kind.rawValue) \(size): \(measured.errorSummary)")
            }
            let perLine = time / Double(shape.lines)
            var change = "-"
            if let previous {
                let ratio = perLine / previous
                worst = max(worst, ratio)
                change = Format.fixed(ratio, 2) + "x"
            }
            previous = perLine
            rows.append([kind.rawValue, Format.grouped(size), Format.grouped(shape.lines), Format.milliseconds(time),
                         Format.fixed(perLine * 1e6, 2), Format.megabytes(peak), Format.grouped(peak / shape.lines), change])
        }
    }
    print(columns(rows))
    print("""

        compile = parseAndVerify + compileModule in-process, median of \(runs) after a warm-up; peak memory =
        peak resident size of a fresh process during one compile less its resident size before (the IL text
        itself excluded, its parse included); load average before: \(loadBefore), after: \(loadAverage()).
        goal: \(growthGoal): worst time/line growth from one size to the next \(Format.fixed(worst, 2))x
        """)
}

/// Parses, verifies and compiles a generated module; any error is the generator's fault.
private func compileShape(_ shape: Shape, _ kind: ShapeKind) throws {
    let (module, diagnostics) = parseAndVerify(SourceFile(name: "\(kind.rawValue).ssa", text: shape.text))
    if let error = diagnostics.first(where: { $0.severity == .error }) {
        throw UsageError(description: "\(kind.rawValue) \(shape.size): \(error.rendered)")
    }
    _ = try compileModule(module)
}
