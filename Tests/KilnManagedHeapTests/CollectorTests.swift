// The copying collector over explicit roots: what survives, where it goes,
// and that shape and contents survive with it.

import KilnManagedHeap
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct CollectorTests {
    @Test func objectsReachableOnlyFromAHandleSurviveAndMove() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            let object = try mutator.allocate(fields: 3)
            try mutator.setField(2, of: object, to: Value(integer: 7))
            let handle = try scope.handle(object)
            try heap.collect()
            let moved = try handle.value
            #expect(moved != object)
            #expect(try mutator.field(2, of: moved) == Value(integer: 7))
            #expect(try mutator.count(of: moved) == 3)
        }
    }

    @Test func unreachableObjectsAreNotCopied() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { _ in
            for _ in 0..<10_000 { _ = try mutator.allocate(fields: 4) }
            let kept = try makeList(mutator, length: 10)
            try heap.collect()
            // Ten cells of three words survive; the 10,000 objects of five words do not.
            #expect(heap.statistics.liveBytesAfterFullCollection == 10 * 24)
            try checkList(mutator, try kept.value, length: 10)
        }
    }

    @Test func cyclesAndSharingKeepTheirShape() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            // a -> b -> c -> a, and d -> b twice.
            let a = try scope.handle(try mutator.allocate(fields: 1))
            let b = try scope.handle(try mutator.allocate(fields: 1))
            let c = try scope.handle(try mutator.allocate(fields: 1))
            let d = try scope.handle(try mutator.allocate(fields: 2))
            try mutator.setField(0, of: a.value, to: b.value)
            try mutator.setField(0, of: b.value, to: c.value)
            try mutator.setField(0, of: c.value, to: a.value)
            try mutator.setField(0, of: d.value, to: b.value)
            try mutator.setField(1, of: d.value, to: b.value)
            let roots = [a, b, c, d]
            let before = try roots.map { try $0.value }
            try heap.collect()
            #expect(Set(try roots.map { try $0.value }).isDisjoint(with: before))
            try heap.collect()
            let after = try roots.map { try $0.value }
            #expect(Set(after).count == 4)
            #expect(try mutator.field(0, of: after[0]) == after[1])
            #expect(try mutator.field(0, of: after[1]) == after[2])
            #expect(try mutator.field(0, of: after[2]) == after[0])
            #expect(try mutator.field(0, of: after[3]) == after[1])
            #expect(try mutator.field(1, of: after[3]) == after[1])
            #expect(heap.statistics.liveBytesAfterFullCollection == 3 * 16 + 24)
        }
    }

    @Test func aMillionCellListIsCopiedWithoutRecursion() throws {
        let heap = try makeHeap(limit: 256 << 20)
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { _ in
            let head = try makeList(mutator, length: 1_000_000)
            try heap.collect()
            try checkList(mutator, try head.value, length: 1_000_000)
            #expect(heap.statistics.liveBytesAfterFullCollection == 24_000_000)
        }
    }

    @Test func rawObjectsAreCopiedByteForByteAndNeverScanned() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            let text = try mutator.allocate(bytes: 17)
            // Bytes that would look like a reference (low bit 1) if the payload were scanned.
            for index in 0..<17 { try mutator.setByte(index, of: text, to: UInt8(index * 15 + 1)) }
            let handle = try scope.handle(text)
            try heap.collect()
            #expect(try mutator.bytes(of: handle.value) == (0..<17).map { UInt8($0 * 15 + 1) })
            #expect(try mutator.isRaw(handle.value))
        }
    }

    @Test func largeObjectsStayWhereTheyAreAndTheirFieldsFollow() throws {
        let heap = try makeHeap(largeObjectBytes: 4096)
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            let big = try mutator.allocate(fields: 1000)
            #expect(heap.statistics.largeObjectsAllocated == 1)
            let small = try mutator.allocate(fields: 1)
            try mutator.setField(0, of: small, to: Value(integer: 5))
            try mutator.setField(999, of: big, to: small)
            let handle = try scope.handle(big)
            try heap.collect()
            #expect(try handle.value == big)
            let moved = try mutator.field(999, of: big)
            #expect(moved != small)
            #expect(try mutator.field(0, of: moved) == Value(integer: 5))
            // A large object reachable only from another object survives too, and cycles between
            // large objects are fine.
            let other = try mutator.allocate(bytes: 100_000)
            try mutator.setByte(99_999, of: other, to: 9)
            try mutator.setField(0, of: try handle.value, to: other)
            let cyclic = try mutator.allocate(fields: 2000)
            try mutator.setField(1, of: try handle.value, to: cyclic)
            try mutator.setField(0, of: cyclic, to: try handle.value)
            try heap.collect()
            #expect(try mutator.field(0, of: big) == other)
            #expect(try mutator.byte(99_999, of: other) == 9)
            #expect(try mutator.field(0, of: cyclic) == big)
        }
    }

    @Test func deadLargeObjectsGiveTheirPagesBack() throws {
        let heap = try makeHeap(largeObjectBytes: 4096)
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            let kept = try scope.handle(try mutator.allocate(bytes: 50_000))
            for _ in 0..<20 { _ = try mutator.allocate(bytes: 50_000) }
            #expect(heap.statistics.largeBytes == 21 * 53_248)
            try heap.collect()
            #expect(heap.statistics.largeBytes == 53_248)
            // Freed runs are reused: twenty more fit where the dead ones were.
            let before = try kept.value
            var highest: UInt = 0
            for _ in 0..<20 { highest = max(highest, try mutator.allocate(bytes: 50_000).unsafeObjectAddress) }
            #expect(highest < before.unsafeObjectAddress + 21 * 53_248)
            #expect(try kept.value == before)
        }
    }

    @Test func theEmptiedSpaceGivesItsPagesBack() throws {
        let heap = try makeHeap(initialBytes: 8 << 20)
        let mutator = try Mutator(heap: heap)
        let first = try mutator.allocate(fields: 1).unsafeObjectAddress
        for _ in 0..<100_000 { _ = try mutator.allocate(fields: 6) }
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let start = UnsafeMutableRawPointer(bitPattern: first & ~(page - 1))!
        func residentPages() -> Int {
            var residency = [UInt8](repeating: 0, count: 1024)
            #expect(mincore(start, 1024 * Int(page), &residency) == 0)
            return residency.filter { $0 & 1 != 0 }.count
        }
        #expect(residentPages() > 1000)  // 5.6 MB of objects were written there
        try heap.collect()
        #expect(residentPages() == 0)
    }

    @Test func aWorldsRootsAreVisitedAndRewritten() throws {
        let heap = try makeHeap()
        let world = TestWorld()
        heap.world = world
        let mutator = try Mutator(heap: heap)
        let object = try mutator.allocate(fields: 2)
        try mutator.setField(1, of: object, to: Value(integer: -4))
        let index = world.addRoot(object)
        _ = world.addRoot(Value(integer: 12))
        try heap.collect()
        #expect(world.stops == 1 && world.resumes == 1)
        #expect(world.root(index) != object)
        #expect(try mutator.field(1, of: world.root(index)) == Value(integer: -4))
        #expect(world.root(1) == Value(integer: 12))
    }

    @Test func aWorldThatCannotStopGetsNoCollection() throws {
        let heap = try makeHeap()
        let world = TestWorld()
        heap.world = world
        let mutator = try Mutator(heap: heap)
        let object = try mutator.allocate(fields: 1)
        _ = world.addRoot(object)
        world.refusesToStop = true
        expectError(.threadsNotStopped) { try heap.collect() }
        #expect(world.root(0) == object)
        #expect(heap.statistics.fullCollections == 0)
    }

    @Test func closuresReportTheirCodeFieldAndKeepIt() throws {
        let heap = try makeHeap()
        let world = TestWorld()
        heap.world = world
        let mutator = try Mutator(heap: heap)
        // An odd code address: were it scanned as a tagged word it would be taken for a reference.
        let code: UInt64 = 0x4000_1235
        let closure = try mutator.allocateClosure(fields: 3, code: code)
        let captured = try mutator.allocate(fields: 1)
        try mutator.setField(1, of: closure, to: captured)
        expectError(.codeField) { try mutator.field(0, of: closure) }
        _ = world.addRoot(closure)
        try heap.collect()
        let moved = world.root(0)
        #expect(world.codeSlotCount == 1)
        #expect(world.codeSlots[0] == UnsafeMutablePointer<UInt64>(bitPattern: moved.unsafeObjectAddress + 8))
        #expect(world.codeSlots[0]!.pointee == code)
        #expect(try mutator.field(1, of: moved) != captured)
        #expect(try mutator.count(of: mutator.field(1, of: moved)) == 1)
    }

    @Test func theGlobalHandlesAreRoots() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        let object = try mutator.allocate(fields: 1)
        try mutator.setField(0, of: object, to: Value(integer: 3))
        let global = heap.makeGlobalHandle(object)
        try heap.collect()
        let moved = try heap.value(of: global)
        #expect(moved != object)
        #expect(try mutator.field(0, of: moved) == Value(integer: 3))
        try heap.freeGlobalHandle(global)
        expectError(.staleHandle) { try heap.value(of: global) }
        try heap.collect()
        #expect(heap.statistics.liveBytesAfterFullCollection == 0)
    }
}
