// Threads that Kiln never saw start: a C library (Tests/Programs/workers.c,
// built with gcc) runs four of its own, each calling a callback stub in a
// loop, while this thread reloads the function behind the stub thousands of
// times and compacts the code heap. Every stop of the world must stop them,
// every result must be right, and the heap must end where it started.

import KilnCode
import KilnLoader
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `square_plus_one(x)` = x * x + 1 in two versions of different sizes.
func squareVersion(_ version: Int) -> String {
    let padding = version == 1 ? "" : (0..<20).map { "\t%p\($0) =l add %x, \($0)\n\tstorel %p\($0), $sink\n" }.joined()
    return """
        data $sink = { l 0 }
        export function l $square_plus_one(l %x) {
        @start
        \(padding)	%y =l mul %x, %x
        	%z =l add %y, 1
        	ret %z
        }
        """
}

@Suite(.serialized) struct ForeignThreadTests {
    /// Builds workers.c as a shared object; its path.
    static func buildWorkers() throws -> String {
        // This file is Tests/KilnLoaderTests/ForeignThreadTests.swift.
        let tests = String(#filePath.split(separator: "/", omittingEmptySubsequences: false).dropLast(2).joined(separator: "/"))
        let source = tests + "/Programs/workers.c"
        let library = "/tmp/kiln-loader-test-\(getpid())-workers.so"
        guard system("gcc -O2 -shared -fPIC -o \(library) \(source) -lpthread 2>/dev/null") == 0 else {
            throw LoadError.invalidArgument("gcc could not build \(source)")
        }
        return library
    }

    @Test func fourThreadsOfACLibraryCallThroughTwoThousandReloads() throws {
        // The library's threads inherit this thread's signal mask: let stops stop them.
        World.acceptStops()
        let library = try Self.buildWorkers()
        defer { unlink(library) }
        let loader = try Loader(linkLibraries: [library], options: .init(placementSeed: 21))
        let versions = [try compile("square.ssa", squareVersion(1)), try compile("square.ssa", squareVersion(2))]
        let crate = try loader.load(versions[0])
        let stub = try crate.stub(ofFunction: try #require(crate.functionIndex(named: "square_plus_one")))
        let handle = try #require(dlopen(library, RTLD_NOW))
        defer { dlclose(handle) }
        typealias Start = @convention(c) (UnsafeRawPointer, Int32) -> Int32
        typealias Count = @convention(c) () -> Int
        let start = unsafeBitCast(try #require(dlsym(handle, "workers_start")), to: Start.self)
        let calls = unsafeBitCast(try #require(dlsym(handle, "workers_calls")), to: Count.self)
        let stop = unsafeBitCast(try #require(dlsym(handle, "workers_stop")), to: Count.self)
        let baseline = loader.heapUsage
        let stopsBefore = loader.statistics.threadsStopped
        #expect(start(stub, 4) == 0)
        var failures: [String] = []
        for cycle in 1...2000 {
            do {
                try loader.reload(crate, with: versions[cycle % 2])
            } catch {
                failures.append("\(error)")
            }
            if cycle % 5 == 0 { loader.requestCompaction() }
        }
        let callsDuring = calls()
        let errors = stop()
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(errors == 0, "wrong results")
        #expect(callsDuring > 2000)
        #expect(crate.version == 2001)
        // The library's four threads were stopped at (nearly) every reload and compaction.
        #expect(loader.statistics.threadsStopped - stopsBefore >= 4 * 2000)
        #expect(loader.statistics.compactions >= 2000 / 5 - loader.statistics.compactionsDeferred)
        // Back to one version and the same heap once the last old code is collected.
        loader.collectCode()
        loader.compact()
        #expect(crate.retiredVersions == 0)
        let after = loader.heapUsage
        #expect(after.code == baseline.code && after.data == baseline.data && after.fixed == baseline.fixed,
                "\(after) vs \(baseline)")
    }
}
