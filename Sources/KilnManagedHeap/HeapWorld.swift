// What the heap needs from the runtime around it: stopping threads, and the
// roots it cannot find by itself.
//
// The heap knows its own roots (the handle stacks of its allocation records,
// the global handles, and in a minor collection the remembered slots). Every
// other root belongs to whoever runs code that holds references: the slots
// of stack frames at safepoints (from stack maps), callee-saved registers
// spilled by the runtime's entry, `r` data slots of every live crate and
// thread-local `r` slots. The embedder hands them over through a `HeapWorld`:
//
//   1. `stopForCollection` stops every other thread that may hold references
//      or allocate (the loader's stop of the world). The heap's lock is held
//      already, so no stopped thread is inside the heap's own bookkeeping.
//   2. `visitRoots` passes the address of every root word to the visitor.
//   3. `visitCode`, in a full collection, receives field 0 of every closure
//      that survived (an untagged code address, see ObjectHeader.swift).
//   4. `resumeAfterCollection` lets them go.
//
// Between 1 and 4 nothing may allocate with malloc, print or take a lock a
// stopped thread may hold: `visitRoots` and `visitCode` run in that window.
//
// The root-visitor contract: `visit(slot)` takes the address of an 8-byte word
// holding a tagged value (an `r`). The visitor reads the word; if it is a
// reference into a space being collected, it writes the new reference back;
// integers and references to objects that do not move are left as they are.
// A slot may be visited more than once in a collection (the second visit finds
// the new reference and leaves it). A slot must stay where it is until the
// collection ends, must not lie inside a managed object, and must hold a
// valid tagged word: a reference to anything but a live object's header is a
// corrupt root (the verifier reports it in the stress mode). Every root must
// be visited in every collection, minor ones included: a root missed is a
// reference left pointing at a dead copy.

/// The runtime around a heap: see the file comment. The heap keeps a strong reference to it.
public protocol HeapWorld: AnyObject {
    /// Stops every other thread that may hold references or allocate; false when some could
    /// not be stopped (no collection happens then, and nothing was left stopped).
    func stopForCollection() -> Bool
    /// Passes every root the heap does not own to `visitor`. Runs with the world stopped.
    func visitRoots(_ visitor: borrowing RootVisitor)
    /// Receives the code field of each closure that survived a full collection, at its new
    /// place. Runs with the world stopped. The default does nothing.
    func visitCode(_ slot: UnsafeMutablePointer<UInt64>)
    /// Resumes the threads `stopForCollection` stopped.
    func resumeAfterCollection()
}

extension HeapWorld {
    public func visitCode(_ slot: UnsafeMutablePointer<UInt64>) {}
}

/// Visits root slots for a collection (or the verifier); see the file comment for the contract.
/// Valid only during the call that received it.
public struct RootVisitor: ~Copyable {
    @usableFromInline let context: UnsafeMutableRawPointer
    @usableFromInline let action: @convention(c) (UnsafeMutableRawPointer, UnsafeMutablePointer<UInt64>) -> Void

    init(context: UnsafeMutableRawPointer,
         action: @convention(c) (UnsafeMutableRawPointer, UnsafeMutablePointer<UInt64>) -> Void) {
        self.context = context
        self.action = action
    }

    /// Visits the root word at `slot`: it may be rewritten with the object's new reference.
    @inlinable @inline(__always)
    public func visit(_ slot: UnsafeMutablePointer<UInt64>) {
        action(context, slot)
    }

    /// Visits `count` consecutive root words starting at `slots`.
    @inlinable
    public func visit(_ slots: UnsafeMutablePointer<UInt64>, count: Int) {
        for index in 0..<count { action(context, slots + index) }
    }
}
