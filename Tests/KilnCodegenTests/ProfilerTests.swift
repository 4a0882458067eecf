// perf sees generated code: `kiln run --perf` (or KILN_PERF=1) writes perf's
// jitdump file, read here record by record; and where the kernel lets perf
// sample, `perf record -k 1` + `perf inject --jit` + `perf report` must name
// the hot function of Tests/Programs/profile/hot.ssa and its IL lines, also
// when compaction moves it between calls (KILN_STRESS=compact).

import Foundation
import Testing

@Suite struct ProfilerTests {
    static let program = packageRoot.appendingPathComponent("Tests/Programs/profile/hot.ssa").path
    static let perf = "/usr/bin/perf"

    /// Why perf cannot be tested here, or nil when it can: it is installed and may sample
    /// (perf_event_paranoid and the machine allow a software clock event).
    static let perfUnavailable: String? = {
        guard FileManager.default.isExecutableFile(atPath: perf) else {
            return "perf is not installed (apt-get install linux-perf)"
        }
        let data = NSTemporaryDirectory() + "kiln-perf-probe-\(getpid()).data"
        defer { try? FileManager.default.removeItem(atPath: data) }
        guard let probe = try? runUnblocked([perf, "record", "-q", "-k", "1", "-e", "cpu-clock", "-o", data, "true"]),
              probe.status == 0 else {
            let paranoid = (try? String(contentsOfFile: "/proc/sys/kernel/perf_event_paranoid", encoding: .utf8)) ?? "?"
            return "the kernel does not let perf sample here (perf_event_paranoid = \(paranoid.trimmingCharacters(in: .whitespacesAndNewlines)))"
        }
        return nil
    }()

    /// A fresh directory for one run's files.
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "kiln-perf-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The records of a jitdump file: (kind, the bytes after the 16-byte record header).
    static func records(_ path: String) throws -> (pid: UInt32, records: [(kind: UInt32, body: [UInt8])]) {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        try #require(bytes.count >= 40 && u32(0) == 0x4A69_5444 && u32(4) == 1 && u32(8) == 40 && u32(12) == 62)
        var records: [(UInt32, [UInt8])] = []
        var offset = 40
        while offset + 16 <= bytes.count {
            let size = Int(u32(offset + 4))
            try #require(size >= 16 && offset + size <= bytes.count, "a record runs past the end at \(offset)")
            records.append((u32(offset), Array(bytes[(offset + 16)..<(offset + size)])))
            offset += size
        }
        #expect(offset == bytes.count)
        return (u32(20), records)
    }

    /// Whether a line of `perf report --stdio` is a row of the table (`  93.86%  ...`), not a
    /// comment or one of perf's warnings.
    static func isRow(_ line: Substring) -> Bool {
        let trimmed = line.drop { $0 == " " }
        guard let percent = trimmed.firstIndex(of: "%") else { return false }
        return !trimmed[..<percent].isEmpty && trimmed[..<percent].allSatisfy { $0.isNumber || $0 == "." }
    }

    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }

    @Test(arguments: [["KILN_STRESS": "compact"], ["KILN_PERF": "1", "KILN_STRESS": ""]])
    func theDumpHasLoadsDebugInfoAndMoves(_ environment: [String: String]) throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let flags = environment["KILN_PERF"] == nil ? ["--perf"] : []
        let result = try run(try kilnExecutable(), ["run"] + flags + [Self.program], environment: environment.merging(["KILN_PERF_DIR": directory]) { $1 })
        #expect(result.status == 0, "\(result.error)")
        let dumps = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("jit-") && $0.hasSuffix(".dump") }
        try #require(dumps.count == 1, "\(dumps)")
        let (pid, records) = try Self.records(directory + "/" + dumps[0])
        #expect(dumps[0] == "jit-\(pid).dump")
        var loaded: [UInt64: (address: UInt64, name: String)] = [:]  // by index
        var debugInfo: Set<UInt64> = []
        var moves = 0
        for (kind, body) in records {
            switch kind {
            case 2:  // debug info: code address, entries (address, line, discriminator, file)
                debugInfo.insert(Self.u64(body, 0))
                #expect(Self.u64(body, 8) > 0)
                let file = String(decoding: body[32...].prefix { $0 != 0 }, as: UTF8.self)
                #expect(file == Self.program)
            case 0:  // load: pid, tid, vma, code address, size, index, name, code
                let address = Self.u64(body, 16), size = Self.u64(body, 24), index = Self.u64(body, 32)
                let name = String(decoding: body[40...].prefix { $0 != 0 }, as: UTF8.self)
                #expect(debugInfo.contains(address), "no debug info before the load of \(name)")
                #expect(body.count == 40 + name.utf8.count + 1 + Int(size))
                #expect(loaded[index] == nil)
                loaded[index] = (address, name)
            case 1:  // move: pid, tid, vma, old address, new address, size, index
                let old = Self.u64(body, 16), new = Self.u64(body, 24), index = Self.u64(body, 40)
                let known = try #require(loaded[index], "a move of an index never loaded")
                #expect(known.address == old, "\(known.name) moved from where it was not")
                loaded[index] = (new, known.name)
                moves += 1
            default:
                Issue.record("unexpected record kind \(kind)")
            }
        }
        #expect(Set(loaded.values.map(\.name)) == ["spin", "main"])
        if environment["KILN_STRESS"] == "compact" { #expect(moves > 0) } else { #expect(moves == 0) }
    }

    @Test(.enabled(if: perfUnavailable == nil, "\(perfUnavailable ?? "")"), arguments: CrashReportTests.stressModes)
    func perfReportNamesTheHotFunctionAndItsLines(_ environment: [String: String]) throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let recorded = directory + "/perf.data", injected = directory + "/perf.jit.data"
        let record = try runUnblocked([Self.perf, "record", "-q", "-k", "1", "-e", "cpu-clock", "-o", recorded,
                                       try kilnExecutable(), "run", "--perf", Self.program],
                                      environment: environment.merging(["KILN_PERF_DIR": directory]) { $1 })
        try #require(record.status == 0, "\(record.output)")
        let inject = try runUnblocked([Self.perf, "inject", "--jit", "-i", recorded, "-o", injected])
        try #require(inject.status == 0, "\(inject.output)")
        let symbols = try runUnblocked([Self.perf, "report", "-i", injected, "--stdio", "--sort", "sym"])
        let top = symbols.output.split(separator: "\n").first(where: Self.isRow)
        #expect(top?.hasSuffix("[.] spin") == true, "\(symbols.output)")
        let lines = try runUnblocked([Self.perf, "report", "-i", injected, "--stdio", "--sort", "srcline"])
        let loop = try CrashReportTests.line(of: "mul %acc", in: Self.program)
        let hot = lines.output.split(separator: "\n").first(where: Self.isRow)
        // The loop's lines (its multiply, add, increment, compare and branch).
        #expect(hot.map { line in (loop...(loop + 4)).contains { line.hasSuffix("hot.ssa:\($0)") } } == true, "\(lines.output)")
    }
}
