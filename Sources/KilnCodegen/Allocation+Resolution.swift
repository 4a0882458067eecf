// Resolution: the copies that connect the pieces of split intervals.
//
// Inside a block, where one piece ends and the next begins, the value is
// copied before the instruction at the split. Across an edge, every register
// live into the successor is copied when its place at the end of the
// predecessor differs from its place at the start of the successor: at the end
// of the predecessor when it has only that successor, else at the start of the
// successor (selection split every critical edge, so one of the two holds).
// Only registers live across the edge are looked at, so the work is what is
// live, not what exists.

import KilnPasses

extension LinearScan {
    func resolve(_ allocation: inout Allocation) {
        // Collected as (key, move) pairs, then laid out by key: see `Allocation.moveFirst`.
        var keys: [Int32] = []
        var moves: [LocationMove] = []
        // Inside blocks.
        for index in 0..<machine.bankOfVirtual.count {
            let first = Int(allocation.pieceFirst[index]), last = Int(allocation.pieceFirst[index + 1])
            guard last - first > 1 else { continue }
            let register = firstVirtual + Reg(index)
            let isFloat = machine.bank(register) == .xmm
            let whole = Piece.whole(register, store)
            for piece in (first + 1)..<last where allocation.pieceLocation[piece - 1] != allocation.pieceLocation[piece] {
                let start = allocation.pieceStart[piece]
                let block = self.block(at: start)
                guard start > blockStarts[block], whole.covers(start - 1, store) else { continue }
                keys.append(start + 1)
                moves.append(LocationMove(from: allocation.pieceLocation[piece - 1], to: allocation.pieceLocation[piece],
                                          isFloat: isFloat))
            }
        }
        // Across edges.
        let successors = liveness.successors
        for block in 0..<successors.count {
            for successor in successors[block] {
                let end = blockStarts[block + 1] - 2
                let start = blockStarts[successor]
                let count = moves.count
                for register in liveness.liveIn[successor] where register >= Int(firstVirtual) {
                    let virtual = Reg(register)
                    let from = allocation.location(virtual, at: end)
                    let to = allocation.location(virtual, at: start)
                    if from != to { moves.append(LocationMove(from: from, to: to, isFloat: machine.bank(virtual) == .xmm)) }
                }
                guard moves.count > count else { continue }
                let endsInPlainJump = successors.degree(block) == 1 && {
                    let instructions = machine.blocks[block]
                    guard case .jmp = instructions.last?.op else { return false }
                    if instructions.count >= 2, case .jcc = instructions[instructions.count - 2].op { return false }
                    return true
                }()
                if endsInPlainJump {
                    keys.append(contentsOf: repeatElement(end + 1, count: moves.count - count))
                } else {
                    precondition(liveness.predecessors.degree(successor) == 1, "critical edge left unsplit")
                    keys.append(contentsOf: repeatElement(start, count: moves.count - count))
                }
            }
        }
        // Lay the moves out by key, keeping the order within a key.
        var first = allocation.moveFirst
        for key in keys { first[Int(key) + 1] += 1 }
        for key in 0..<(first.count - 1) { first[key + 1] += first[key] }
        var next = first
        var laidOut = [LocationMove](repeating: LocationMove(from: .spill(0), to: .spill(0), isFloat: false), count: moves.count)
        for (key, move) in zip(keys, moves) {
            laidOut[Int(next[Int(key)])] = move
            next[Int(key)] += 1
        }
        allocation.moveFirst = first
        allocation.moves = laidOut
    }
}
