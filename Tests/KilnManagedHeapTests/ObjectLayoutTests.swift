// The object model: tagged words, header bits, sizes, byte strings without a
// terminator, and the allocation record's layout as generated code reads it.

import KilnManagedHeap
import Testing

@Suite struct ObjectLayoutTests {
    @Test func integersAreShiftedAndReferencesHaveTheLowBit() {
        #expect(Value(integer: 21).bits == 42)
        #expect(Value(integer: -3).integer == -3)
        #expect(Value(integer: -3).bits == UInt64(bitPattern: -6))
        #expect(!Value(integer: 7).isReference)
        #expect(Value.zero.bits == 0 && !Value.zero.isReference)
        // rtag loses the top bit: the largest integers wrap.
        #expect(Value(integer: Int.max).integer == -1)
        let reference = Value(unsafeObjectAt: 0x1000)
        #expect(reference.isReference && reference.bits == 0x1001 && reference.unsafeObjectAddress == 0x1000)
    }

    @Test func headerBitsFollowTheDesignNote() {
        #expect(ObjectHeader.rawBit == 1 << 63 && ObjectHeader.forwardedBit == 1 << 62)
        #expect(ObjectHeader.tagged(fields: 3).bits == 3)
        #expect(ObjectHeader.raw(bytes: 5).bits == UInt64(1) << 63 | 5)
        #expect(ObjectHeader.closure(fields: 2).bits == UInt64(1) << 61 | 2)
        let forwarded = ObjectHeader.forwarded(to: 0x7F00_1234_5678)
        #expect(forwarded.isForwarded && forwarded.forwardingAddress == 0x7F00_1234_5678)
        #expect(forwarded.problem != nil)
        #expect(ObjectHeader(bits: 1 << 50).problem == "reserved header bits set")
        #expect(ObjectHeader(bits: ObjectHeader.rawBit | ObjectHeader.codeBit | 4).problem == "raw object with a code field")
        #expect(ObjectHeader.closure(fields: 0).problem == "closure without a code field")
        #expect(ObjectHeader.tagged(fields: 0).problem == nil)
    }

    @Test func sizesAreWholeWordsWithTheHeader() {
        #expect(ObjectHeader.tagged(fields: 0).objectBytes == 8)
        #expect(ObjectHeader.tagged(fields: 3).objectBytes == 32)
        #expect(ObjectHeader.raw(bytes: 0).objectBytes == 8)
        #expect(ObjectHeader.raw(bytes: 1).objectBytes == 16)
        #expect(ObjectHeader.raw(bytes: 8).objectBytes == 16)
        #expect(ObjectHeader.raw(bytes: 9).objectBytes == 24)
        for count in 0..<40 {
            #expect(ObjectHeader.objectBytes(count: count, raw: true) == ObjectHeader.raw(bytes: count).objectBytes)
            #expect(ObjectHeader.objectBytes(count: count, raw: false) == ObjectHeader.tagged(fields: count).objectBytes)
        }
    }

    @Test func objectsAreZeroAndByteStringsHaveNoTerminator() throws {
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        let text = try mutator.allocate(bytes: 5)
        let header = UnsafePointer<UInt64>(bitPattern: text.unsafeObjectAddress)!
        #expect(header.pointee == ObjectHeader.raw(bytes: 5).bits)
        #expect(try mutator.count(of: text) == 5)
        for (index, byte) in "hello".utf8.enumerated() { try mutator.setByte(index, of: text, to: byte) }
        #expect(try mutator.bytes(of: text) == Array("hello".utf8))
        // The padding to the word is zero: no terminator was written, and none is counted.
        #expect(try mutator.byte(4, of: text) == UInt8(ascii: "o"))
        expectError(.indexOutOfBounds) { try mutator.byte(5, of: text) }
        let fields = try mutator.allocate(fields: 4)
        for index in 0..<4 { #expect(try mutator.field(index, of: fields) == .zero) }
        // Consecutive objects are packed: the next header follows the payload.
        let next = try mutator.allocate(fields: 0)
        #expect(next.unsafeObjectAddress == fields.unsafeObjectAddress + 40)
    }

    @Test func theAllocationRecordIsReadThroughFixedOffsets() throws {
        #expect(AllocationRecord.cursorOffset == 0)
        #expect(AllocationRecord.limitOffset == 8)
        #expect(AllocationRecord.clientOffset == 16)
        let heap = try makeHeap()
        let mutator = try Mutator(heap: heap)
        _ = try mutator.allocate(fields: 1)  // takes a buffer
        let raw = UnsafeMutableRawPointer(mutator.record)
        let cursor = raw.load(fromByteOffset: AllocationRecord.cursorOffset, as: UInt.self)
        let limit = raw.load(fromByteOffset: AllocationRecord.limitOffset, as: UInt.self)
        #expect(cursor == mutator.record.pointee.cursor && limit == mutator.record.pointee.limit)
        #expect(limit - cursor >= 1024 && limit - cursor < 32 << 10)
        // Allocate as generated code does: bump through the offsets, write the header.
        raw.storeBytes(of: cursor + 24, toByteOffset: AllocationRecord.cursorOffset, as: UInt.self)
        UnsafeMutablePointer<UInt64>(bitPattern: cursor)!.pointee = ObjectHeader.tagged(fields: 2).bits
        let object = Value(unsafeObjectAt: cursor)
        #expect(try mutator.field(1, of: object) == .zero)
        let next = try mutator.allocate(fields: 0)
        #expect(next.unsafeObjectAddress == cursor + 24)
        // The object made by hand is an object like any other: a collection keeps it.
        try mutator.withHandleScope { scope in
            let handle = try scope.handle(object)
            try mutator.setField(0, of: object, to: Value(integer: 99))
            try heap.collect()
            #expect(try mutator.field(0, of: handle.value) == Value(integer: 99))
            #expect(try handle.value != object)
        }
        raw.storeBytes(of: 77, toByteOffset: AllocationRecord.clientOffset, as: UInt.self)
        #expect(mutator.record.pointee.client == 77)
    }
}
