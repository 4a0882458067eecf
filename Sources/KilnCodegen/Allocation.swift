// Register allocation: linear scan over live intervals with lifetime holes.
//
// Requires: a machine function from selection.
// Provides: a location for every virtual register, either a physical register
// or a spill slot, such that no two registers that are live at the same point
// share a register and no virtual register sits in a physical register while
// that register is fixed (an argument being passed, rax:rdx in a division, a
// register a call clobbers).
//
// Intervals (Intervals.swift) come from one backward walk over the blocks
// with the liveness of Liveness.swift; physical registers get intervals too
// and are never moved. Pieces of intervals wait in a heap ordered by start.
//
// Splitting: when a register is free only for a prefix of an interval, the
// prefix gets it and the rest goes back to the queue; when none is free, the
// part up to the next use is spilled and the rest goes back to the queue, so a
// value lives in a stack slot across a call and in a register around its uses.
// Splits fall on instruction boundaries (even positions), so an instruction
// sees one location for each operand, and never between a block's
// conditional jumps and its last jump. Resolution (Allocation+Resolution.swift)
// then inserts the copies between the pieces: inside blocks at the split, and
// on the edges where a value's location differs across the edge.

import KilnPasses
import KilnX64

/// Where a virtual register lives.
enum Location: Equatable {
    case register(Reg)
    case spill(Int32)
}

/// A copy between two places a value lives.
struct LocationMove: Equatable {
    var from: Location
    var to: Location
    var isFloat: Bool
}

/// The result of allocation.
struct Allocation {
    /// Virtual register v's pieces, by increasing start: from which position on it lives where,
    /// `pieceStart[pieceFirst[v] ..< pieceFirst[v + 1]]` with `pieceLocation`. A piece starts at
    /// an even position (an instruction boundary), even when its first event is a definition
    /// at the odd one, so each instruction sees one location.
    var pieceFirst: [Int32]
    var pieceStart: [Int32]
    var pieceLocation: [Location]
    var spillSlotCount: Int32
    var usedCalleeSaved: [GPR]
    /// Copies, keyed by 2 x instruction index (at the entry of the block that starts there)
    /// or 2 x instruction index + 1 (just before that instruction):
    /// `moves[moveFirst[key] ..< moveFirst[key + 1]]`.
    var moveFirst: [Int32]
    var moves: [LocationMove]
    /// For each call (by instruction index) in a function with references: the spill slots
    /// holding references live across it, which its stack map lists.
    var safepointSlots: [Int32: [Int32]] = [:]

    /// Where a virtual register lives at an instruction (position 2 x instruction index).
    func location(_ register: Reg, at position: Int32) -> Location {
        let index = Int(register - firstVirtual)
        var low = Int(pieceFirst[index]), high = Int(pieceFirst[index + 1])
        let first = low
        guard low < high else { return .spill(-1) }
        // The last piece that starts at or before `position` (the first one if none does).
        while low < high {
            let middle = (low + high) / 2
            if pieceStart[middle] <= position { low = middle + 1 } else { high = middle }
        }
        return pieceLocation[low == first ? first : low - 1]
    }

    /// The copies to make at the entry of the block whose first instruction is `instruction`.
    func movesAtEntry(_ instruction: Int) -> ArraySlice<LocationMove> {
        moves[Int(moveFirst[2 * instruction])..<Int(moveFirst[2 * instruction + 1])]
    }

    /// The copies to make just before `instruction`.
    func movesBefore(_ instruction: Int) -> ArraySlice<LocationMove> {
        moves[Int(moveFirst[2 * instruction + 1])..<Int(moveFirst[2 * instruction + 2])]
    }
}

struct LinearScan {
    let machine: MachineFunction
    let operands: OperandTable
    let liveness: MachineLiveness
    let store: IntervalStore
    /// First position of each block, and one past the last.
    var blockStarts: [Int32] = []
    /// Whether a split may not fall just before instruction i (a jump after a conditional jump).
    var noSplitBefore: [Bool] = []
    /// The pseudo-register whose interval is every call's write position: the caller-saved
    /// registers are busy there.
    var callRegister: Reg = 0

    init(_ machine: MachineFunction) {
        self.machine = machine
        let registerCount = Int(firstVirtual) + machine.bankOfVirtual.count
        operands = OperandTable(machine, registerCount: registerCount)
        liveness = MachineLiveness(machine, operands, registerCount: registerCount)
        var noSplit = [Bool](repeating: false, count: operands.count)
        var index = 0
        for block in machine.blocks {
            var previousIsConditional = false
            for instruction in block {
                switch instruction.op {
                case .jcc:
                    noSplit[index] = previousIsConditional
                    previousIsConditional = true
                case .jmp:
                    noSplit[index] = previousIsConditional
                default:
                    previousIsConditional = false
                }
                index += 1
            }
        }
        noSplitBefore = noSplit
        blockStarts = operands.blockStart.map { 2 * $0 }
        store = LinearScan.buildIntervals(machine, operands, liveness, blockStarts, registerCount: registerCount)
        callRegister = Reg(registerCount)
    }

