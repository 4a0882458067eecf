// Every system call the loader makes, in one place.
//
// The rest of KilnLoader never imports Glibc directly for a call that can
// fail: it goes through these wrappers, which turn errno into a `SystemError`
// that names the call. Pointers returned here are owned by the caller's
// `~Copyable` owner (see ExecutableRegion.swift) or released right away.

import CKilnShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: its name, what it was doing and `strerror(errno)`.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var message: String

    public var description: String { "\(call): \(message)" }

    init(_ call: String, errno code: Int32 = errno) {
        self.call = call
        self.message = String(cString: strerror(code))
    }

    /// A failure of `call`, with the reason in words.
    public init(_ call: String, message: String) {
        self.call = call
        self.message = message
    }
}

/// Package-wide so the tools share the few helpers they need with the runtime.
package enum System {
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    // MARK: Memory

    /// Reserves `size` bytes of address space, inaccessible, backed by nothing.
    static func reserve(_ size: Int) throws(SystemError) -> UnsafeMutableRawPointer {
        let address = mmap(nil, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let address, address != MAP_FAILED else { throw SystemError("mmap(reserve \(size))") }
        return address
    }

    /// Reserves `size` bytes of address space at an address this process has not used for
    /// a reservation before (while there is room): a conservative stack scan must not
    /// mistake a stale word about an earlier loader's code for a reference to a new one.
    static func reserveUnused(_ size: Int) throws(SystemError) -> UnsafeMutableRawPointer {
        // Addresses above 16 TiB, handed out upwards; below is where the kernel puts
        // ordinary mappings. Past 96 TiB, the kernel chooses.
        let start: UInt = 1 << 44, end: UInt = 96 << 40
        while true {
            let hint = reservationCursor.add(UInt(align(size, 1 << 21)), ordering: .relaxed).oldValue
            guard hint + UInt(size) <= end else { return try reserve(size) }
            let address = mmap(UnsafeMutableRawPointer(bitPattern: start + hint), size, PROT_NONE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0)
            if let address, address != MAP_FAILED { return address }
            guard errno == EEXIST else { throw SystemError("mmap(reserve \(size))") }
        }
    }

    private static let reservationCursor = Atomic<UInt>(0)

    /// Reserves `size` bytes of address space at exactly `address`, as `reserve` does, or
    /// returns nil when anything is mapped there already. Kernels older than 4.17 read
    /// MAP_FIXED_NOREPLACE as a hint; a reservation they place elsewhere is given back.
    static func reserve(_ size: Int, at address: UInt) -> UnsafeMutableRawPointer? {
        let wanted = UnsafeMutableRawPointer(bitPattern: address)
        let result = mmap(wanted, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0)
        guard let result, result != MAP_FAILED else { return nil }
        guard result == wanted else {
            _ = munmap(result, size)
            return nil
        }
        return result
    }

    /// Maps `size` bytes of `file` at `fileOffset` over `address` (inside a reservation we own).
    static func mapShared(
        _ address: UnsafeMutableRawPointer, _ size: Int, file: Int32, fileOffset: Int, writable: Bool
    ) throws(SystemError) {
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ | PROT_EXEC
        let result = mmap(address, size, protection, MAP_SHARED | MAP_FIXED, file, off_t(fileOffset))
        guard result == address else { throw SystemError("mmap(shared, fixed)") }
    }

    /// Maps zeroed private read-write memory over `address` (inside a reservation we own).
    static func mapAnonymous(_ address: UnsafeMutableRawPointer, _ size: Int) throws(SystemError) {
        let result = mmap(address, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0)
        guard result == address else { throw SystemError("mmap(anonymous, fixed)") }
    }

    static func unmap(_ address: UnsafeMutableRawPointer, _ size: Int) {
        _ = munmap(address, size)
    }

    /// Frees the pages of `count` bytes at `offset` of `file` (they read as zero afterwards).
    static func punchHole(_ file: Int32, offset: Int, count: Int) {
        _ = kiln_punch_hole(file, Int64(offset), Int64(count))
    }

    /// Frees private anonymous pages; they read as zero afterwards.
    static func discard(_ address: UnsafeMutableRawPointer, _ count: Int) {
        _ = madvise(address, count, MADV_DONTNEED)
    }

    static func memfd(name: String) throws(SystemError) -> Int32 {
        let descriptor = kiln_memfd_create(name)
        guard descriptor >= 0 else { throw SystemError("memfd_create") }
        return descriptor
    }

    /// Writes all of `bytes` to a descriptor.
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw SystemError("write") }
            written += count
        }
    }

    static func truncate(_ descriptor: Int32, to size: Int) throws(SystemError) {
        guard ftruncate(descriptor, off_t(size)) == 0 else { throw SystemError("ftruncate(\(size))") }
    }

    static func close(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }

    // MARK: Dynamic linking

    /// dlopen with RTLD_NOW | RTLD_GLOBAL; the message is dlerror's.
    static func openLibrary(_ path: String) throws(SystemError) -> UnsafeMutableRawPointer {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL) else {
            throw SystemError("dlopen", message: lastDynamicLinkError() ?? "cannot open \(path)")
        }
        return handle
    }

    static func closeLibrary(_ handle: UnsafeMutableRawPointer) {
        _ = dlclose(handle)
    }

    /// The address of `name` in `handle` (nil: the global scope), or nil.
    static func lookUp(_ name: String, in handle: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
        // RTLD_DEFAULT is the null handle on glibc.
        dlsym(handle, name)
    }

    private static func lastDynamicLinkError() -> String? {
        guard let message = dlerror() else { return nil }
        return String(cString: message)
    }

    // MARK: Standard output

    static func flushAllStreams() {
        _ = fflush(nil)
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

    /// CLOCK_MONOTONIC in nanoseconds (allocates nothing: it runs in stopped worlds).
    static func monotonicNanoseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1_000_000_000 + now.tv_nsec
    }

    static func sleep(microseconds: Int) {
        _ = usleep(useconds_t(microseconds))
    }

    // MARK: C strings

    /// A null-terminated array of strdup'ed strings, for argv and envp; free with `freeStrings`.
    package static func makeStrings(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let array = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { array[index] = strdup(string) }
        array[strings.count] = nil
        return array
    }

    package static func freeStrings(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) {
        var index = 0
        while let string = array[index] {
            free(string)
            index += 1
        }
        array.deallocate()
    }

    /// The process environment, as strings.
    package static var environment: [String] {
        var result: [String] = []
        var index = 0
        while let entry = environ[index] {
            result.append(String(cString: entry))
            index += 1
        }
        return result
    }
}

