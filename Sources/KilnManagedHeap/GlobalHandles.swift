// Global handles: root slots a host keeps without a scope, until it frees them.
//
// A host that stores a reference beyond the current call (a callback
// registry, a cache) takes a global handle. Its slot is a root in every
// collection and is rewritten when the object moves. A global handle is a
// token (slot index, generation); freeing it bumps the slot's generation, so
// a freed or never-made handle is refused with `HeapError.staleHandle`, and
// its slot is cleared to the integer 0 before it is reused.
//
// The table grows (with malloc) only when a handle is made, under the heap's
// lock; a collection visits the slots in place and allocates nothing.

/// A global handle's token: 64 bits for C (slot index, then the generation in the high half).
public struct GlobalHandle: Hashable, Sendable {
    public var bits: UInt64
    public init(bits: UInt64) { self.bits = bits }
    var index: Int { Int(bits & 0xFFFF_FFFF) }
    var generation: UInt32 { UInt32(truncatingIfNeeded: bits >> 32) }
}

/// The table of global handles; see the file comment. Owned by its heap.
struct GlobalHandleTable {
    private(set) var slots: [UInt64] = []
    /// Odd while the slot is in use.
    private var generations: [UInt32] = []
    private var freeSlots: [Int] = []

    /// Handles in use.
    var count: Int { slots.count - freeSlots.count }

    mutating func make(_ value: Value) -> GlobalHandle {
        let index: Int
        if let reused = freeSlots.popLast() {
            index = reused
        } else {
            index = slots.count
            slots.append(0)
            generations.append(0)
        }
        generations[index] &+= 1
        slots[index] = value.bits
        return GlobalHandle(bits: UInt64(index) | UInt64(generations[index]) << 32)
    }

    private func check(_ handle: GlobalHandle) throws(HeapError) -> Int {
        let index = handle.index
        guard index < slots.count, generations[index] == handle.generation, handle.generation & 1 == 1 else {
            throw HeapError(.staleHandle)
        }
        return index
    }

    func value(_ handle: GlobalHandle) throws(HeapError) -> Value {
        Value(bits: slots[try check(handle)])
    }

    mutating func set(_ handle: GlobalHandle, to value: Value) throws(HeapError) {
        slots[try check(handle)] = value.bits
    }

    mutating func free(_ handle: GlobalHandle) throws(HeapError) {
        let index = try check(handle)
        generations[index] &+= 1
        slots[index] = 0
        freeSlots.append(index)
    }

    /// Passes every slot to `visitor` (free slots hold the integer 0). Allocates nothing.
    mutating func visit(_ visitor: borrowing RootVisitor) {
        let count = slots.count
        slots.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            visitor.visit(base, count: count)
        }
    }
}