    /// Intervals by one backward walk over the blocks.
    static func buildIntervals(_ machine: MachineFunction, _ operands: OperandTable, _ liveness: MachineLiveness,
                               _ blockStarts: [Int32], registerCount: Int) -> IntervalStore {
        var builder = IntervalBuilder(registerCount: registerCount + 1, expectedRanges: operands.registers.count)
        for call in operands.calls.reversed() { builder.define(registerCount, at: 2 * call + 1) }
        for block in stride(from: machine.blocks.count - 1, through: 0, by: -1) {
            let from = blockStarts[block], to = blockStarts[block + 1]
            for register in liveness.liveOut[block] { builder.add(register, from, to) }
            var instruction = Int(operands.blockStart[block + 1]) - 1
            while instruction >= Int(operands.blockStart[block]) {
                let position = Int32(2 * instruction)
                for index in operands.defs(instruction) {
                    let register = Int(operands.registers[index])
                    builder.define(register, at: position + 1)
                    builder.use(register, at: position + 1)
                }
                for index in operands.uses(instruction) {
                    let register = Int(operands.registers[index])
                    builder.add(register, from, position + 1)
                    builder.use(register, at: position)
                }
                instruction -= 1
            }
        }
        return builder.finish()
    }

    /// Registers the allocator may hand out in a bank, in order of preference: caller-saved
    /// first (free to use), then callee-saved (saved once in the prologue).
    static let gprCandidates: [Reg] = ([GPR.rax, .rcx, .rdx, .rsi, .rdi, .r8, .r9] + calleeSavedGPRs).map { physical($0) }
    static let xmmCandidates: [Reg] = XMM.allCases.filter { $0 != scratchXMM1 && $0 != scratchXMM2 }.map { physical($0) }
    static let isCalleeSaved: [Bool] = (0..<32).map { register in calleeSavedGPRs.contains { physical($0) == Reg(register) } }
    /// Whether a call may clobber the register (among those the allocator hands out).
    static let isCallerSaved: [Bool] = (0..<32).map { register in
        register >= 16 || callerSavedGPRs.contains { physical($0) == Reg(register) }
    }
    static let isAllocatable: [Bool] = (0..<32).map { register in
        gprCandidates.contains(Reg(register)) || xmmCandidates.contains(Reg(register))
    }

    static func candidates(_ bank: Bank) -> [Reg] { bank == .gpr ? gprCandidates : xmmCandidates }
    /// Registers for managed references: caller-saved only, so that no reference is in a
    /// register across a call (Allocation+References.swift).
    static let referenceCandidates: [Reg] = [GPR.rax, .rcx, .rdx, .rsi, .rdi, .r8, .r9].map { physical($0) }

    /// The block holding a position (binary search over block starts).
    func block(at position: Int32) -> Int {
        var low = 0, high = blockStarts.count - 1
        while low + 1 < high {
            let middle = (low + high) / 2
            if blockStarts[middle] <= position { low = middle } else { high = middle }
        }
        return low
    }

    /// The latest instruction boundary at or before `position` where copies may go, or nil if
    /// there is none after `after`.
    func splitPosition(atOrBefore position: Int32, after: Int32) -> Int32? {
        var candidate = position & ~1
        while candidate > after {
            let instruction = Int(candidate / 2)
            if instruction < noSplitBefore.count, noSplitBefore[instruction] {
                candidate -= 2
                continue
            }
            return candidate
        }
        return nil
    }

    /// A piece that holds a register, with the position where its state next changes.
    struct Holder {
        var piece: Piece
        var register: Reg
        /// Active: where the range covering the current position ends. Inactive: where the
        /// next range starts.
        var next: Int32
    }

