// Helpers shared by the managed heap's tests: making a heap, a world with
// roots of its own, and building object graphs through the Swift API.
//
// `makeHeap` is the one place tests choose a configuration; every heap it
// makes verifies itself after each collection unless asked not to, so every
// test that collects also checks the heap it leaves.

import KilnManagedHeap
import Testing

/// A heap for a test: 64 MiB limit, verified after each collection.
func makeHeap(limit: Int = 64 << 20, initialBytes: Int = 1 << 20, collectEvery: Int = 0, verifies: Bool = true,
              largeObjectBytes: Int = 32 << 10, handleCapacity: Int = 1 << 16) throws -> ManagedHeap {
    var configuration = HeapConfiguration(limit: limit, initialBytes: initialBytes, largeObjectBytes: largeObjectBytes,
                                          collectEvery: collectEvery, verifiesEachCollection: verifies,
                                          handleCapacity: handleCapacity)
    configuration.verifiesEachCollection = verifies
    return try ManagedHeap(configuration: configuration)
}

/// A world with root slots of its own (like a loader's stack slots and crate data): it can refuse
/// to stop, counts stops and resumes, and keeps the code slots a full collection reports.
final class TestWorld: HeapWorld {
    let roots: UnsafeMutablePointer<UInt64>
    let capacity: Int
    var rootCount = 0
    var refusesToStop = false
    var stops = 0
    var resumes = 0
    let codeSlots: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>?>
    var codeSlotCount = 0

    init(capacity: Int = 1024) {
        self.capacity = capacity
        roots = .allocate(capacity: capacity)
        roots.initialize(repeating: 0, count: capacity)
        codeSlots = .allocate(capacity: capacity)
    }

    deinit {
        roots.deallocate()
        codeSlots.deallocate()
    }

    /// Adds a root slot holding `value`; returns its index.
    func addRoot(_ value: Value) -> Int {
        roots[rootCount] = value.bits
        rootCount += 1
        return rootCount - 1
    }

    func root(_ index: Int) -> Value { Value(bits: roots[index]) }

    func stopForCollection() -> Bool {
        if refusesToStop { return false }
        stops += 1
        codeSlotCount = 0
        return true
    }

    func visitRoots(_ visitor: borrowing RootVisitor) {
        visitor.visit(roots, count: rootCount)
    }

    func visitCode(_ slot: UnsafeMutablePointer<UInt64>) {
        if codeSlotCount < capacity {
            codeSlots[codeSlotCount] = slot
            codeSlotCount += 1
        }
    }

    func resumeAfterCollection() { resumes += 1 }
}

/// A list of `length` cells `[value i, next]` built front to back, the head in a new handle of the
/// current scope. Cell i holds the integer `i`.
func makeList(_ mutator: borrowing Mutator, length: Int) throws -> Handle {
    let head = try mutator.handle(.zero)
    for index in (0..<length).reversed() {
        let cell = try mutator.allocate(fields: 2)
        mutator.unsafeSetField(0, of: cell, to: Value(integer: index))
        mutator.unsafeSetField(1, of: cell, to: head.unsafeValue)
        try head.set(cell)
    }
    return head
}

/// Checks that the list at `head` holds 0 ..< `length` in order and ends with the integer 0.
func checkList(_ mutator: borrowing Mutator, _ head: Value, length: Int) throws {
    var cell = head
    for index in 0..<length {
        #expect(try mutator.field(0, of: cell) == Value(integer: index))
        cell = try mutator.field(1, of: cell)
    }
    #expect(cell == .zero)
}

/// Expects `body` to throw a `HeapError` of `kind`.
func expectError<Result>(_ kind: HeapError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () throws -> Result) {
    do {
        _ = try body()
        Issue.record("expected a \(kind) error", sourceLocation: sourceLocation)
    } catch let error as HeapError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a HeapError, got \(error)", sourceLocation: sourceLocation)
    }
}
