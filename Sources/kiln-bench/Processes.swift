// Running other programs and finding them: the peers (gcc, qbe, as, cproc)
// and the kiln binary, for the benchmarks that compare against them.
//
// A child is started with posix_spawn, its standard output and error go to
// files in the benchmark's temporary directory (so a chatty child never blocks
// on a pipe), and its wall time is measured from just before the spawn to just
// after waitpid returns: what a user at a shell would see, process start-up
// included.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How one run of a child process ended.
struct ProcessResult {
    /// The exit status, or 128 + the signal number when a signal ended it.
    var status: Int32
    /// The signal that ended it, if one did.
    var signal: Int32?
    var seconds: Double
    var output: [UInt8]
    var errors: [UInt8]

    var succeeded: Bool { status == 0 }

    /// Standard output as text, for messages.
    var outputText: String { String(decoding: output, as: UTF8.self) }

    /// The first lines of standard error, for messages.
    var errorSummary: String {
        let text = String(decoding: errors, as: UTF8.self)
        let lines = text.split(separator: "\n").prefix(3)
        let ending = signal.map { "killed by signal \($0)" + ($0 == SIGTERM ? " (SIGTERM: from outside the benchmark)" : "") }
            ?? "exit status \(status)"
        return lines.isEmpty ? ending : ending + ": " + lines.joined(separator: " | ")
    }
}

/// A scratch directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/kiln-bench.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw UsageError(description: "cannot make a temporary directory: \(String(cString: strerror(errno)))")
        }
        path = String(cString: made)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Deletes the directory and everything in it.
    func remove() {
        _ = try? runProcess(["rm", "-rf", path], in: self)
    }
}

/// Runs `arguments` (the first is looked up on PATH unless it holds a slash),
/// waits for it, and returns its status, wall time and output.
func runProcess(_ arguments: [String], in scratch: TemporaryDirectory) throws -> ProcessResult {
    let outputPath = scratch.file(".stdout")
    let errorPath = scratch.file(".stderr")
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
    argv.append(nil)
    defer { for pointer in argv { free(pointer) } }

    var pid = pid_t()
    var spawnError: Int32 = 0
    var waitStatus: Int32 = 0
    let elapsed = seconds {
        spawnError = posix_spawnp(&pid, argv[0]!, &actions, nil, argv, environ)
        if spawnError == 0 {
            while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
        }
    }
    if spawnError != 0 {
        throw UsageError(description: "cannot run \(arguments[0]): \(String(cString: strerror(spawnError)))")
    }
    let signal = waitStatus & 0x7F
    let status = signal == 0 ? (waitStatus >> 8) & 0xFF : 128 + signal
    return ProcessResult(status: status, signal: signal == 0 ? nil : signal, seconds: elapsed,
                         output: (try? readFile(outputPath)) ?? [], errors: (try? readFile(errorPath)) ?? [])
}

/// The whole of a file.
func readFile(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else {
        throw UsageError(description: "cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if count == 0 { break }
        bytes.append(contentsOf: buffer.prefix(count))
    }
    return bytes
}

/// Whether `path` names an executable file.
func isReadable(_ path: String) -> Bool { access(path, R_OK) == 0 }

func isExecutable(_ path: String) -> Bool {
    var info = stat()
    return access(path, X_OK) == 0 && stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// Whether `path` names a directory.
func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// The first executable called `name` in the directories of PATH.
func findOnPath(_ name: String) -> String? {
    guard let path = getenv("PATH") else { return nil }
    for directory in String(cString: path).split(separator: ":", omittingEmptySubsequences: true) {
        let candidate = directory + "/" + name
        if isExecutable(candidate) { return candidate }
    }
    return nil
}

/// A peer tool: `--NAME PATH` if given (it must then exist), else `name` on PATH, else nil.
func locateTool(_ name: String, option: String?) throws -> String? {
    if let given = option {
        guard isExecutable(given) else { throw UsageError(description: "\(given) is not an executable file") }
        return given
    }
    return findOnPath(name)
}

/// The absolute path of this executable.
func executablePath() -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if count > 0 { return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    let first = CommandLine.arguments.first ?? ""
    return first.contains("/") ? first : findOnPath(first)
}

/// The directory part of a path ("." when there is none).
func directoryName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// The last component of a path.
func baseName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}

/// The names in a directory ending in `suffix`, sorted.
func listDirectory(_ path: String, suffix: String) -> [String] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name.hasSuffix(suffix) && !name.hasPrefix(".") { names.append(name) }
    }
    return names.sorted()
}

/// Pulls `--name a b c` (every argument up to the next `--option`) out of `arguments`.
func extractList(_ name: String, from arguments: inout [String]) -> [String]? {
    guard let start = arguments.firstIndex(of: "--" + name) else { return nil }
    var end = start + 1
    while end < arguments.count && !arguments[end].hasPrefix("--") { end += 1 }
    let values = Array(arguments[(start + 1)..<end])
    arguments.removeSubrange(start..<end)
    return values
}

/// Rows of cells printed as aligned columns: the first left-aligned, the rest right-aligned.
func columns(_ rows: [[String]]) -> String {
    let count = rows.map(\.count).max() ?? 0
    var widths = [Int](repeating: 0, count: count)
    for row in rows {
        for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
    }
    return rows.map { row in
        row.enumerated().map { index, cell in
            let pad = String(repeating: " ", count: widths[index] - cell.count)
            return index == 0 ? cell + pad : pad + cell
        }.joined(separator: "  ")
    }.map { "  " + $0 }.joined(separator: "\n")
}

/// The geometric mean of positive numbers (nil when there are none).
func geometricMean(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    return exp(values.map { log($0) }.reduce(0, +) / Double(values.count))
}

/// The machine's load averages over 1, 5 and 15 minutes, as /proc/loadavg gives them.
func loadAverage() -> String {
    guard let bytes = try? readFile("/proc/loadavg") else { return "unknown" }
    return String(decoding: bytes, as: UTF8.self).split(separator: " ").prefix(3).joined(separator: " ")
}

/// The number of processors online.
func processorCount() -> Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
