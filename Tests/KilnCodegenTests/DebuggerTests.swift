// GDB sees generated code: `gdb -batch -ex run -ex bt` on a crashing program
// names its functions and IL lines, through GDB's JIT interface (GdbJit.swift),
// also when compaction has moved the code (KILN_STRESS=compact) and the object
// had to be registered again.

import Foundation
import Testing

@Suite struct DebuggerTests {
    static let gdb = "/usr/bin/gdb"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: gdb), "gdb is not installed (apt-get install gdb)"),
          arguments: CrashReportTests.stressModes)
    func gdbBacktraceNamesFunctionsAndLines(_ environment: [String: String]) throws {
        let path = CrashReportTests.program("store-null")
        let output = try runUnblocked([Self.gdb, "-batch", "-nx", "-ex", "run", "-ex", "bt", "--args", try kilnExecutable(), "run", path],
                                      environment: environment).output
        let frames = output.split(separator: "\n").filter { $0.hasPrefix("#") }
        try #require(frames.count >= 2, "\(output)")
        let store = try CrashReportTests.line(of: "storew 7", in: path)
        let main = try CrashReportTests.line(of: "call $store", in: path)
        #expect(output.contains("Program received signal SIGSEGV"), "\(output)")
        #expect(frames[0].hasPrefix("#0  store () at \(path):\(store)"), "\(frames[0])")
        #expect(frames[1].hasPrefix("#1  0x") && frames[1].hasSuffix(" in main () at \(path):\(main)"), "\(frames[1])")
    }
}

/// Runs a command with no signal blocked and returns its status and its output and errors
/// in one pipe. Debuggers and profilers wait for their program with SIGCHLD, and the
/// test's threads block every signal (a child inherits that). Ended after two minutes.
func runUnblocked(_ arguments: [String], environment extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
    var environment = ProcessInfo.processInfo.environment
    environment["SWIFT_BACKTRACE"] = "enable=no"
    environment.merge(extra) { $1 }
    let argv = (["/usr/bin/timeout", "120"] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pipeEnds: [Int32] = [0, 0]
    guard pipe(&pipeEnds) == 0 else { throw RunError(message: "pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
    posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
    posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, "/usr/bin/timeout", &actions, &attributes, argv, envp)
    close(pipeEnds[1])
    defer { close(pipeEnds[0]) }
    guard spawned == 0 else { throw RunError(message: "cannot start \(arguments[0]): error \(spawned)") }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        output += buffer[..<count]
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    return (exitStatus, String(decoding: output, as: UTF8.self))
}
