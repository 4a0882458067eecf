// Checked access to objects: the checked mode of `rload`, `rstore`,
// `rloadb`, `rstoreb` and `rlen`.
//
// A front end's bug (field 10 of a 3-field object, a byte of a tagged object,
// a field of an integer) must be a clear error in the checked mode, not a
// read of whatever lies there. The check: the value is a reference; its
// address is a word in a committed part of one of the heap's spaces (so
// reading the header cannot fault); the header is one a live object may
// have; the access fits the object's kind (fields of tagged objects, bytes
// of raw ones, never field 0 of a closure, which holds code); the index is
// below the count. The answer is the address of the field or byte (the
// header's for `.length`), or the `HeapError` saying which check failed with
// the numbers that make the message.
//
// The spaces' bounds are read without the lock: they change only during a
// collection (every other thread stopped) or right after one, and a check
// racing with that can only refuse a reference, not let a bad one through.

/// What a checked access reads or writes.
public enum ObjectAccess: UInt32, Sendable {
    /// A tagged field (`rload`, `rstore`).
    case field = 0
    /// A byte of a raw object (`rloadb`, `rstoreb`).
    case byte = 1
    /// The header (`rlen`): any object.
    case length = 2
}

extension ManagedHeap {
    /// The address of field or byte `index` of `object` (the header's for `.length`), after
    /// every check of the file comment; the failed check as a `HeapError`.
    public func checkedAccess(_ object: Value, index: Int, _ access: ObjectAccess) throws(HeapError) -> UnsafeMutableRawPointer {
        guard object.isReference else {
            var failure = HeapError(.notAReference)
            failure.value = object.bits
            throw failure
        }
        let address = object.unsafeObjectAddress
        guard address % 8 == 0, isCommittedObjectAddress(address) else {
            var failure = HeapError(.invalidReference)
            failure.value = object.bits
            throw failure
        }
        let header = ObjectHeader(bits: UnsafeMutablePointer<UInt64>(bitPattern: address)!.pointee)
        var failure = HeapError(.none)
        failure.value = object.bits
        failure.header = header.bits
        failure.index = index
        if header.problem != nil {
            failure.kind = .invalidReference
            throw failure
        }
        switch access {
        case .length:
            return UnsafeMutableRawPointer(bitPattern: address)!
        case .field:
            if header.isRaw { failure.kind = .wrongKind; throw failure }
            if header.hasCode && index == 0 { failure.kind = .codeField; throw failure }
            if index < 0 || index >= header.count { failure.kind = .indexOutOfBounds; throw failure }
            return UnsafeMutableRawPointer(bitPattern: address + 8 + UInt(index) * 8)!
        case .byte:
            if !header.isRaw { failure.kind = .wrongKind; throw failure }
            if index < 0 || index >= header.count { failure.kind = .indexOutOfBounds; throw failure }
            return UnsafeMutableRawPointer(bitPattern: address + 8 + UInt(index))!
        }
    }

    /// Whether a header at `address` lies in committed memory of a space: below the top of the
    /// old space or the nursery, or a large object's first page.
    func isCommittedObjectAddress(_ address: UInt) -> Bool {
        (address >= old.base && address < old.top) || (address >= nursery.base && address < nursery.top)
            || large.isObject(at: address)
    }
}