extension System {
    /// The value of environment variable `name`, or nil.
    static func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Gives the calling thread an alternate signal stack (signals that arrive while it runs
    /// on a small proc segment are handled there); returns it for `removeAlternateSignalStack`.
    static func installAlternateSignalStack() -> (UnsafeMutableRawPointer, stack_t)? {
        let size = 256 << 10
        guard let memory = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              memory != MAP_FAILED else { return nil }
        var stack = stack_t(ss_sp: memory, ss_flags: 0, ss_size: size)
        var old = stack_t()
        guard sigaltstack(&stack, &old) == 0 else {
            munmap(memory, size)
            return nil
        }
        return (memory, old)
    }

    static func removeAlternateSignalStack(_ installed: (UnsafeMutableRawPointer, stack_t)?) {
        guard var (memory, old) = installed else { return }
        // An alternate stack cannot be replaced while a handler runs on it; none does here.
        if sigaltstack(&old, nil) != 0 {
            var disable = stack_t(ss_sp: nil, ss_flags: Int32(SS_DISABLE), ss_size: 0)
            _ = sigaltstack(&disable, nil)
        }
        munmap(memory, 256 << 10)
    }

    // MARK: Files for tools (JitDump.swift)

    /// Creates (or empties) `path` for writing; returns its descriptor (close-on-exec).
    static func createFile(_ path: String) throws(SystemError) -> Int32 {
        let descriptor = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SystemError("open(\(path))") }
        return descriptor
    }

    /// Maps the first page of `descriptor` readable and executable, and keeps it: perf
    /// records executable mappings, and that is how it finds a jitdump file.
    static func mapForPerf(_ descriptor: Int32) throws(SystemError) {
        let address = mmap(nil, pageSize, PROT_READ | PROT_EXEC, MAP_PRIVATE, descriptor, 0)
        guard let address, address != MAP_FAILED else { throw SystemError("mmap(jitdump marker)") }
    }

    static var processID: Int32 { getpid() }
    /// The calling thread's kernel id.
    static var threadID: Int32 { kiln_thread_id() }

    /// The current directory, or "" if unknown.
    static var currentDirectory: String {
        guard let path = getcwd(nil, 0) else { return "" }
        defer { free(path) }
        return String(cString: path)
    }

    /// The calling thread's stack: its highest address (exclusive), or 0 if unknown.
    static func stackTop() -> UInt {
        UInt(kiln_stack_top())
    }
}

/// A recursive mutex: the loader's lock. Binding runs on whatever thread calls through a
/// slot; loading runs on the host's; a thread that holds the lock may take it again.
final class RuntimeLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Takes the lock if no other thread holds it (this thread may hold it already).
    func tryLock() -> Bool { pthread_mutex_trylock(mutex) == 0 }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
