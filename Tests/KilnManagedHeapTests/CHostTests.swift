// A C host uses the heap through kiln_heap.h exactly as the header says: the
// program is compiled with gcc and loaded into the test process, where the
// entries it calls are the heap's own.

import Foundation
import KilnManagedHeap
import Testing

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite struct CHostTests {
    /// The host library, built from Tests/Programs/heap-host.c into a fresh directory.
    func buildHost() throws -> UnsafeMutableRawPointer {
        let directory = NSTemporaryDirectory() + "kiln-heap-host-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let library = directory + "/libheaphost.so"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gcc", "-O1", "-Wall", "-Werror", "-shared", "-fPIC", "-o", library,
                             "-I", packageRoot.appendingPathComponent("Sources/KilnManagedHeap/include").path,
                             packageRoot.appendingPathComponent("Tests/Programs/heap-host.c").path]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "gcc failed")
        return try #require(dlopen(library, RTLD_NOW | RTLD_LOCAL), "dlopen: \(String(cString: dlerror()))")
    }

    @Test func aCHostKeepsAListAcrossCollections() throws {
        let host = try buildHost()
        defer { dlclose(host) }
        typealias Run = @convention(c) (UnsafeMutableRawPointer, Int32) -> Int32
        let run = unsafeBitCast(try #require(dlsym(host, "heap_host_run")), to: Run.self)
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        #expect(run(UnsafeMutableRawPointer(mutator.record), 1000) == 0, "heap-host.c: the check on the line returned failed")
        #expect(heap.statistics.fullCollections == 10)
        #expect(mutator.openHandles == 0)
    }

    @Test func theHeadersNumbersAreTheSwiftOnes() throws {
        let host = try buildHost()
        defer { dlclose(host) }
        typealias Constants = @convention(c) (UnsafeMutablePointer<UInt64>) -> Void
        let constants = unsafeBitCast(try #require(dlsym(host, "heap_host_constants")), to: Constants.self)
        var values = [UInt64](repeating: 0, count: 14)
        constants(&values)
        let expected: [UInt64] = [
            UInt64(AllocationRecord.cursorOffset), UInt64(AllocationRecord.limitOffset), UInt64(AllocationRecord.clientOffset),
            ObjectHeader.rawBit, ObjectHeader.forwardedBit, ObjectHeader.codeBit, ObjectHeader.markBit, ObjectHeader.sizeMask,
            UInt64(HeapError.Kind.outOfMemory.rawValue), UInt64(HeapError.Kind.staleHandle.rawValue),
            UInt64(HeapError.Kind.invalidConfiguration.rawValue),
            UInt64(ObjectAccess.field.rawValue), UInt64(ObjectAccess.byte.rawValue), UInt64(ObjectAccess.length.rawValue),
        ]
        #expect(values == expected)
    }
}
