// The checked mode of object access: every front-end bug it is meant to catch
// is an error naming the numbers, through Swift and through the C entry.

import KilnManagedHeap
import Testing

@Suite struct ObjectAccessTests {
    @Test func eachBadAccessIsNamed() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        let object = try mutator.allocate(fields: 3)
        let text = try mutator.allocate(bytes: 4)
        let closure = try mutator.allocateClosure(fields: 2, code: 0x1000)
        func error(_ body: () throws -> Void) -> HeapError? {
            do { try body() } catch { return error as? HeapError }
            return nil
        }
        let outOfBounds = error { _ = try mutator.field(10, of: object) }
        #expect(outOfBounds?.kind == .indexOutOfBounds)
        #expect(outOfBounds?.description == "field 10 of an object of 3 fields")
        #expect(error { _ = try mutator.field(-1, of: object) }?.kind == .indexOutOfBounds)
        #expect(error { try mutator.setField(3, of: object, to: .zero) }?.kind == .indexOutOfBounds)
        #expect(error { _ = try mutator.byte(4, of: text) }?.description == "byte 4 of an object of 4 bytes")
        #expect(error { _ = try mutator.byte(0, of: object) }?.description == "byte access to a tagged object of 3 fields")
        #expect(error { _ = try mutator.field(0, of: text) }?.description == "field access to a raw object of 4 bytes")
        #expect(error { try mutator.setField(0, of: closure, to: .zero) }?.kind == .codeField)
        #expect(try mutator.field(1, of: closure) == .zero)
        #expect(error { _ = try mutator.field(0, of: Value(integer: 5)) }?.description == "not a reference: the integer 5")
        #expect(error { _ = try mutator.count(of: Value(bits: 0x7001)) }?.kind == .invalidReference)
        // A reference the collector left behind leads into the emptied space: refused, not read.
        try heap.collect()
        #expect(error { _ = try mutator.count(of: object) }?.kind == .invalidReference)
    }

    @Test func theCEntryAnswersAnAddressOrZero() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        let record = UnsafeMutableRawPointer(mutator.record)
        let object = try mutator.allocate(fields: 3)
        let text = try mutator.allocate(bytes: 4)
        let field = HeapEntries.checkedAccess(record, object.bits, 2, ObjectAccess.field.rawValue)
        #expect(field == object.unsafeObjectAddress + 24)
        #expect(HeapEntries.checkedAccess(record, text.bits, 3, ObjectAccess.byte.rawValue) == text.unsafeObjectAddress + 11)
        #expect(HeapEntries.checkedAccess(record, text.bits, 0, ObjectAccess.length.rawValue) == text.unsafeObjectAddress)
        #expect(HeapEntries.checkedAccess(record, object.bits, 3, ObjectAccess.field.rawValue) == 0)
        let failure = mutator.record.pointee.error
        #expect(failure.kind == .indexOutOfBounds && failure.index == 3 && failure.value == object.bits)
        #expect(ObjectHeader(bits: failure.header).count == 3)
        #expect(HeapEntries.checkedAccess(record, object.bits, 0, 7) == 0)
        #expect(HeapEntries.checkedAccess(nil, object.bits, 0, 0) == 0)
    }
}
