// Register allocation: linear scan over live intervals with lifetime holes.
//
// Requires: a machine function from selection.
// Provides: a location for every virtual register, either a physical register
// or a spill slot, such that no two registers that are live at the same point
// share a register and no virtual register sits in a physical register while
// that register is fixed (an argument being passed, rax:rdx in a division, a
// register a call clobbers).
//
// Instructions are numbered in layout order, two positions each: reads happen
// at the even position, writes at the odd one. An interval is a sorted list of
// half-open ranges; the gaps are lifetime holes, where another interval may use
// the same register. Physical registers get intervals too and are never moved.
//
// Splitting: when a register is free only for a prefix of an interval, the
// prefix gets it and the rest goes back to the queue; when none is free, the
// part up to the next use is spilled and the rest goes back to the queue, so a
// value lives in a stack slot across a call and in a register around its uses.
// Splits fall on instruction boundaries (even positions), so an instruction
// sees one location for each operand. Resolution (Allocation+Resolution.swift)
// then inserts the copies between the pieces: inside blocks at the split, and
// on the edges where a value's location differs across the edge.

import KilnPasses
import KilnX64

/// Where a virtual register lives.
enum Location: Equatable {
    case register(Reg)
    case spill(Int32)
}

/// Half-open ranges of positions, sorted and disjoint.
struct Interval {
    var ranges: [(start: Int32, end: Int32)] = []

    var start: Int32 { ranges.first?.start ?? Int32.max }
    var end: Int32 { ranges.last?.end ?? Int32.min }

    /// Adds a range during the backward walk. While intervals are built, `ranges` is kept
    /// in decreasing order (ranges arrive in decreasing order, so this appends);
    /// `finishBuilding` puts it in increasing order.
    mutating func add(_ start: Int32, _ end: Int32) {
        guard start < end else { return }
        if let last = ranges.last, end >= last.start {
            ranges[ranges.count - 1] = (min(start, last.start), max(end, last.end))
        } else {
            ranges.append((start, end))
        }
    }

    /// Cuts the earliest range to start at `position` (a definition), during the backward walk.
    mutating func define(at position: Int32) {
        if ranges.isEmpty || ranges[ranges.count - 1].start > position {
            ranges.append((position, position + 1))
        } else {
            ranges[ranges.count - 1].start = position
        }
    }

    mutating func finishBuilding() { ranges.reverse() }

    func covers(_ position: Int32) -> Bool {
        let index = firstRange(endingAfter: position)
        return index < ranges.count && ranges[index].start <= position
    }

    /// The part before `position` and the part from it on.
    func split(at position: Int32) -> (Interval, Interval) {
        var head = Interval(), tail = Interval()
        for range in ranges {
            if range.end <= position {
                head.ranges.append(range)
            } else if range.start >= position {
                tail.ranges.append(range)
            } else {
                head.ranges.append((range.start, position))
                tail.ranges.append((position, range.end))
            }
        }
        return (head, tail)
    }

