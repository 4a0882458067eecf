// The slow path as generated code calls it, large objects, the limit and
// out-of-memory as an error value, and the stress mode.

import KilnManagedHeap
import Testing

@Suite struct AllocationTests {
    @Test func theSlowPathAllocatesWhatTheHeaderSays() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        let record = UnsafeMutableRawPointer(mutator.record)
        let tagged = HeapEntries.allocateSlow(record, ObjectHeader.tagged(fields: 5).bits)
        #expect(tagged & 7 == 1)
        #expect(try mutator.count(of: Value(bits: tagged)) == 5)
        let raw = HeapEntries.allocateSlow(record, ObjectHeader.raw(bytes: 3).bits)
        #expect(try mutator.isRaw(Value(bits: raw)) && mutator.count(of: Value(bits: raw)) == 3)
        // The slow path's object and the next inline one are neighbours in the same buffer.
        #expect(mutator.record.pointee.cursor == Value(bits: raw).unsafeObjectAddress + 16)
        let large = HeapEntries.allocateSlow(record, ObjectHeader.tagged(fields: 10_000).bits)
        #expect(try mutator.count(of: Value(bits: large)) == 10_000)
        #expect(heap.statistics.largeObjectsAllocated == 1)
    }

    @Test func badHeadersAndRecordsAreErrorsNotCrashes() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        let record = UnsafeMutableRawPointer(mutator.record)
        for bad in [ObjectHeader.forwarded(to: 0x1000).bits, 1 << 50, ObjectHeader.closure(fields: 0).bits,
                    ObjectHeader.rawBit | ObjectHeader.codeBit | 1, ObjectHeader.markBit | 2] {
            #expect(HeapEntries.allocateSlow(record, bad) == 0)
            #expect(mutator.record.pointee.error.kind == .invalidHeader)
            #expect(mutator.record.pointee.error.requested == bad)
        }
        #expect(HeapEntries.allocateSlow(nil, 1) == 0)
        expectError(.objectTooLarge) { try mutator.allocate(fields: -1) }
        expectError(.objectTooLarge) { try mutator.allocate(bytes: Int.max) }
    }

    @Test func outOfMemoryIsAnErrorValueAndTheHeapLivesOn() throws {
        let heap = try makeHeap(limit: 4 << 20, initialBytes: 64 << 10)
        let mutator = try Mutator(heap: heap)
        let scope = try mutator.openHandleScope()
        let head = try mutator.handle(.zero)
        var cells = 0
        var failure: HeapError?
        while failure == nil {
            do {
                let cell = try mutator.allocate(fields: 3)
                mutator.unsafeSetField(0, of: cell, to: head.unsafeValue)
                try head.set(cell)
                cells += 1
            } catch {
                failure = error
            }
        }
        let error = try #require(failure)
        #expect(error.kind == .outOfMemory)
        #expect(error.requested == 32 && error.limit == 4 << 20)
        #expect(error.liveBytes > 3 << 20 && error.liveBytes <= 4 << 20)
        #expect(error.description.hasPrefix("out of managed memory: 32 bytes asked for"))
        #expect(cells * 32 > 3 << 20)
        // Let go of the list: the heap collects it and allocates again.
        try mutator.closeHandleScope(scope)
        try heap.collect()
        #expect(heap.statistics.liveBytesAfterFullCollection == 0)
        _ = try mutator.allocate(fields: 3)
        // A large object beyond the limit fails the same way, through the C entry.
        let record = UnsafeMutableRawPointer(mutator.record)
        #expect(HeapEntries.allocateSlow(record, ObjectHeader.raw(bytes: 5 << 20).bits) == 0)
        #expect(mutator.record.pointee.error.kind == .outOfMemory)
    }

    @Test func largeObjectsAndTheOldSpaceShareTheLimit() throws {
        let heap = try makeHeap(limit: 8 << 20, initialBytes: 1 << 20, largeObjectBytes: 4096)
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { _ in
            // Nearly the whole limit in large objects, while small objects come and go.
            for index in 0..<6 {
                _ = try mutator.handle(try mutator.allocate(bytes: 1 << 20))
                for _ in 0..<1000 { _ = try mutator.allocate(fields: 10) }
                #expect(heap.statistics.largeBytes == (index + 1) * ((1 << 20) + 4096))
            }
            expectError(.outOfMemory) { try mutator.allocate(bytes: 2 << 20) }
        }
    }

    @Test func theStressModeCollectsAtEveryAllocation() throws {
        let heap = try makeHeap(collectEvery: 1)
        let mutator = try Mutator(heap: heap)
        #expect(mutator.record.pointee.limit == 0)
        try mutator.withHandleScope { _ in
            let head = try makeList(mutator, length: 200)
            #expect(heap.statistics.fullCollections == 200)
            try checkList(mutator, try head.value, length: 200)
            // The inline path never succeeds: the limit stays 0.
            #expect(mutator.record.pointee.limit == 0)
        }
        let everyTenth = try makeHeap(collectEvery: 10)
        let other = try Mutator(heap: everyTenth)
        try other.withHandleScope { _ in
            let head = try makeList(other, length: 200)
            #expect(everyTenth.statistics.fullCollections == 20)
            try checkList(other, try head.value, length: 200)
        }
    }

    @Test func theStressModeComesFromTheEnvironmentValue() {
        var configuration = HeapConfiguration()
        configuration.applyStress("compact")
        #expect(configuration.collectEvery == 0 && !configuration.verifiesEachCollection)
        configuration.applyStress("collect,compact")
        #expect(configuration.collectEvery == 1 && configuration.verifiesEachCollection)
        configuration.applyStress("compact:3,collect:25")
        #expect(configuration.collectEvery == 25)
        #expect(HeapConfiguration.bytes(from: "512M") == 512 << 20)
        #expect(HeapConfiguration.bytes(from: "2g") == 2 << 30)
        #expect(HeapConfiguration.bytes(from: "4096") == 4096)
        #expect(HeapConfiguration.bytes(from: "-1M") == nil && HeapConfiguration.bytes(from: "M") == nil)
        #expect(HeapConfiguration.bytes(from: "99999999999999G") == nil)
        #expect(HeapConfiguration(limit: 1000).problem != nil)
    }
}
