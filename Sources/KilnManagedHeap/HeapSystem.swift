// Every system call the managed heap makes, in one place.
//
// Memory is reserved as inaccessible address space (PROT_NONE, NORESERVE:
// no memory and no commit charge), made readable and writable where objects
// go (`commit`), and handed back after a collection (`discard`: the pages
// read as zero again and take no memory until written). None of these calls
// allocates in the process, so they may run while other threads are stopped.

#if canImport(Glibc)
import Glibc
#endif

/// A system call of the heap that failed: which one and `strerror(errno)`.
public struct HeapSystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var message: String
    public var description: String { "\(call): \(message)" }

    init(_ call: String, errno code: Int32 = errno) {
        self.call = call
        self.message = String(cString: strerror(code))
    }
}

enum HeapSystem {
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Bytes of physical memory, or 0 when unknown.
    static var physicalMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        return pages > 0 ? pages * pageSize : 0
    }

    /// Reserves `size` bytes of inaccessible address space.
    static func reserve(_ size: Int) throws(HeapSystemError) -> UnsafeMutableRawPointer {
        let address = mmap(nil, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let address, address != MAP_FAILED else { throw HeapSystemError("mmap(reserve \(size) bytes)") }
        return address
    }

    /// Asks for transparent huge pages in a reserved range: a space that is written from one
    /// end to the other takes one page fault per 2 MiB instead of one per 4 KiB (faults cost
    /// more than the copying collector's work when every collection hands out fresh pages).
    static func preferHugePages(_ address: UnsafeMutableRawPointer, _ size: Int) {
        _ = madvise(address, size, MADV_HUGEPAGE)
    }

    /// Maps `size` bytes readable and writable, backed by nothing until touched (side tables).
    static func mapZeroed(_ size: Int) throws(HeapSystemError) -> UnsafeMutableRawPointer {
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let address, address != MAP_FAILED else { throw HeapSystemError("mmap(\(size) bytes)") }
        return address
    }

    static func unmap(_ address: UnsafeMutableRawPointer, _ size: Int) {
        _ = munmap(address, size)
    }

    /// Makes `size` bytes at `address` (page-aligned, inside a reservation) readable and writable.
    static func commit(_ address: UnsafeMutableRawPointer, _ size: Int) -> Bool {
        size == 0 || mprotect(address, size, PROT_READ | PROT_WRITE) == 0
    }

    /// Gives the pages back and makes them inaccessible again.
    static func decommit(_ address: UnsafeMutableRawPointer, _ size: Int) {
        guard size > 0 else { return }
        _ = madvise(address, size, MADV_DONTNEED)
        _ = mprotect(address, size, PROT_NONE)
    }

    /// Gives the pages back but keeps them accessible; they read as zero afterwards.
    static func discard(_ address: UnsafeMutableRawPointer, _ size: Int) {
        guard size > 0 else { return }
        _ = madvise(address, size, MADV_DONTNEED)
    }

    /// Nanoseconds of the monotonic clock (no allocation: usable while the world is stopped).
    static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// The value of an environment variable, or nil.
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

@inline(__always)
func alignUp(_ value: Int, _ alignment: Int) -> Int {
    (value + alignment - 1) & ~(alignment - 1)
}
