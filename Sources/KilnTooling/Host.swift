// What the `kiln` command needs from the operating system, so that it does not
// have to load Foundation (and ICU with it: about 15 ms of start-up for every
// `kiln run`): files, standard error, child processes, a watcher thread. Reads,
// writes and processes go through this target's System.swift.

import Glibc
import KilnLoader

/// Files, standard error and child processes, for command-line tools.
public enum Host {
    /// Why a file could not be read, in the words of a message (`no such file`, ...).
    public struct FileError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// The whole file; a clear reason when it is missing, a directory or unreadable.
    public static func readFile(_ path: String) throws(FileError) -> [UInt8] {
        var information = stat()
        guard stat(path, &information) == 0 else {
            throw FileError(path: path, reason: errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
        }
        if information.st_mode & S_IFMT == S_IFDIR { throw FileError(path: path, reason: "is a directory") }
        do {
            return try System.readFile(path)
        } catch {
            throw FileError(path: path, reason: "cannot be read (\(error.message))")
        }
    }

    /// Writes bytes to a file, replacing it.
    public static func writeFile(_ path: String, _ bytes: [UInt8]) throws(SystemError) {
        try System.writeFile(path, bytes, mode: 0o644)
    }

    public static func removeFile(_ path: String) { _ = unlink(path) }

    /// Writes text to standard error.
    public static func writeStandardError(_ text: String) { System.writeStandardError(text) }

    /// A path for a temporary file of this process (in TMPDIR, or /tmp).
    public static func temporaryPath(_ name: String) -> String {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        return "\(directory)/\(name)-\(getpid())"
    }

    /// This executable's path.
    public static var executablePath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs a program (looked up in PATH) and returns its exit status (nil if it did not
    /// exit normally or could not start) and its standard output and error, merged.
    public static func run(_ executable: String, _ arguments: [String]) -> (status: Int32?, output: [UInt8]) {
        guard let (termination, output) = try? System.run(executable, arguments) else { return (nil, []) }
        if case .exited(let status) = termination { return (status, output) }
        return (nil, output)
    }

    /// A stamp that changes when the file is written: (modification time in ns, size), or
    /// nil when it cannot be read.
    public static func modificationStamp(_ path: String) -> (Int64, Int64)? {
        var information = stat()
        guard stat(path, &information) == 0 else { return nil }
        let time = Int64(information.st_mtim.tv_sec) * 1_000_000_000 + Int64(information.st_mtim.tv_nsec)
        return (time, Int64(information.st_size))
    }

    /// The value of environment variable `name`, or nil.
    public static func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Sleeps for `milliseconds`.
    public static func sleep(milliseconds: Int) {
        _ = usleep(useconds_t(milliseconds * 1000))
    }

    /// Runs `body` on a new detached POSIX thread (for watchers that live as long as the
    /// process). Returns false if the thread could not be started.
    @discardableResult
    public static func startThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        final class Box: @unchecked Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        let status = pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<Box>.fromOpaque(context).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    /// Whether the file at `path` can be opened and begins with `prefix` (false for
    /// directories and missing files). Reads only the prefix's length.
    public static func file(_ path: String, beginsWith prefix: [UInt8]) -> Bool {
        var information = stat()
        guard stat(path, &information) == 0, information.st_mode & S_IFMT == S_IFREG else { return false }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: prefix.count)
        let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, prefix.count) }
        return count == prefix.count && bytes == prefix
    }

    /// Whether `path` names something that exists (a file, a directory...).
    public static func exists(_ path: String) -> Bool {
        var information = stat()
        return stat(path, &information) == 0
    }

    /// Creates directory `path` and the missing directories above it (as `mkdir -p`).
    public static func makeDirectories(_ path: String) throws(FileError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0, errno != EEXIST {
                throw FileError(path: prefix, reason: "cannot be created (\(String(cString: strerror(errno))))")
            }
            prefix += "/"
        }
        var information = stat()
        guard stat(path, &information) == 0, information.st_mode & S_IFMT == S_IFDIR else {
            throw FileError(path: path, reason: "exists and is not a directory")
        }
    }

    /// Runs `body` when the process exits through `exit` (a return from the program's
    /// `main` or its own call of `exit()`), after the handlers registered later, on the
    /// thread that exits. One body per process, set once, before other threads run.
    public static func atExit(_ body: @escaping () -> Void) {
        precondition(exitBody == nil, "Host.atExit is called once per process")
        exitBody = body
        atexit { Host.exitBody?() }
    }

    /// Safe without a lock: written once, before the threads that could exit exist.
    nonisolated(unsafe) private static var exitBody: (() -> Void)?
}
