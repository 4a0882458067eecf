// Liveness of the machine function's registers, block by block.
//
// Requires: a machine function from selection (virtual registers may be
// written more than once: two-address forms, phi copies in each predecessor).
// Provides: for each block, the registers live on entry and on exit, each
// list in increasing register order; every instruction's reads and writes.
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

    init(_ machine: MachineFunction, registerCount: Int) {
        let blockCount = machine.blocks.count
        var edgeFrom: [Int32] = [], edgeTo: [Int32] = []
        for block in 0..<blockCount {
            for successor in machine.successors(of: block) {
                edgeFrom.append(Int32(block))
                edgeTo.append(Int32(successor))
            }
        }
        successors = Adjacency(count: blockCount, nodes: edgeFrom, items: edgeTo)
        predecessors = Adjacency(count: blockCount, nodes: edgeTo, items: edgeFrom)

        // Which blocks write each register, and which read it before writing it.
        var lastWrite = [Int32](repeating: -1, count: registerCount)
        var lastRead = [Int32](repeating: -1, count: registerCount)
        var writeRegisters: [Int32] = [], writeBlocks: [Int32] = []
        var readRegisters: [Int32] = [], readBlocks: [Int32] = []
        var uses: [Reg] = [], defs: [Reg] = []
        for (index, block) in machine.blocks.enumerated() {
            let here = Int32(index)
            for instruction in block {
                machine.registers(of: instruction, uses: &uses, defs: &defs)
                for register in uses where lastWrite[Int(register)] != here && lastRead[Int(register)] != here {
                    lastRead[Int(register)] = here
                    readRegisters.append(register)
                    readBlocks.append(here)
                }
                for register in defs where lastWrite[Int(register)] != here {
                    lastWrite[Int(register)] = here
                    writeRegisters.append(register)
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
