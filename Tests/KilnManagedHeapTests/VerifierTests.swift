// The verifier names what is wrong: references corrupted on purpose (into the
// middle of an object, into the emptied semispace, outside the heap), a bad
// header, and a corrupt root; and the stress mode turns a violation into an
// allocation's error.

import KilnManagedHeap
import Testing

@Suite struct VerifierTests {
    @Test func aCleanHeapVerifies() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { _ in
            _ = try makeList(mutator, length: 1000)
            let report = try heap.verify()
            #expect(report.isClean && report.objects == 1000 && report.references == 1000)
        }
    }

    @Test func aReferenceIntoTheMiddleOfAnObjectIsNamed() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            let holder = try mutator.allocate(fields: 3)
            let target = try mutator.allocate(fields: 4)
            _ = try scope.handle(holder)
            _ = try scope.handle(target)
            let inside = Value(bits: target.bits + 16)
            mutator.unsafeSetField(2, of: holder, to: inside)
            let report = try heap.verify()
            #expect(report.violationCount == 1)
            let violation = try #require(report.violations.first)
            #expect(violation.kind == .danglingReference)
            #expect(violation.object == holder.unsafeObjectAddress && violation.field == 2)
            #expect(violation.value == inside.bits)
            #expect(violation.location == holder.unsafeObjectAddress + 24)
            #expect(violation.description.hasPrefix("field 2 of the object at 0x"))
        }
    }

    @Test func aStaleReferenceIntoTheEmptiedSpaceIsNamed() throws {
        let heap = try makeHeap()
        let world = TestWorld()
        heap.world = world
        let mutator = try Mutator(heap: heap)
        let object = try mutator.allocate(fields: 1)
        _ = world.addRoot(object)
        try heap.collect()
        // A root the world forgot to report keeps the old address; put it back in view.
        _ = world.addRoot(object)
        let report = try heap.verify()
        #expect(report.violationCount == 1)
        #expect(report.violations.first?.object == 0)
        #expect(report.violations.first?.location == UInt(bitPattern: world.roots + 1))
        #expect(report.violations.first?.description.hasPrefix("the root slot at 0x") == true)
    }

    @Test func referencesOutsideTheHeapAndBadHeadersAreNamed() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            let holder = try mutator.allocate(fields: 1)
            _ = try scope.handle(holder)
            mutator.unsafeSetField(0, of: holder, to: Value(bits: 0x1001))
            let broken = try mutator.allocate(fields: 2)
            _ = try scope.handle(broken)
            UnsafeMutablePointer<UInt64>(bitPattern: broken.unsafeObjectAddress)!.pointee |= 1 << 55
            let report = try heap.verify()
            #expect(report.violations.contains { $0.kind == .danglingReference && $0.value == 0x1001 })
            #expect(report.violations.contains { $0.kind == .badHeader && $0.location == broken.unsafeObjectAddress })
            // The walk stops at a bad header (nothing after it can be parsed), so the handle to it
            // is reported as well.
            #expect(report.violations.contains { $0.kind == .danglingReference && $0.value == broken.bits })
        }
    }

    @Test func theStressModeFailsTheAllocationThatFindsCorruption() throws {
        let heap = try makeHeap(collectEvery: 1)
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            _ = try scope.handle(try mutator.allocate(fields: 1))
            // A root outside every space: the collector leaves it alone, the verifier names it.
            let bad = Value(bits: 0x1001)
            _ = try scope.handle(bad)
            do {
                _ = try mutator.allocate(fields: 1)
                Issue.record("the allocation should have failed")
            } catch let error as HeapError {
                #expect(error.kind == .heapCorrupted)
                #expect(error.value == bad.bits)
                #expect(error.description.hasPrefix("heap corrupted: the word at 0x"))
            }
        }
    }
}
