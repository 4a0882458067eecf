// Resolution: the copies that connect the pieces of split intervals.
//
// Inside a block, where one piece ends and the next begins, the value is
// copied before the instruction at the split. Across an edge, every register
// live into the successor is copied when its place at the end of the
// predecessor differs from its place at the start of the successor: at the end
// of the predecessor when it has only that successor, else at the start of the
// successor (selection split every critical edge, so one of the two holds).

import KilnPasses

extension LinearScan {
    func resolve(_ allocation: inout Allocation) {
        // Inside blocks.
        for (index, list) in allocation.pieces.enumerated() where list.count > 1 {
            let register = firstVirtual + Reg(index)
            let isFloat = machine.bank(register) == .xmm
            for (previous, piece) in zip(list, list.dropFirst()) where previous.location != piece.location {
                let block = self.block(at: piece.start)
                guard piece.start > blockStarts[block], intervals[Int(register)].covers(piece.start - 1) else { continue }
                allocation.movesBefore[Int(piece.start / 2), default: []]
                    .append(LocationMove(from: previous.location, to: piece.location, isFloat: isFloat))
            }
        }
        // Across edges.
        var predecessorCount = [Int](repeating: 0, count: machine.blocks.count)
        for successor in successors.items { predecessorCount[successor] += 1 }
        for block in 0..<successors.count {
            let list = successors[block]
            for successor in list {
                var moves: [LocationMove] = []
                let end = blockStarts[block + 1] - 2
                let start = blockStarts[successor]
                for register in liveIn[successor] where register >= Int(firstVirtual) {
                    let virtual = Reg(register)
                    let from = allocation.location(virtual, at: end)
                    let to = allocation.location(virtual, at: start)
                    if from != to { moves.append(LocationMove(from: from, to: to, isFloat: machine.bank(virtual) == .xmm)) }
                }
                guard !moves.isEmpty else { continue }
                let endsInPlainJump = list.count == 1 && {
                    let instructions = machine.blocks[block]
                    guard case .jmp = instructions.last?.op else { return false }
                    if instructions.count >= 2, case .jcc = instructions[instructions.count - 2].op { return false }
                    return true
                }()
                if endsInPlainJump {
                    allocation.movesBefore[Int(end / 2), default: []].append(contentsOf: moves)
                } else {
                    precondition(predecessorCount[successor] == 1, "critical edge left unsplit")
                    allocation.movesAtEntry[successor, default: []].append(contentsOf: moves)
                }
            }
        }
    }
}