    mutating func run() -> Allocation {
        let virtualCount = machine.bankOfVirtual.count
        var assigned: [(register: Int32, start: Int32, location: Location)] = []
        assigned.reserveCapacity(virtualCount + virtualCount / 2)
        var spillSlot = [Int32](repeating: -1, count: virtualCount)
        var spillSlots: Int32 = 0
        var queue = PieceQueue()
        for index in 0..<virtualCount where store.isLive(Int(firstVirtual) + index) {
            queue.push(Piece.whole(firstVirtual + Reg(index), store))
        }
        // Pieces holding a register: active ones cover the current position, inactive ones are
        // in a lifetime hole there. No two active pieces share a register. Each holder caches
        // where its state next changes, so most steps touch nothing but that number.
        var active: [Holder] = []
        var inactive: [Holder] = []
        active.reserveCapacity(32)
        inactive.reserveCapacity(32)
        var usedCalleeSaved = [Bool](repeating: false, count: 32)
        var lastRegister = [Reg](repeating: -1, count: virtualCount)
        let fixed: [Piece] = (0..<Int(firstVirtual)).map { register in
            store.isLive(register) ? Piece.whole(Reg(register), store)
                : Piece(register: Reg(register), low: 0, high: 0, start: 0, end: 0)
        }
        let callPositions = store.isLive(Int(callRegister)) ? Piece.whole(callRegister, store)
            : Piece(register: callRegister, low: 0, high: 0, start: 0, end: 0)

        func spill(_ piece: Piece) {
            let index = Int(piece.register - firstVirtual)
            if spillSlot[index] < 0 {
                spillSlot[index] = spillSlots
                spillSlots += 1
            }
            assigned.append((Int32(index), piece.start & ~1, .spill(spillSlot[index])))
            lastRegister[index] = -1
        }
        func assign(_ piece: Piece, _ register: Reg) {
            let index = Int(piece.register - firstVirtual)
            assigned.append((Int32(index), piece.start & ~1, .register(register)))
            lastRegister[index] = register
            if LinearScan.isCalleeSaved[Int(register)] { usedCalleeSaved[Int(register)] = true }
            active.append(Holder(piece: piece, register: register, next: piece.rangeEnd(Int(piece.low), store)))
        }

        var freeUntil = [Int32](repeating: 0, count: 32)
        var blockedByInactive = [Bool](repeating: false, count: 32)
        // Pieces come out of the queue in order of start, so each fixed interval keeps a cursor
        // past its ranges that end before the current start: most of them then answer "not
        // before this piece ends" from one comparison, without a search.
        var fixedCursor = fixed.map { Int($0.low) }
        var callCursor = Int(callPositions.low)
        var position: Int32 = 0, end: Int32 = 0
        var current = Piece(register: 0, low: 0, high: 0, start: 0, end: 0)
        func fixedIntersection(_ piece: Piece, _ cursor: inout Int) -> Int32 {
            let high = Int(piece.high)
            while cursor < high && store.ends[cursor] <= position { cursor += 1 }
            if cursor == high || store.starts[cursor] >= end { return Int32.max }
            return piece.firstIntersection(with: current, store) ?? Int32.max
        }
        while let next = queue.pop() {
            current = next
            position = current.start
            end = current.end
            var kept = 0
            for index in active.indices {
                var holder = active[index]
                if holder.next > position {
                    active[kept] = holder
                    kept += 1
                } else if let state = holder.piece.state(at: position, store) {
                    holder.next = state.next
                    if state.covers {
                        active[kept] = holder
                        kept += 1
                    } else {
                        inactive.append(holder)
                    }
                }
            }
            active.removeLast(active.count - kept)
            kept = 0
            for index in inactive.indices {
                var holder = inactive[index]
                if holder.next > position {
                    inactive[kept] = holder
                    kept += 1
                } else if let state = holder.piece.state(at: position, store) {
                    holder.next = state.next
                    if state.covers {
                        active.append(holder)
                    } else {
                        inactive[kept] = holder
                        kept += 1
                    }
                }
            }
            inactive.removeLast(inactive.count - kept)

            let bank = machine.bank(current.register)
            let isReference = machine.references.contains(current.register)
            let candidates = isReference ? LinearScan.referenceCandidates : LinearScan.candidates(bank)
            // How long each register stays free for this piece: until its fixed uses, and for a
            // caller-saved register until the first call the piece spans.
            let firstCall = fixedIntersection(callPositions, &callCursor)
            for register in candidates {
                var limit = fixedIntersection(fixed[Int(register)], &fixedCursor[Int(register)])
                if LinearScan.isCallerSaved[Int(register)] { limit = min(limit, firstCall) }
                freeUntil[Int(register)] = limit
                blockedByInactive[Int(register)] = false
            }
            for holder in active { freeUntil[Int(holder.register)] = min(freeUntil[Int(holder.register)], position) }
            for holder in inactive where holder.next < end && bankOfPhysical(holder.register) == bank {
                if let meet = holder.piece.firstIntersection(with: current, store) {
                    freeUntil[Int(holder.register)] = min(freeUntil[Int(holder.register)], meet)
                    blockedByInactive[Int(holder.register)] = true
                }
            }
            var hint = operands.hints[Int(current.register)]
            if hint >= firstVirtual { hint = lastRegister[Int(hint - firstVirtual)] }
            var choice = candidates[0]
            for register in candidates where freeUntil[Int(register)] > freeUntil[Int(choice)] { choice = register }
            if hint >= 0, hint < 32, bankOfPhysical(hint) == bank, LinearScan.isAllocatable[Int(hint)],
               !isReference || LinearScan.isCallerSaved[Int(hint)], freeUntil[Int(hint)] >= end {
                choice = hint
            }
            if freeUntil[Int(choice)] >= end {
                assign(current, choice)
                continue
            }
            if let split = splitPosition(atOrBefore: freeUntil[Int(choice)], after: position) {
                // The register is free for a prefix: take it, queue the rest.
                let (head, tail) = current.split(at: split, store)
                assign(head, choice)
                if !tail.isEmpty { queue.push(tail) }
                continue
            }
            // No register free here. If the next use is later, live in the stack slot until then.
            if let use = store.firstUse(of: Int(current.register), atOrAfter: position + 1),
               let split = splitPosition(atOrBefore: use, after: position) {
                let (head, tail) = current.split(at: split, store)
                spill(head)
                if !tail.isEmpty { queue.push(tail) }
                continue
            }
            // Used right here: take the register of the active piece that ends last, which
            // moves to its stack slot for the rest of its life.
            var victim: Int?
            for (index, holder) in active.enumerated() where bankOfPhysical(holder.register) == bank
                && (!isReference || LinearScan.isCallerSaved[Int(holder.register)])
                && holder.piece.end > end
                && fixed[Int(holder.register)].firstIntersection(with: current, store) == nil
                && !(LinearScan.isCallerSaved[Int(holder.register)] && firstCall != Int32.max)
                && !blockedByInactive[Int(holder.register)]
                && holder.piece.start < position {
                if victim == nil || holder.piece.end > active[victim!].piece.end { victim = index }
            }
            if let victimIndex = victim,
               let split = splitPosition(atOrBefore: position, after: active[victimIndex].piece.start) {
                let holder = active.remove(at: victimIndex)
                let (head, tail) = holder.piece.split(at: split, store)
                active.append(Holder(piece: head, register: holder.register, next: min(holder.next, head.end)))
                spill(tail)
                assign(current, holder.register)
                continue
            }
            spill(current)
        }
        let saved = calleeSavedGPRs.filter { usedCalleeSaved[Int(physical($0))] }
        var allocation = Allocation(assigned, virtualCount: virtualCount, spillSlotCount: spillSlots,
                                    usedCalleeSaved: saved, instructionCount: operands.count)
        resolve(&allocation)
        if !machine.references.isEmpty { allocation.safepointSlots = referenceSlotsAtCalls(allocation) }
        return allocation
    }
}

