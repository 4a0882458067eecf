// A collection runs while other threads are stopped, so between the world's
// stop and its resume it must not call malloc or free (a stopped thread may
// hold malloc's lock). The test's world turns the malloc guard on when it
// stops and off when it resumes, around collections of every kind of object
// and root, with the verifier running inside the stop as in the stress mode.

import CKilnMallocGuard
import KilnManagedHeap
import Testing

/// A world that forbids allocation while it is stopped.
final class GuardedWorld: HeapWorld {
    let inner = TestWorld()

    func stopForCollection() -> Bool {
        guard inner.stopForCollection() else { return false }
        kiln_malloc_guard_forbid(1)
        return true
    }

    func visitRoots(_ visitor: borrowing RootVisitor) { inner.visitRoots(visitor) }
    func visitCode(_ slot: UnsafeMutablePointer<UInt64>) { inner.visitCode(slot) }

    func resumeAfterCollection() {
        kiln_malloc_guard_forbid(0)
        inner.resumeAfterCollection()
    }
}

@Suite struct StoppedWorldTests {
    @Test func theGuardCountsAllocations() {
        let before = kiln_malloc_guard_violations()
        kiln_malloc_guard_forbid(1)
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        pointer.deallocate()
        kiln_malloc_guard_forbid(0)
        #expect(kiln_malloc_guard_violations() - before == 2)
    }

    @Test func collectionsAllocateNothingWhileTheWorldIsStopped() throws {
        let heap = try makeHeap(collectEvery: 7, largeObjectBytes: 4096)
        let world = GuardedWorld()
        heap.world = world
        let mutator = try Mutator(heap: heap)
        let before = kiln_malloc_guard_violations()
        try mutator.withHandleScope { scope in
            var globals: [GlobalHandle] = []
            for round in 0..<50 {
                let list = try makeList(mutator, length: 20)
                let large = try mutator.allocate(fields: 1000)
                try mutator.setField(0, of: large, to: list.value)
                _ = world.inner.addRoot(large)
                let closure = try scope.handle(try mutator.allocateClosure(fields: 2, code: 0x1000 + UInt64(round)))
                let bytes = try mutator.allocate(bytes: 9)
                try mutator.setField(1, of: closure.value, to: bytes)
                globals.append(heap.makeGlobalHandle(try closure.value))
                _ = try scope.handle(try mutator.allocate(bytes: 10_000))
                if round % 10 == 0 { try heap.collect() }
            }
            try heap.collect()
            #expect(heap.statistics.fullCollections > 100)
            #expect(world.inner.codeSlotCount == 50)
            for global in globals { try heap.freeGlobalHandle(global) }
        }
        #expect(kiln_malloc_guard_violations() == before)
    }
}
