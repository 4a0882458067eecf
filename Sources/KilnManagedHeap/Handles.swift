// Handles: root slots that Swift and C hosts hold while they work with objects.
//
// A host that keeps a reference across anything that may collect (an
// allocation, a call into generated code) keeps it in a handle. A handle is
// a slot the collector visits as a root and rewrites when the object moves;
// the host reads the current value back through the handle.
//
// Scoped handles live on their thread's handle stack (one per allocation
// record): opening a scope notes the stack's top, closing it pops every
// handle made since. Scopes nest and close innermost first. Each scope gets
// a serial number, and each slot remembers the serial of the scope that made
// it, so a handle carries (slot index, serial) and is checked on every use:
// one used after its scope closed (its slot popped, or reused by a later
// scope) is refused with `HeapError.staleHandle`, never read. The serial
// wraps after 2^31 scopes; a stale handle could then pass the check only if
// its slot were reused by the scope with exactly its serial.
//
// The stack's memory is reserved once per record (untouched pages cost
// nothing) and freed by `ManagedHeap.detach`; the slots do not move, so the
// collector visits `slots[0 ..< top]` without allocating. Global handles,
// for references kept without a scope, are in GlobalHandles.swift.

/// The handle stack of one allocation record. Memory is the heap's (mapped at attach,
/// unmapped at detach); slots never move.
@usableFromInline
struct HandleStack {
    /// Root slots `0 ..< top` are live.
    @usableFromInline let slots: UnsafeMutablePointer<UInt64>
    /// The serial of the scope that made each slot.
    let serials: UnsafeMutablePointer<UInt32>
    let capacity: Int
    var top: Int = 0
    /// The serial of the innermost open scope, 0 when none is open.
    var currentSerial: UInt32 = 0
    /// The last serial given to a scope.
    var lastSerial: UInt32 = 0

    /// Bytes mapped for `capacity` handles.
    static func mappedBytes(capacity: Int) -> Int {
        alignUp(capacity * (MemoryLayout<UInt64>.stride + MemoryLayout<UInt32>.stride), HeapSystem.pageSize)
    }

    /// A stack of `capacity` handles in fresh memory (nothing committed until used).
    static func map(capacity: Int) throws(HeapSystemError) -> HandleStack {
        let memory = try HeapSystem.mapZeroed(mappedBytes(capacity: capacity))
        let slots = memory.bindMemory(to: UInt64.self, capacity: capacity)
        let serials = (memory + capacity * MemoryLayout<UInt64>.stride).bindMemory(to: UInt32.self, capacity: capacity)
        return HandleStack(slots: slots, serials: serials, capacity: capacity)
    }

    func unmap() {
        HeapSystem.unmap(UnsafeMutableRawPointer(slots), Self.mappedBytes(capacity: capacity))
    }
}

/// An open handle scope: a plain token (64 bits for C: the index of the scope's marker slot,
/// then the scope's serial in the high half).
public struct HandleScopeToken: Hashable, Sendable {
    public var bits: UInt64
    public init(bits: UInt64) { self.bits = bits }
    var index: Int { Int(bits & 0xFFFF_FFFF) }
    var serial: UInt32 { UInt32(truncatingIfNeeded: bits >> 32) }
}

/// A scoped handle: a root slot on its thread's handle stack, valid until its scope closes.
/// A plain token (64 bits for C: slot index, then the scope's serial in the high half); the
/// slot belongs to the handle stack.
public struct HandleToken: Hashable, Sendable {
    public var bits: UInt64
    public init(bits: UInt64) { self.bits = bits }
    var index: Int { Int(bits & 0xFFFF_FFFF) }
    var serial: UInt32 { UInt32(truncatingIfNeeded: bits >> 32) }
}

// A scope begins with a marker slot holding the enclosing scope's serial as a tagged
// integer (so the collector, which visits every slot below the top, leaves it alone); its
// `serials` entry is the new scope's own serial with the marker bit. Serials are 31 bits.
extension HandleStack {
    static let markerBit: UInt32 = 1 << 31
    static let serialMask: UInt32 = markerBit - 1

    mutating func openScope() throws(HeapError) -> HandleScopeToken {
        guard top < capacity else { throw HeapError(.tooManyHandles) }
        lastSerial = lastSerial & Self.serialMask == Self.serialMask ? 1 : lastSerial + 1
        slots[top] = Value(integer: Int(currentSerial)).bits
        serials[top] = lastSerial | Self.markerBit
        currentSerial = lastSerial
        defer { top += 1 }
        return HandleScopeToken(bits: UInt64(top) | UInt64(lastSerial) << 32)
    }

    /// Closes the innermost scope, which `token` must name.
    mutating func closeScope(_ token: HandleScopeToken) throws(HeapError) {
        let index = token.index
        guard currentSerial != 0, token.serial == currentSerial, index < top,
              serials[index] == token.serial | Self.markerBit else {
            throw HeapError(.staleHandle)
        }
        currentSerial = UInt32(truncatingIfNeeded: Value(bits: slots[index]).integer)
        top = index
    }

    mutating func push(_ value: Value) throws(HeapError) -> HandleToken {
        guard currentSerial != 0 else { throw HeapError(.staleHandle) }
        guard top < capacity else { throw HeapError(.tooManyHandles) }
        slots[top] = value.bits
        serials[top] = currentSerial
        defer { top += 1 }
        return HandleToken(bits: UInt64(top) | UInt64(currentSerial) << 32)
    }

    /// The slot of a handle that is still valid (never a scope's marker: its serial has the
    /// marker bit, which no handle's has).
    func slot(_ handle: HandleToken) throws(HeapError) -> UnsafeMutablePointer<UInt64> {
        let index = handle.index
        guard index < top, serials[index] == handle.serial else { throw HeapError(.staleHandle) }
        return slots + index
    }
}

/// A scoped handle for Swift hosts: see the file comment. Valid until its scope closes;
/// every use checks that. The slot is a root: the collector updates it when the object moves.
public struct Handle: @unchecked Sendable {
    @usableFromInline let record: UnsafeMutablePointer<AllocationRecord>
    /// The handle as a C host sees it.
    public let token: HandleToken

    init(record: UnsafeMutablePointer<AllocationRecord>, token: HandleToken) {
        self.record = record
        self.token = token
    }

    /// The current value; `HeapError.staleHandle` once the scope has closed.
    public var value: Value {
        get throws(HeapError) { Value(bits: try record.pointee.handles.slot(token).pointee) }
    }

    /// Stores `value` in the handle's slot.
    public func set(_ value: Value) throws(HeapError) {
        try record.pointee.handles.slot(token).pointee = value.bits
    }

    /// The current value, without checking that the scope is still open: the caller knows it is.
    @inlinable @inline(__always)
    public var unsafeValue: Value {
        Value(bits: record.pointee.handles.slots[Int(token.bits & 0xFFFF_FFFF)])
    }

    /// The slot itself, without checking the scope; it stays a root until the scope closes.
    @inlinable @inline(__always)
    public var unsafeSlot: UnsafeMutablePointer<UInt64> {
        record.pointee.handles.slots + Int(token.bits & 0xFFFF_FFFF)
    }
}

/// An open scope of handles, given to the body of `Mutator.withHandleScope`. Handles it makes
/// stay valid until the body returns.
public struct HandleScope: ~Copyable {
    let record: UnsafeMutablePointer<AllocationRecord>

    /// A new handle holding `value`, valid until this scope closes.
    public func handle(_ value: Value) throws(HeapError) -> Handle {
        Handle(record: record, token: try record.pointee.handles.push(value))
    }
}
