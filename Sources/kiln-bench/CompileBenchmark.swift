// `kiln-bench compile`: how fast IL text becomes runnable code, against QBE.
//
// Inputs, in order of preference:
//   --files A.ssa B.ssa ...  IL files given on the command line;
//   C sources translated to QBE IL by cproc (`cproc -emit-qbe`) now, at
//     benchmark time: --sources FILES/DIRS, or by default the C files beside
//     the cproc and qbe binaries when those were built from source (their own
//     sources: large, real C);
//   a generated file (RunnableILGenerator, --lines N, default 200,000), when
//     there is no cproc or no C to give it; --lines also adds it to the others.
// Kiln is timed in-process, one warm-up then --runs timed: parseAndVerify,
// compileModule (with its PhaseTimes), then `Loader().load` into executable
// memory. A file that refers to symbols nothing defines (a translation unit of
// a bigger program) cannot be loaded; for it the load is skipped and its time
// stops after compileModule, which the table says. QBE is timed as external
// processes: `qbe -o x.s F.ssa` then `as -o x.o x.s`, the median of --runs.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let compileGoal = "compilation at least 10x faster than QBE plus the system assembler"
private let compileGoalRatio = 10.0

/// One IL input and what came of it.
private struct CompileInput {
    var label: String
    /// The kind of input it is, for the per-kind tables.
    var group: String
    var path: String
    var bytes: [UInt8]
    var lines: Int
}

/// QBE's largest tests, in its `test` directory.
private let qbeLargeTests = ["_slow.qbe", "_bfmandel.ssa"]

