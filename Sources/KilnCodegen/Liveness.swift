// Liveness of the machine function's registers, block by block.
//
// Requires: a machine function from selection and its operand table
// (virtual registers may be written more than once: two-address forms, phi
// copies in each predecessor).
// Provides: for each block, the registers live on entry and on exit, each
// list in increasing register order; successors and predecessors.
//
// Computed one register at a time: from the blocks that read it before
// writing it, backwards over predecessors until a block that writes it. The
// work is the size of the result (blocks times the registers live in them),
// never blocks times all registers, and no bit set as wide as the function's
// registers is kept per block: a function of a hundred thousand blocks and as
// many registers costs what is live in it.

import KilnPasses

struct MachineLiveness {
    /// Registers live on entry to each block.
    var liveIn: Adjacency
    /// Registers live on exit from each block.
    var liveOut: Adjacency
    /// Successors and predecessors of each block.
    var successors: Adjacency
    var predecessors: Adjacency

    init(_ machine: MachineFunction, _ operands: OperandTable, registerCount: Int) {
        let blockCount = machine.blocks.count
        var edgeFrom: [Int32] = [], edgeTo: [Int32] = []
        edgeFrom.reserveCapacity(blockCount * 2)
        edgeTo.reserveCapacity(blockCount * 2)
        for block in 0..<blockCount {
            var first: Int32 = -1
            // Jumps end a block: at most `jcc; jcc; jmp`.
            let instructions = machine.blocks[block]
            for position in max(0, instructions.count - 3)..<instructions.count {
                let target: Int32
                switch instructions[position].op {
                case .jmp(let to), .jcc(_, let to): target = to
                default: continue
                }
                // A block ends in at most `jcc; jmp` (floats: `jcc; jcc; jmp`): few targets.
                if target == first || (edgeFrom.last == Int32(block) && edgeTo.last == target) { continue }
                if first < 0 { first = target }
                edgeFrom.append(Int32(block))
                edgeTo.append(target)
            }
        }
        successors = Adjacency(count: blockCount, nodes: edgeFrom, items: edgeTo)
        predecessors = Adjacency(count: blockCount, nodes: edgeTo, items: edgeFrom)

        // Which blocks write each register, and which read it before writing it.
        var lastWrite = [Int32](repeating: -1, count: registerCount)
        var lastRead = [Int32](repeating: -1, count: registerCount)
        // Sized for the usual case up front: growing these arrays was a good part of the cost.
        let expected = operands.registers.count + blockCount
        var writeRegisters: [Int32] = [], writeBlocks: [Int32] = []
        var readRegisters: [Int32] = [], readBlocks: [Int32] = []
        writeRegisters.reserveCapacity(expected)
        writeBlocks.reserveCapacity(expected)
        readRegisters.reserveCapacity(expected)
        readBlocks.reserveCapacity(expected)
        for block in 0..<blockCount {
            let here = Int32(block)
            for instruction in Int(operands.blockStart[block])..<Int(operands.blockStart[block + 1]) {
                for index in operands.uses(instruction) {
                    let register = Int(operands.registers[index])
                    guard lastWrite[register] != here, lastRead[register] != here else { continue }
                    lastRead[register] = here
                    readRegisters.append(Int32(register))
                    readBlocks.append(here)
                }
                for index in operands.defs(instruction) {
                    let register = Int(operands.registers[index])
                    guard lastWrite[register] != here else { continue }
                    lastWrite[register] = here
                    writeRegisters.append(Int32(register))
                    writeBlocks.append(here)
                }
            }
        }
        let writes = Adjacency(count: registerCount, nodes: writeRegisters, items: writeBlocks)
        let reads = Adjacency(count: registerCount, nodes: readRegisters, items: readBlocks)

        // Marks stamped with the register being followed, so nothing is cleared in between.
        var writesHere = [Int32](repeating: -1, count: blockCount)
        var isLiveIn = [Int32](repeating: -1, count: blockCount)
        var isLiveOut = [Int32](repeating: -1, count: blockCount)
        var inBlocks: [Int32] = [], inRegisters: [Int32] = []
        var outBlocks: [Int32] = [], outRegisters: [Int32] = []
        var work: [Int] = []
        inBlocks.reserveCapacity(expected)
        inRegisters.reserveCapacity(expected)
        outBlocks.reserveCapacity(expected)
        outRegisters.reserveCapacity(expected)
        work.reserveCapacity(blockCount)
        for register in 0..<registerCount where reads.degree(register) > 0 {
            let stamp = Int32(register)
            for block in writes[register] { writesHere[block] = stamp }
            for block in reads[register] {
                isLiveIn[block] = stamp
                work.append(block)
            }
            while let block = work.popLast() {
                inBlocks.append(Int32(block))
                inRegisters.append(stamp)
                for predecessor in predecessors[block] {
                    if isLiveOut[predecessor] != stamp {
                        isLiveOut[predecessor] = stamp
                        outBlocks.append(Int32(predecessor))
                        outRegisters.append(stamp)
                    }
                    if writesHere[predecessor] != stamp, isLiveIn[predecessor] != stamp {
                        isLiveIn[predecessor] = stamp
                        work.append(predecessor)
                    }
                }
            }
        }
        liveIn = Adjacency(count: blockCount, nodes: inBlocks, items: inRegisters)
        liveOut = Adjacency(count: blockCount, nodes: outBlocks, items: outRegisters)
    }
}
