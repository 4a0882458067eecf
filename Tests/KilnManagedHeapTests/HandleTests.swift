// Handles: scopes nest and pop, stale handles and out-of-order closing are
// refused (never read), the stack has a bound, and the C entries behave like
// the Swift API.

import KilnManagedHeap
import Testing

@Suite struct HandleTests {
    @Test func scopesPopTheirHandles() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        var escaped: Handle?
        try mutator.withHandleScope { outer in
            let kept = try outer.handle(Value(integer: 1))
            try mutator.withHandleScope { inner in
                escaped = try inner.handle(Value(integer: 2))
                #expect(mutator.openHandles == 4)  // two scope markers, two handles
            }
            #expect(mutator.openHandles == 2)
            #expect(try kept.value == Value(integer: 1))
            expectError(.staleHandle) { try escaped!.value }
            // New handles reuse the popped slots; the old handle still does not read its slot.
            _ = try outer.handle(Value(integer: 4))
            let reused = try outer.handle(Value(integer: 3))
            #expect(reused.token.bits & 0xFFFF_FFFF == escaped!.token.bits & 0xFFFF_FFFF)
            expectError(.staleHandle) { try escaped!.value }
            expectError(.staleHandle) { try escaped!.set(.zero) }
            #expect(try reused.value == Value(integer: 3))
        }
        #expect(mutator.openHandles == 0)
        expectError(.staleHandle) { try mutator.handle(.zero) }
    }

    @Test func scopesCloseInnermostFirst() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        let outer = try mutator.openHandleScope()
        let inner = try mutator.openHandleScope()
        expectError(.staleHandle) { try mutator.closeHandleScope(outer) }
        try mutator.closeHandleScope(inner)
        expectError(.staleHandle) { try mutator.closeHandleScope(inner) }
        try mutator.closeHandleScope(outer)
        #expect(mutator.openHandles == 0)
    }

    @Test func theHandleStackIsBounded() throws {
        let heap = try makeHeap(handleCapacity: 100)
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { _ in
            for index in 0..<99 { _ = try mutator.handle(Value(integer: index)) }
            expectError(.tooManyHandles) { try mutator.handle(.zero) }
            expectError(.tooManyHandles) { try mutator.openHandleScope() }
        }
    }

    @Test func handlesFollowTheirObjectsThroughCollections() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        try mutator.withHandleScope { scope in
            let handles = try (0..<100).map { index in
                let object = try mutator.allocate(fields: 1)
                try mutator.setField(0, of: object, to: Value(integer: index))
                return try scope.handle(object)
            }
            for _ in 0..<3 {
                try heap.collect()
                for (index, handle) in handles.enumerated() {
                    #expect(try mutator.field(0, of: handle.value) == Value(integer: index))
                }
            }
        }
    }

    @Test func theCEntriesKeepHandlesLikeSwift() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        let record = UnsafeMutableRawPointer(mutator.record)
        let open = HeapEntries.openHandleScope, close = HeapEntries.closeHandleScope
        let make = HeapEntries.makeHandle, get = HeapEntries.handleValue, set = HeapEntries.setHandle
        let scope = open(record)
        #expect(scope != 0)
        let object = try mutator.allocate(fields: 1)
        try mutator.setField(0, of: object, to: Value(integer: 8))
        let handle = make(record, object.bits)
        #expect(handle != 0)
        #expect(HeapEntries.collect(record, 1) == 0)
        var value: UInt64 = 0
        #expect(get(record, handle, &value) == 0)
        #expect(value != object.bits)
        #expect(try mutator.field(0, of: Value(bits: value)) == Value(integer: 8))
        #expect(set(record, handle, 6) == 0)
        #expect(get(record, handle, &value) == 0 && value == 6)
        #expect(close(record, scope) == 0)
        let stale = Int32(HeapError.Kind.staleHandle.rawValue)
        #expect(get(record, handle, &value) == stale)
        #expect(mutator.record.pointee.error.kind == .staleHandle)
        #expect(close(record, scope) == stale)
        #expect(make(record, 0) == 0)
        // Anything that is not an attached record is refused, not read as one.
        let invalid = Int32(HeapError.Kind.invalidRecord.rawValue)
        #expect(close(nil, scope) == invalid)
        var notARecord = [UInt64](repeating: 0, count: 64)
        notARecord.withUnsafeMutableBytes { #expect(close($0.baseAddress, scope) == invalid) }
        // Global handles through C.
        let global = HeapEntries.makeGlobalHandle(record, Value(integer: 5).bits)
        #expect(HeapEntries.globalHandleValue(record, global, &value) == 0 && value == Value(integer: 5).bits)
        #expect(HeapEntries.setGlobalHandle(record, global, 2) == 0)
        #expect(HeapEntries.freeGlobalHandle(record, global) == 0)
        #expect(HeapEntries.freeGlobalHandle(record, global) == stale)
        #expect(HeapEntries.globalHandleValue(record, global, nil) == stale)
    }
}