extension Allocation {
    /// The pieces laid out by register (each register's pieces were assigned in order of start).
    init(_ assigned: [(register: Int32, start: Int32, location: Location)], virtualCount: Int,
         spillSlotCount: Int32, usedCalleeSaved: [GPR], instructionCount: Int) {
        var first = [Int32](repeating: 0, count: virtualCount + 1)
        for piece in assigned { first[Int(piece.register) + 1] += 1 }
        for index in 0..<virtualCount { first[index + 1] += first[index] }
        var next = first
        var starts = [Int32](repeating: 0, count: assigned.count)
        var locations = [Location](repeating: .spill(-1), count: assigned.count)
        for piece in assigned {
            let slot = Int(next[Int(piece.register)])
            starts[slot] = piece.start
            locations[slot] = piece.location
            next[Int(piece.register)] += 1
        }
        pieceFirst = first
        pieceStart = starts
        pieceLocation = locations
        self.spillSlotCount = spillSlotCount
        self.usedCalleeSaved = usedCalleeSaved
        moveFirst = [Int32](repeating: 0, count: 2 * instructionCount + 1)
        moves = []
    }
}

/// Pieces waiting for a location, earliest start first (ties: lower register first), as a
/// binary heap: a split puts its tail back in logarithmic time.
struct PieceQueue {
    var heap: [Piece] = []

    @inline(__always) static func precedes(_ a: Piece, _ b: Piece) -> Bool {
        a.start != b.start ? a.start < b.start : a.register < b.register
    }

    mutating func push(_ piece: Piece) {
        heap.append(piece)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard PieceQueue.precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Piece? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var first = parent
            if left < heap.count, PieceQueue.precedes(heap[left], heap[first]) { first = left }
            if right < heap.count, PieceQueue.precedes(heap[right], heap[first]) { first = right }
            if first == parent { break }
            heap.swapAt(parent, first)
            parent = first
        }
        return top
    }
}
