// What can go wrong in the heap, as a value.
//
// The heap never ends the process on its own account: a failed allocation, a
// checked access that finds the wrong object, a handle used after its scope
// ended, all become a `HeapError`. Swift callers get it thrown; generated code
// and C callers get a sentinel (0) from the runtime entry and find the error
// in their allocation record (`AllocationRecord.error`), so that whoever knows
// the site (the loader, from the return address) can put it in the message.
// The value holds plain numbers only: it is written while other threads may
// be stopped, so building text waits for `description`.

/// A failure of the managed heap; see the file comment. A plain value.
public struct HeapError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: UInt32, Sendable {
        /// No error (an allocation record that has not failed).
        case none = 0
        /// The heap cannot hold the object within its limit, even after a full collection.
        case outOfMemory
        /// The object asked for has more fields or bytes than any object may have.
        case objectTooLarge
        /// The header word asked for is not one an allocation may make.
        case invalidHeader
        /// A collection was needed but not every thread that may hold references stopped.
        case threadsNotStopped
        /// A checked access found an integer where a reference was expected.
        case notAReference
        /// A checked access found a reference that does not lead to a valid object.
        case invalidReference
        /// A checked field or byte access past the end of its object.
        case indexOutOfBounds
        /// A checked field access to a raw object, or byte access to a tagged one.
        case wrongKind
        /// A checked access to field 0 of a closure, which holds code, not a tagged word.
        case codeField
        /// The verifier found a reference that does not lead to a valid object.
        case heapCorrupted
        /// A handle used after its scope closed, or a scope closed out of order.
        case staleHandle
        /// More handles than the handle stack holds.
        case tooManyHandles
        /// An allocation record that is not attached to this heap.
        case invalidRecord
        /// The system refused memory the heap asked for (mmap or mprotect failed).
        case systemRefused
        /// A heap configuration with a problem (`HeapConfiguration.problem` says which).
        case invalidConfiguration
    }

    /// The kind of failure.
    public var kind: Kind
    /// Bytes asked for (allocations), or the header word asked for (`invalidHeader`).
    public var requested: UInt64 = 0
    /// The value accessed (checked accesses), or the bad word found (`heapCorrupted`).
    public var value: UInt64 = 0
    /// The field or byte index (checked accesses).
    public var index: Int = 0
    /// The header of the object accessed, or the count of fields or bytes it holds.
    public var header: UInt64 = 0
    /// Where the bad word was found (`heapCorrupted`).
    public var location: UInt = 0
    /// The heap's limit in bytes, and the bytes live after the last collection.
    public var limit: Int = 0
    public var liveBytes: Int = 0

    public init(_ kind: Kind) { self.kind = kind }

    public static let none = HeapError(.none)

    public var description: String {
        let object = ObjectHeader(bits: header)
        switch kind {
        case .none: return "no error"
        case .outOfMemory:
            return "out of managed memory: \(requested) bytes asked for, \(liveBytes) bytes live of a \(limit)-byte heap limit"
        case .objectTooLarge: return "object too large: \(requested) fields or bytes asked for"
        case .invalidHeader: return "no object may have the header 0x\(String(requested, radix: 16))"
        case .threadsNotStopped: return "a collection was needed but not every thread could be stopped"
        case .notAReference: return "not a reference: the integer \(Value(bits: value).integer)"
        case .invalidReference: return "0x\(String(value, radix: 16)) does not refer to a managed object"
        case .indexOutOfBounds:
            let unit = object.isRaw ? "byte" : "field"
            return "\(unit) \(index) of an object of \(object.count) \(unit)s"
        case .wrongKind:
            return object.isRaw ? "field access to a raw object of \(object.count) bytes"
                : "byte access to a tagged object of \(object.count) fields"
        case .codeField: return "field 0 of a closure holds its code, not a value"
        case .heapCorrupted:
            return "heap corrupted: the word at 0x\(String(location, radix: 16)) holds 0x\(String(value, radix: 16)), which is not a reference to an object"
        case .staleHandle: return "a handle used after its scope closed, or scopes closed out of order"
        case .tooManyHandles: return "too many handles open at once"
        case .invalidRecord: return "not an allocation record of this heap"
        case .systemRefused: return "the system refused memory to the heap (\(requested) bytes)"
        case .invalidConfiguration: return "invalid heap configuration"
        }
    }
}