func runCompileBenchmark(_ arguments: [String]) throws {
    var arguments = arguments
    let files = extractList("files", from: &arguments)
    let sources = extractList("sources", from: &arguments)
    let options = try Options(arguments, allowed: ["runs", "qbe", "cproc", "lines", "seed", "keep", "qbe-tests", "lua-il",
                                                   "kiln", "instructions"])
    let runs = try options.integer("runs", default: 5)
    let qbe = try locateTool("qbe", option: options.string("qbe"))
    let assembler = findOnPath("as")
    let cproc = try locateTool("cproc", option: options.string("cproc"))
    let counting = options.string("instructions") ?? "yes"
    guard counting == "yes" || counting == "no" else {
        throw UsageError(description: "--instructions takes yes or no, not \(counting)")
    }

    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }
    let loadBefore = loadAverage()
    var notes: [String] = []
    var inputs: [CompileInput] = []

    func addInput(label: String, group: String, path: String) throws {
        let bytes = try readFile(path)
        inputs.append(CompileInput(label: label, group: group, path: path, bytes: bytes,
                                   lines: bytes.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }))
    }

    if let files {
        guard !files.isEmpty else { throw UsageError(description: "--files needs at least one IL file") }
        for file in files { try addInput(label: baseName(file), group: "--files", path: file) }
        notes.append("inputs: the IL files given with --files")
    }
    if let directory = options.string("qbe-tests") {
        for test in qbeLargeTests {
            let path = directory + "/" + test
            guard isReadable(path) else { throw UsageError(description: "--qbe-tests: \(path) not found") }
            try addInput(label: "qbe/test/" + test, group: "QBE's large tests", path: path)
        }
        notes.append("QBE's large tests: \(qbeLargeTests.joined(separator: ", ")) from \(directory)")
    }
    if let directory = options.string("lua-il") {
        let names = listDirectory(directory, suffix: ".ssa").sorted()
        guard !names.isEmpty else { throw UsageError(description: "--lua-il: no .ssa files in \(directory)") }
        for name in names { try addInput(label: "lua/" + name, group: "Lua by cproc", path: directory + "/" + name) }
        notes.append("Lua by cproc: the \(names.count) IL files in \(directory)")
    }
    if files == nil, let cproc, sources != nil || inputs.isEmpty {
        var cFiles: [String] = []
        if let sources {
            for source in sources {
                cFiles += isDirectory(source) ? listDirectory(source, suffix: ".c").map { source + "/" + $0 } : [source]
            }
        } else {
            cFiles = defaultCSources(cproc: cproc, qbe: qbe)
        }
        var failed: [String] = []
        for (index, cFile) in cFiles.enumerated() {
            let label = prettySourceName(cFile)
            let output = scratch.file("input\(index)-" + String(baseName(cFile).dropLast(2)) + ".ssa")
            progress("compile: translating \(label) with cproc")
            let result = try runProcess([cproc, "-emit-qbe", "-o", output, cFile], in: scratch)
            if result.succeeded {
                try addInput(label: label, group: "C by cproc", path: output)
            } else {
                failed.append("\(label) (\(result.errorSummary))")
            }
        }
        if !cFiles.isEmpty {
            notes.append("inputs: \(inputs.count) C files translated now by `\(cproc) -emit-qbe` (not timed)")
        }
        if !failed.isEmpty { notes.append("cproc could not translate: " + failed.joined(separator: "; ")) }
    } else if cproc == nil {
        notes.append("cproc: not installed (not on PATH and no --cproc)")
    }
    if inputs.isEmpty || options.string("lines") != nil {
        let target = try options.integer("lines", default: 200_000)
        let seed = try options.integer("seed", default: 0x6B69_6C6E)
        var generator = RunnableILGenerator(seed: UInt64(seed))
        let generated = generator.generate(lines: target)
        let path = scratch.file("generated.ssa")
        try write(generated.bytes, to: path)
        inputs.append(CompileInput(label: "generated.ssa", group: "generated", path: path, bytes: generated.bytes, lines: generated.lines))
        notes.append("generated.ssa: \(Format.grouped(generated.functions)) functions of runnable IL made by kiln-bench (seed \(seed))")
    }
    if let keep = options.string("keep") {
        guard isDirectory(keep) else { throw UsageError(description: "--keep: \(keep) is not a directory") }
        for input in inputs { try write(input.bytes, to: keep + "/" + input.label.replacingOccurrences("/", "_")) }
        notes.append("inputs copied to \(keep)")
    }

    var rows: [[String]] = [["file", "lines", "KB", "parse+verify", "passes", "select", "alloc", "emit", "data",
                             "load", "kiln total", "kiln lines/s", "qbe", "as", "qbe+as", "qbe+as lines/s", "speed-up"]]
    var kilnTotal = 0.0, peerTotal = 0.0, pairedLines = 0, pairedBytes = 0
    var kilnOnlyTotal = 0.0, kilnOnlyLines = 0
    var skippedLoads = 0, loadedFiles = 0
    var problems: [String] = []
    var sumTimes = KilnTimes()
    sumTimes.load = 0
    var peerSums = (qbe: 0.0, assembler: 0.0)
    var kilnWall = [Double?](repeating: nil, count: inputs.count)
    var peerWall = [Double?](repeating: nil, count: inputs.count)

    for (index, input) in inputs.enumerated() {
        progress("compile: \(input.label): \(Format.grouped(input.lines)) lines")
        var kiln: KilnTimes?
        var unresolved: [String] = []
        do {
            (_, unresolved) = try compileInProcess(name: input.path, bytes: input.bytes, load: true)
            var samples: [KilnTimes] = []
            for _ in 0..<runs {
                samples.append(try compileInProcess(name: input.path, bytes: input.bytes, load: unresolved.isEmpty).times)
            }
            kiln = KilnTimes.median(samples)
        } catch {
            problems.append("\(input.label): kiln \(error)")
        }

        var peer: (qbe: Double, assembler: Double, total: Double)?
        var peerCell = "qbe: not installed"
        if let qbe, let assembler {
            let assembly = scratch.file("peer.s"), object = scratch.file("peer.o")
            var qbeTimes: [Double] = [], asTimes: [Double] = [], totals: [Double] = []
            peerCell = ""
            for _ in 0..<(runs + 1) {
                let compiled = try runProcess([qbe, "-o", assembly, input.path], in: scratch)
                guard compiled.succeeded else { peerCell = "qbe failed"; problems.append("\(input.label): qbe \(compiled.errorSummary)"); break }
                let assembled = try runProcess([assembler, "-o", object, assembly], in: scratch)
                guard assembled.succeeded else { peerCell = "as failed"; problems.append("\(input.label): as \(assembled.errorSummary)"); break }
                qbeTimes.append(compiled.seconds)
                asTimes.append(assembled.seconds)
                totals.append(compiled.seconds + assembled.seconds)
            }
            if peerCell.isEmpty {
                // The first run was the warm-up.
                peer = (median(Array(qbeTimes.dropFirst())), median(Array(asTimes.dropFirst())), median(Array(totals.dropFirst())))
            }
        } else if qbe != nil {
            peerCell = "as: not installed"
        }

        let kb = Format.grouped(Int((Double(input.bytes.count) / 1024).rounded()))
        var row = [input.label, Format.grouped(input.lines), kb]
        if let kiln {
            if kiln.load == nil { skippedLoads += 1 } else { loadedFiles += 1 }
            row += [kiln.frontEnd, kiln.passes, kiln.selection, kiln.allocation, kiln.emission, kiln.data].map(ms)
            row.append(kiln.load.map(ms) ?? "skipped*")
            row += [ms(kiln.total), Format.grouped(Int(Double(input.lines) / kiln.total))]
        } else {
            row += ["FAILED", "", "", "", "", "", "", "", ""]
        }
        if let peer {
            row += [ms(peer.qbe), ms(peer.assembler), ms(peer.total), Format.grouped(Int(Double(input.lines) / peer.total))]
        } else {
            row += [peerCell, "", "", ""]
        }
        if let kiln, let peer {
            row.append(Format.fixed(peer.total / kiln.total, 1) + "x")
            kilnTotal += kiln.total
            peerTotal += peer.total
            pairedLines += input.lines
            pairedBytes += input.bytes.count
            peerSums.qbe += peer.qbe
            peerSums.assembler += peer.assembler
        } else {
            row.append("-")
        }
        kilnWall[index] = kiln?.total
        peerWall[index] = peer?.total
        if let kiln {
            kilnOnlyTotal += kiln.total
            kilnOnlyLines += input.lines
            sumTimes.frontEnd += kiln.frontEnd
            sumTimes.passes += kiln.passes
            sumTimes.selection += kiln.selection
            sumTimes.allocation += kiln.allocation
            sumTimes.emission += kiln.emission
            sumTimes.data += kiln.data
            sumTimes.load! += kiln.load ?? 0
        }
        rows.append(row)
    }
    let totalLines = inputs.reduce(0) { $0 + $1.lines }
    let totalBytes = inputs.reduce(0) { $0 + $1.bytes.count }
    var total = ["total (\(inputs.count) files)", Format.grouped(totalLines), Format.grouped(Int((Double(totalBytes) / 1024).rounded()))]
    total += [sumTimes.frontEnd, sumTimes.passes, sumTimes.selection, sumTimes.allocation, sumTimes.emission,
              sumTimes.data, sumTimes.load!, kilnOnlyTotal].map(ms)
    total.append(kilnOnlyTotal > 0 ? Format.grouped(Int(Double(kilnOnlyLines) / kilnOnlyTotal)) : "-")
    let ratio: Double? = peerTotal > 0 && kilnTotal > 0 ? peerTotal / kilnTotal : nil
    if peerTotal > 0 {
        total += [ms(peerSums.qbe), ms(peerSums.assembler), ms(peerTotal), Format.grouped(Int(Double(pairedLines) / peerTotal))]
    } else {
        total += [qbe == nil ? "qbe: not installed" : "-", "", "", ""]
    }
    total.append(ratio.map { Format.fixed($0, 1) + "x" } ?? "-")
    rows.append(total)

    print("kiln-bench compile: IL text to runnable code, median of \(runs) runs after 1 warm-up (times in ms)")
    print(columns(rows))
    print("notes:")
    for note in notes { print("  " + note) }
    print("  kiln: in-process through the libraries: parse+verify = parseAndVerify; passes..data = compileModule's")
    print("    PhaseTimes; load = Loader() + load(_) into executable memory; kiln total = parse+verify + compileModule")
    print("    (timed around the call, so slightly more than its phases) + load")
    if skippedLoads > 0 {
        print("  * load skipped for \(skippedLoads) of \(skippedLoads + loadedFiles) files: they use symbols defined in other")
        print("    translation units, so they cannot be linked alone; their kiln total stops after compileModule")
    }
    if let qbe, let assembler {
        print("  qbe+as: `\(qbe) -o x.s F.ssa` then `\(assembler) -o x.o x.s`, each a process (start-up included);")
        print("    median of \(runs) after a warm-up; qbe+as is the median of the per-run sums")
    } else {
        print("  qbe+as: \(qbe == nil ? "qbe: not installed" : "as: not installed"); no comparison possible")
    }
    print("  machine: \(processorCount()) processors; load average \(loadBefore) before, \(loadAverage()) after")
    if pairedLines > 0 {
        print("  speed-up = (qbe+as time) / (kiln total time); the total row's speed-up is over the \(Format.grouped(pairedLines)) lines")
        print("    (\(Format.fixed(Double(pairedBytes) / 1_048_576, 1)) MB) both compiled; total kiln lines/s covers every file kiln compiled")
    }
    if !problems.isEmpty {
        print("  PROBLEMS (left out of the totals):")
        for problem in problems { print("    " + problem) }
    }
    let standing: String
    if let ratio {
        standing = ratio >= compileGoalRatio
            ? "met (\(Format.fixed(ratio, 1))x faster)"
            : "not met: \(Format.fixed(ratio, 1))x faster, needs \(Format.fixed(compileGoalRatio / ratio, 2))x more"
    } else {
        standing = "cannot be judged: \(qbe == nil ? "qbe: not installed" : "no file compiled by both")"
    }
    print("goal: \(compileGoal): \(standing)")

    guard counting == "yes" else { return }
    guard let valgrind = findOnPath("valgrind") else {
        print("\ninstructions per IL line: valgrind: not installed (apt-get install -y valgrind); no counts")
        return
    }
    let kilnPath: String
    if let given = options.string("kiln") {
        guard isExecutable(given) else { throw UsageError(description: "--kiln: \(given) is not an executable") }
        kilnPath = given
    } else if let executable = executablePath(), isExecutable(directoryName(executable) + "/kiln") {
        kilnPath = directoryName(executable) + "/kiln"
    } else {
        print("\ninstructions per IL line: kiln: not found next to kiln-bench (give --kiln PATH); no counts")
        return
    }
    try printInstructionTable(inputs: inputs, kilnWall: kilnWall, peerWall: peerWall, valgrind: valgrind,
                              kiln: kilnPath, qbe: qbe, assembler: assembler, scratch: scratch)
}

