// The heap's figures count what happened: bytes allocated (exactly, unused
// buffer ends excluded), collections, bytes copied, live bytes, pauses.

import KilnManagedHeap
import Testing

@Suite struct StatisticsTests {
    @Test func theFiguresCountWhatHappened() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            for _ in 0..<1000 { _ = try mutator.allocate(fields: 2) }
            _ = try scope.handle(try mutator.allocate(bytes: 100))
            try heap.collect()
            var figures = heap.statistics
            #expect(figures.allocatedBytes == 1000 * 24 + 112)
            #expect(figures.fullCollections == 1)
            #expect(figures.copiedBytes == 112 && figures.liveBytesAfterFullCollection == 112)
            #expect(figures.oldBytes == 112)
            #expect(figures.limit == 64 << 20)
            #expect(figures.oldCapacity == 1 << 20)  // twice the live bytes is less than the initial capacity
            try heap.collect()
            figures = heap.statistics
            #expect(figures.fullCollections == 2 && figures.copiedBytes == 224)
            #expect(figures.pauses.count == 2)
            #expect(figures.pauses.longestNanoseconds > 0)
            #expect(figures.pauses.percentile(0.5) <= figures.pauses.percentile(0.99))
            #expect(figures.pauses.percentile(0.99) <= figures.pauses.longestNanoseconds)
            #expect(figures.pauses.totalNanoseconds >= figures.pauses.longestNanoseconds)
        }
    }

    @Test func theOldSpaceGrowsWithWhatLives() throws {
        let heap = try makeHeap(initialBytes: 256 << 10)
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { _ in
            _ = try makeList(mutator, length: 100_000)  // 2.4 MB live
            try heap.collect()
            let figures = heap.statistics
            #expect(figures.liveBytesAfterFullCollection == 2_400_000)
            #expect(figures.oldCapacity >= 4_800_000 && figures.oldCapacity < 4_800_000 + 4096)
        }
        try heap.collect()
        #expect(heap.statistics.oldCapacity == 256 << 10)
    }

    @Test func pausePercentilesAreExactToABucket() {
        var pauses = PauseHistogram()
        for microseconds in 1...100 { pauses.record(UInt64(microseconds) * 1000) }
        #expect(pauses.count == 100 && pauses.longestNanoseconds == 100_000)
        let median = Double(pauses.percentile(0.5))
        #expect(median >= 50_000 && median <= 50_000 * 1.07)
        let p99 = Double(pauses.percentile(0.99))
        #expect(p99 >= 99_000 && p99 <= 100_000)
        #expect(pauses.percentile(1) == 100_000)
        #expect(PauseHistogram().percentile(0.5) == 0)
    }
}
