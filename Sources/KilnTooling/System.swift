// The system calls of the tools: files, standard streams, child processes,
// temporary directories and the drivers `kiln test` opens. Host.swift, the
// command's face of this target, adds the few it makes directly (stat of a
// file, a detached thread, a sleep).
//
// The runtime (KilnLoader) has its own System.swift for what a loaded program
// needs; nothing here is linked into a host that embeds the loader. Failures
// become a `SystemError` naming the call and `strerror(errno)`.

import KilnLoader
#if canImport(Glibc)
import Glibc
#endif

extension SystemError {
    init(_ call: String, errno code: Int32 = errno) {
        self.init(call, message: String(cString: strerror(code)))
    }
}

enum System {
    // MARK: Standard streams

    static func flushAllStreams() {
        _ = fflush(nil)
    }

    /// Runs `body` with file descriptor 1 redirected into `path` (created or truncated);
    /// C stdio is flushed before and after, so nothing crosses the boundary.
    static func withStandardOutput<R>(redirectedTo path: String, _ body: () throws -> R) throws -> R {
        flushAllStreams()
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw SystemError("open(\(path))") }
        let saved = dup(1)
        guard saved >= 0 else {
            _ = Glibc.close(file)
            throw SystemError("dup(1)")
        }
        _ = dup2(file, 1)
        _ = Glibc.close(file)
        defer {
            flushAllStreams()
            _ = dup2(saved, 1)
            _ = Glibc.close(saved)
        }
        return try body()
    }

    /// Writes `text` to file descriptor 2, unbuffered.
    static func writeStandardError(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return }
            bytes = bytes.dropFirst(count)
        }
    }

    // MARK: Files

    static func readFile(_ path: String) throws(SystemError) -> [UInt8] {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { throw SystemError("open(\(path))") }
        defer { _ = Glibc.close(file) }
        return try readAll(file)
    }

    static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(SystemError) {
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard file >= 0 else { throw SystemError("open(\(path))") }
        defer { _ = Glibc.close(file) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                write(file, buffer.baseAddress! + written, buffer.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("write(\(path))")
            }
            written += count
        }
    }

    static func writeFile(_ path: String, _ text: String) throws(SystemError) {
        try writeFile(path, Array(text.utf8))
    }

    static func readAll(_ descriptor: Int32) throws(SystemError) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("read")
            }
            if count == 0 { return result }
            result.append(contentsOf: chunk[0..<count])
        }
    }

    /// A fresh private directory under $TMPDIR (or /tmp).
    static func makeTemporaryDirectory(prefix: String) throws(SystemError) -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/\(prefix)XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw SystemError("mkdtemp") }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Removes the files `names` in `directory`, then the directory.
    static func removeDirectory(_ directory: String, files names: [String]) {
        for name in names { _ = unlink("\(directory)/\(name)") }
        _ = rmdir(directory)
    }

    // MARK: Drivers

    /// dlopen with RTLD_NOW | RTLD_GLOBAL; the message is dlerror's.
    static func openLibrary(_ path: String) throws(SystemError) -> UnsafeMutableRawPointer {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL) else {
            throw SystemError("dlopen", message: dlerror().map { String(cString: $0) } ?? "cannot open \(path)")
        }
        return handle
    }

    static func closeLibrary(_ handle: UnsafeMutableRawPointer) {
        _ = dlclose(handle)
    }

    /// The address of `name` in the library `handle`, or nil.
    static func lookUp(_ name: String, in handle: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        dlsym(handle, name)
    }

    // MARK: Processes

    /// The outcome of a child process.
    enum Termination: Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
    }

    /// Runs `executable` (looked up in PATH when it has no slash) with `arguments` and
    /// `environment` (nil: this process's), stdin from /dev/null, stderr (and stdout,
    /// unless `keepsStandardOutput` is false: then /dev/null) into one pipe that is
    /// read to the end; kills the child after `timeout` seconds when given.
    static func run(
        _ executable: String, _ arguments: [String], environment: [String]? = nil,
        keepsStandardOutput: Bool = true, timeout: Double? = nil
    ) throws(SystemError) -> (Termination, output: [UInt8]) {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw SystemError("pipe") }
        let (readEnd, writeEnd) = (pipeEnds[0], pipeEnds[1])
        // Keep both ends out of children spawned by other threads; dup2 in the
        // child clears the flag on descriptors 1 and 2.
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if keepsStandardOutput {
            posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)

        let argv = KilnLoader.System.makeStrings([executable] + arguments)
        let envp = environment.map(KilnLoader.System.makeStrings)
        defer {
            KilnLoader.System.freeStrings(argv)
            envp.map(KilnLoader.System.freeStrings)
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, executable, &actions, nil, argv, envp ?? environ)
        _ = Glibc.close(writeEnd)
        guard status == 0 else {
            _ = Glibc.close(readEnd)
            throw SystemError("posix_spawn(\(executable))", errno: status)
        }

        var output: [UInt8] = []
        var timedOut = false
        let deadline = timeout.map { monotonicSeconds() + $0 }
        var chunk = [UInt8](repeating: 0, count: 65536)
        reading: while true {
            var waitMilliseconds: Int32 = -1
            if let deadline {
                let left = deadline - monotonicSeconds()
                if left <= 0 {
                    timedOut = true
                    _ = kill(pid, SIGKILL)
                    break reading
                }
                waitMilliseconds = Int32(min(left * 1000 + 1, 60_000))
            }
            var descriptor = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, waitMilliseconds)
            if ready < 0 && errno != EINTR { break }
            if ready <= 0 { continue }
            let count = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            output.append(contentsOf: chunk[0..<count])
        }
        _ = Glibc.close(readEnd)

        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 {
            guard errno == EINTR else { throw SystemError("waitpid") }
        }
        if timedOut { return (.timedOut, output) }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
        let signal = waitStatus & 0x7F
        if signal == 0 { return (.exited((waitStatus >> 8) & 0xFF), output) }
        return (.signaled(signal), output)
    }

    static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// "SIGSEGV" for 11, and so on.
    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL",
            SIGTRAP: "SIGTRAP", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE",
            SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM",
            SIGTERM: "SIGTERM",
        ]
        return names[signal] ?? "signal \(signal)"
    }

}
