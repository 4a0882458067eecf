// Stack maps from the allocation: which spill slots hold references at each call.
//
// Every call is a safepoint (the callee may allocate, or another thread may
// collect while this one is in C), and so is every allocation, which
// selection makes a call. The allocator never gives a reference a
// callee-saved register (`referenceCandidates`), and no caller-saved
// register is free across a call, so a reference live across a call is in
// its spill slot there: each virtual register has one slot of its own, so
// the slot holds exactly that value. The stack map of the call lists those
// slots; the collector reads and rewrites them while the call is in progress.
//
// Live across call c means: the register's interval covers position 2c + 1,
// the call's write position (a value read by the call itself and dead after
// it ends at 2c + 1 and is not listed).
//
// Requires: the allocation and its intervals. Provides:
// `Allocation.safepointSlots`. Cost: one binary search over the calls per
// range of each reference register.

extension LinearScan {
    /// The spill slots of references live across each call, by the call's instruction index.
    func referenceSlotsAtCalls(_ allocation: Allocation) -> [Int32: [Int32]] {
        var result: [Int32: [Int32]] = [:]
        let calls = operands.calls
        for call in calls { result[call] = [] }
        guard !calls.isEmpty else { return result }
        for register in machine.references.sorted() where store.isLive(Int(register)) {
            for range in store.rangeIndices(Int(register)) {
                let start = store.starts[range], end = store.ends[range]
                // The first call whose write position is at or after the range's start.
                var low = 0, high = calls.count
                while low < high {
                    let middle = (low + high) / 2
                    if 2 * calls[middle] + 1 < start { low = middle + 1 } else { high = middle }
                }
                while low < calls.count, 2 * calls[low] + 1 < end {
                    let call = calls[low]
                    if case .spill(let slot) = allocation.location(register, at: 2 * call) {
                        result[call, default: []].append(slot)
                    } else {
                        // Not reachable by construction (see the file comment); a register
                        // here would be a reference the collector cannot see.
                        preconditionFailure("a reference is in a register across a call in \(machine.name)")
                    }
                    low += 1
                }
            }
        }
        return result
    }
}