    /// The index of the first range that ends after `position` (binary search).
    func firstRange(endingAfter position: Int32) -> Int {
        var low = 0, high = ranges.count
        while low < high {
            let middle = (low + high) / 2
            if ranges[middle].end <= position { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The first position both intervals cover, if any. Both sides skip, by binary search,
    /// the ranges that end before the other starts: fixed intervals of registers that calls
    /// clobber have a range per call.
    func firstIntersection(with other: Interval) -> Int32? {
        guard let first = ranges.first, let otherFirst = other.ranges.first else { return nil }
        var i = firstRange(endingAfter: otherFirst.start)
        var j = other.firstRange(endingAfter: first.start)
        while i < ranges.count && j < other.ranges.count {
            let a = ranges[i], b = other.ranges[j]
            let start = max(a.start, b.start)
            if start < min(a.end, b.end) { return start }
            if a.end <= b.end { i += 1 } else { j += 1 }
        }
        return nil
    }
}

/// The result of allocation.
struct Allocation {
    /// For each virtual register, its pieces: from which position on it lives where, sorted.
    /// A piece starts at an even position (an instruction boundary), even when its first
    /// event is a definition at the odd one, so each instruction sees one location.
    var pieces: [[(start: Int32, location: Location)]]
    var spillSlotCount: Int32
    var usedCalleeSaved: [GPR]
    /// Copies to make before the instruction with this global index.
    var movesBefore: [Int: [LocationMove]] = [:]
    /// Copies to make when entering a block (before its first instruction).
    var movesAtEntry: [Int: [LocationMove]] = [:]

    /// Where a virtual register lives at an instruction (position 2 * global index).
    func location(_ register: Reg, at position: Int32) -> Location {
        let list = pieces[Int(register - firstVirtual)]
        guard let first = list.first else { return .spill(-1) }
        // The last piece that starts at or before `position` (the first one if none does).
        var low = 0, high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].start <= position { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? first.location : list[low - 1].location
    }
}

/// A copy between two places a value lives.
struct LocationMove: Equatable {
    var from: Location
    var to: Location
    var isFloat: Bool
}

/// A part of a virtual register's interval waiting for a location.
struct Piece {
    var register: Reg
    var interval: Interval
}

struct LinearScan {
    let machine: MachineFunction
    var intervals: [Interval]
    var hints: [Reg]
    /// Positions where each register is read or written, ascending.
    var usePositions: [[Int32]]
    /// First position of each block, and one past the last (positions of block b are
    /// `blockStarts[b] ..< blockStarts[b + 1]`).
    var blockStarts: [Int32] = []
    var liveIn = Adjacency(count: 0)
    var successors = Adjacency(count: 0)

    init(_ machine: MachineFunction) {
        self.machine = machine
        let registerCount = Int(firstVirtual) + machine.bankOfVirtual.count
        intervals = Array(repeating: Interval(), count: registerCount)
        hints = Array(repeating: -1, count: registerCount)
        usePositions = Array(repeating: [], count: registerCount)
        buildIntervals()
    }

    /// Liveness (Liveness.swift), then intervals by one backward walk over the blocks.
    mutating func buildIntervals() {
        let blockCount = machine.blocks.count
        let registerCount = intervals.count
        var position: Int32 = 0
        for block in machine.blocks {
            blockStarts.append(position)
            position += Int32(block.count * 2)
        }
        blockStarts.append(position)
        let liveness = MachineLiveness(machine, registerCount: registerCount)
        liveIn = liveness.liveIn
        successors = liveness.successors
        var uses: [Reg] = [], defs: [Reg] = []
        for block in stride(from: blockCount - 1, through: 0, by: -1) {
            let from = blockStarts[block], to = blockStarts[block + 1]
            for register in liveness.liveOut[block] { intervals[register].add(from, to) }
            var position = to - 2
            for instruction in machine.blocks[block].reversed() {
                machine.registers(of: instruction, uses: &uses, defs: &defs)
                for register in defs {
                    intervals[Int(register)].define(at: position + 1)
                    usePositions[Int(register)].append(position + 1)
                }
                for register in uses {
                    intervals[Int(register)].add(from, position + 1)
                    usePositions[Int(register)].append(position)
                }
                if case .mov = instruction.op, case .reg(let to) = instruction.a, case .reg(let from) = instruction.b {
                    hints[Int(to)] = from
                    hints[Int(from)] = to
                }
                position -= 2
            }
        }
        for index in intervals.indices {
            intervals[index].finishBuilding()
            usePositions[index].reverse()
        }
    }

    /// Registers the allocator may hand out in a bank, in order of preference: caller-saved
    /// first (free to use), then callee-saved (saved once in the prologue).
    static let gprCandidates: [Reg] = ([GPR.rax, .rcx, .rdx, .rsi, .rdi, .r8, .r9] + calleeSavedGPRs).map { physical($0) }
    static let xmmCandidates: [Reg] = XMM.allCases.filter { $0 != scratchXMM1 && $0 != scratchXMM2 }.map { physical($0) }
    static let isCalleeSaved: [Bool] = (0..<32).map { register in calleeSavedGPRs.contains { physical($0) == Reg(register) } }
    static let isAllocatable: [Bool] = (0..<32).map { register in
        gprCandidates.contains(Reg(register)) || xmmCandidates.contains(Reg(register))
    }

    static func candidates(_ bank: Bank) -> [Reg] { bank == .gpr ? gprCandidates : xmmCandidates }

    /// The instruction at a position (global index), for checking where splits may fall.
    func instruction(at position: Int32) -> MInstruction? {
        let block = self.block(at: position)
        guard block < machine.blocks.count else { return nil }
        let index = Int((position - blockStarts[block]) / 2)
        return index < machine.blocks[block].count ? machine.blocks[block][index] : nil
    }

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
    /// there is none after `after`. Copies never go between a block's `jcc` and its final `jmp`.
    func splitPosition(atOrBefore position: Int32, after: Int32) -> Int32? {
        var candidate = position & ~1
        while candidate > after {
            if case .jmp = instruction(at: candidate)?.op, let previous = instruction(at: candidate - 2),
               case .jcc = previous.op, blockStarts[block(at: candidate)] != candidate {
                candidate -= 2
                continue
            }
            return candidate
        }
        return nil
    }

    func firstUse(of register: Reg, atOrAfter position: Int32) -> Int32? {
        let list = usePositions[Int(register)]
        var low = 0, high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle] < position { low = middle + 1 } else { high = middle }
        }
        return low < list.count ? list[low] : nil
    }

    /// A piece that holds a register, with the positions where its state next changes.
    struct Holder {
        /// Index into the store of pieces that got registers.
        var piece: Int32
        var register: Reg
        var end: Int32
        /// Active: where the range covering the current position ends. Inactive: where the
        /// next range starts.
        var next: Int32
    }

    mutating func run() -> Allocation {
        let virtualCount = machine.bankOfVirtual.count
        var pieces = Array(repeating: [(start: Int32, location: Location)](), count: virtualCount)
        var spillSlot = [Int32](repeating: -1, count: virtualCount)
        var spillSlots: Int32 = 0
        var queue = PieceQueue()
        for index in 0..<virtualCount where !intervals[Int(firstVirtual) + index].ranges.isEmpty {
            let register = firstVirtual + Reg(index)
            queue.push(Piece(register: register, interval: intervals[Int(register)]))
        }
        // Pieces holding a register: active ones cover the current position, inactive ones are
        // in a lifetime hole there. No two active pieces share a register. Each holder caches
        // where its state next changes, so most steps touch nothing but that number.
        var store: [Piece] = []
        var active: [Holder] = []
        var inactive: [Holder] = []
        var usedCalleeSaved = [Bool](repeating: false, count: 32)

        func spill(_ piece: Piece) {
            let index = Int(piece.register - firstVirtual)
            if spillSlot[index] < 0 {
                spillSlot[index] = spillSlots
                spillSlots += 1
            }
            pieces[index].append((piece.interval.start & ~1, .spill(spillSlot[index])))
        }
        func assign(_ piece: Piece, _ register: Reg, at position: Int32) {
            pieces[Int(piece.register - firstVirtual)].append((position & ~1, .register(register)))
            if LinearScan.isCalleeSaved[Int(register)] { usedCalleeSaved[Int(register)] = true }
            let first = piece.interval.ranges[0]
            store.append(piece)
            active.append(Holder(piece: Int32(store.count - 1), register: register, end: piece.interval.end,
                                 next: first.end))
        }
        /// Brings a holder's state up to `position`: nil when its piece has ended, else whether it
        /// is active there and where that next changes.
        func advance(_ holder: Holder, to position: Int32) -> (isActive: Bool, next: Int32)? {
            guard holder.end > position else { return nil }
            let ranges = store[Int(holder.piece)].interval.ranges
            let index = store[Int(holder.piece)].interval.firstRange(endingAfter: position)
            let range = ranges[index]
            return range.start <= position ? (true, range.end) : (false, range.start)
        }

        var freeUntil = [Int32](repeating: 0, count: 32)
        var blockedByInactive = [Bool](repeating: false, count: 32)
        while let current = queue.pop() {
            let interval = current.interval
            let position = interval.start
            var kept = 0
            for index in active.indices {
                var holder = active[index]
                if holder.next > position {
                    active[kept] = holder
                    kept += 1
                } else if let state = advance(holder, to: position) {
                    holder.next = state.next
                    if state.isActive {
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
                } else if let state = advance(holder, to: position) {
                    holder.next = state.next
                    if state.isActive {
                        active.append(holder)
                    } else {
                        inactive[kept] = holder
                        kept += 1
                    }
                }
            }
            inactive.removeLast(inactive.count - kept)

            let bank = machine.bank(current.register)
            let candidates = LinearScan.candidates(bank)
            // How long each register stays free for this piece.
            for register in candidates {
                freeUntil[Int(register)] = intervals[Int(register)].firstIntersection(with: interval) ?? Int32.max
                blockedByInactive[Int(register)] = false
            }
            for holder in active { freeUntil[Int(holder.register)] = min(freeUntil[Int(holder.register)], position) }
            let end = interval.end
            for holder in inactive where holder.next < end && bankOfPhysical(holder.register) == bank {
                if let meet = store[Int(holder.piece)].interval.firstIntersection(with: interval) {
                    freeUntil[Int(holder.register)] = min(freeUntil[Int(holder.register)], meet)
                    blockedByInactive[Int(holder.register)] = true
                }
            }
            var hint = hints[Int(current.register)]
            if hint >= firstVirtual {
                let hinted = pieces[Int(hint - firstVirtual)]
                hint = -1
                if let last = hinted.last, case .register(let register) = last.location { hint = register }
            }
            var choice = candidates[0]
            for register in candidates where freeUntil[Int(register)] > freeUntil[Int(choice)] { choice = register }
            if hint >= 0, hint < 32, bankOfPhysical(hint) == bank, LinearScan.isAllocatable[Int(hint)],
               freeUntil[Int(hint)] >= end {
                choice = hint
            }
            if freeUntil[Int(choice)] >= end {
                assign(current, choice, at: position)
                continue
            }
            if let split = splitPosition(atOrBefore: freeUntil[Int(choice)], after: position) {
                // The register is free for a prefix: take it, queue the rest.
                let (head, tail) = interval.split(at: split)
                assign(Piece(register: current.register, interval: head), choice, at: position)
                if !tail.ranges.isEmpty { queue.push(Piece(register: current.register, interval: tail)) }
                continue
            }
            // No register free here. If the next use is later, live in the stack slot until then.
            if let use = firstUse(of: current.register, atOrAfter: position + 1),
               let split = splitPosition(atOrBefore: use, after: position) {
                let (head, tail) = interval.split(at: split)
                spill(Piece(register: current.register, interval: head))
                if !tail.ranges.isEmpty { queue.push(Piece(register: current.register, interval: tail)) }
                continue
            }
            // Used right here: take the register of the active piece that ends last, which
            // moves to its stack slot for the rest of its life.
            var victim: Int?
            for (index, holder) in active.enumerated() where bankOfPhysical(holder.register) == bank
                && holder.end > end
                && intervals[Int(holder.register)].firstIntersection(with: interval) == nil
                && !blockedByInactive[Int(holder.register)]
                && store[Int(holder.piece)].interval.start < position {
                if victim == nil || holder.end > active[victim!].end { victim = index }
            }
            if let victimIndex = victim,
               let split = splitPosition(atOrBefore: position, after: store[Int(active[victimIndex].piece)].interval.start) {
                let holder = active.remove(at: victimIndex)
                let victimPiece = store[Int(holder.piece)]
                let (head, tail) = victimPiece.interval.split(at: split)
                store[Int(holder.piece)] = Piece(register: victimPiece.register, interval: head)
                active.append(Holder(piece: holder.piece, register: holder.register, end: head.end,
                                     next: min(holder.next, head.end)))
                spill(Piece(register: victimPiece.register, interval: tail))
                assign(current, holder.register, at: position)
                continue
            }
            spill(current)
        }
        for index in pieces.indices { pieces[index].sort { $0.start < $1.start } }
        let saved = calleeSavedGPRs.filter { usedCalleeSaved[Int(physical($0))] }
        var allocation = Allocation(pieces: pieces, spillSlotCount: spillSlots, usedCalleeSaved: saved)
        resolve(&allocation)
        return allocation
    }
}

/// Pieces waiting for a location, earliest start first (ties: lower register first), as a
/// binary heap: a split puts its tail back in logarithmic time.
struct PieceQueue {
    var heap: [Piece] = []

    static func precedes(_ a: Piece, _ b: Piece) -> Bool {
        let (x, y) = (a.interval.start, b.interval.start)
        return x != y ? x < y : a.register < b.register
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