private let instructionGoal = "at least 3x fewer instructions per IL line than QBE plus the system assembler, on every kind of input"

/// The second table: callgrind's instruction counts per IL line for each kind of input.
private func printInstructionTable(inputs: [CompileInput], kilnWall: [Double?], peerWall: [Double?], valgrind: String,
                                   kiln: String, qbe: String?, assembler: String?, scratch: TemporaryDirectory) throws {
    let setup = try InstructionSetup.make(valgrind: valgrind, kiln: kiln, qbe: qbe, assembler: assembler, scratch: scratch)
    struct Group {
        var name: String
        var files = 0, lines = 0, kiln = 0, kilnLines = 0, peer = 0, peerLines = 0
        var kilnWall = 0.0, peerWall = 0.0
    }
    var groups: [Group] = []
    var problems: [String] = []
    for (index, input) in inputs.enumerated() {
        progress("compile: counting instructions for \(input.label)")
        let figures = try setup.figures(for: input.path, label: input.label, problems: &problems)
        if groups.last?.name != input.group { groups.append(Group(name: input.group)) }
        groups[groups.count - 1].files += 1
        groups[groups.count - 1].lines += input.lines
        // Both sides are summed over the files both compiled, so the ratio compares the same lines.
        if let kilnCount = figures.kiln, let peerCount = figures.peer {
            groups[groups.count - 1].kiln += kilnCount
            groups[groups.count - 1].kilnLines += input.lines
            groups[groups.count - 1].peer += peerCount
            groups[groups.count - 1].peerLines += input.lines
            groups[groups.count - 1].kilnWall += kilnWall[index] ?? 0
            groups[groups.count - 1].peerWall += peerWall[index] ?? 0
        } else if let kilnCount = figures.kiln, setup.peerBaseline == nil {
            groups[groups.count - 1].kiln += kilnCount
            groups[groups.count - 1].kilnLines += input.lines
            groups[groups.count - 1].kilnWall += kilnWall[index] ?? 0
        }
    }
    var rows: [[String]] = [["input kind", "files", "lines", "kiln instr/line", "qbe+as instr/line", "kiln advantage",
                             "kiln ms", "qbe+as ms"]]
    var worst: Double?
    for group in groups {
        let kilnPerLine = group.kilnLines > 0 ? Double(group.kiln) / Double(group.kilnLines) : nil
        let peerPerLine = group.peerLines > 0 ? Double(group.peer) / Double(group.peerLines) : nil
        var advantage = "-"
        if let kilnPerLine, let peerPerLine, kilnPerLine > 0 {
            let ratio = peerPerLine / kilnPerLine
            advantage = Format.fixed(ratio, 2) + "x"
            worst = min(worst ?? ratio, ratio)
        }
        rows.append([group.name, Format.grouped(group.files), Format.grouped(group.lines),
                     kilnPerLine.map { Format.grouped(Int($0.rounded())) } ?? "FAILED",
                     peerPerLine.map { Format.grouped(Int($0.rounded())) } ?? (qbe == nil ? "qbe: not installed" : "-"),
                     advantage, Format.fixed(group.kilnWall * 1000, 1),
                     group.peerLines > 0 ? Format.fixed(group.peerWall * 1000, 1) : "-"])
    }
    print("")
    print("kiln-bench compile: instructions per IL line (callgrind, whole processes, less a 4-line program's count)")
    print(columns(rows))
    print("notes:")
    print("  kiln: `kiln compile F.ssa` (parse, verify, passes, code generation; no load) with a stripped copy of \(kiln);")
    print("    baseline \(Format.grouped(setup.kilnBaseline)) instructions")
    if let peerBaseline = setup.peerBaseline {
        print("  qbe+as: `qbe -o x.s F.ssa` + `as -o x.o x.s`; baseline \(Format.grouped(peerBaseline)) instructions")
    }
    print("  kiln advantage = (qbe+as instructions per line) / (kiln instructions per line), over the files both compiled;")
    print("    the ms columns are the medians of the first table, summed over the same files")
    if !problems.isEmpty {
        print("  PROBLEMS (left out of the figures):")
        for problem in problems { print("    " + problem) }
    }
    let standing: String
    if let worst {
        standing = worst >= 3 ? "met (worst kind \(Format.fixed(worst, 2))x)" : "not met: worst kind \(Format.fixed(worst, 2))x"
    } else {
        standing = "cannot be judged: no input counted for both"
    }
    print("goal: \(instructionGoal): \(standing)")
}

private func ms(_ seconds: Double) -> String { Format.fixed(seconds * 1000, 1) }

/// The C files beside the cproc and qbe binaries, when those were built from source.
private func defaultCSources(cproc: String, qbe: String?) -> [String] {
    var directories = [directoryName(cproc)]
    if let qbe {
        let root = directoryName(qbe)
        directories.append(root)
        if isDirectory(root + "/amd64") { directories.append(root + "/amd64") }
    }
    var seen = Set<String>()
    var files: [String] = []
    for directory in directories where seen.insert(directory).inserted {
        files += listDirectory(directory, suffix: ".c").map { directory + "/" + $0 }
    }
    return files
}

/// `cproc-src/expr.c` for `/work/cproc-src/expr.c`: the file and its directory.
private func prettySourceName(_ path: String) -> String {
    let directory = directoryName(path)
    let parent = directoryName(directory)
    let last = baseName(directory)
    return last == "amd64" ? baseName(parent) + "/amd64/" + baseName(path) : last + "/" + baseName(path)
}
