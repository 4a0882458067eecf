// Loop-invariant code motion: a pure computation inside a loop whose operands
// do not change in the loop moves to the block that enters the loop.
//
// A loop is a header h and the blocks that reach one of h's back edges (an
// edge into h from a block h dominates) without passing through h. The pass
// needs a preheader: h must have exactly one predecessor outside the loop,
// and that block must end in `jmp h`; loops without one are left alone (no
// block is added). Instructions move to the end of the preheader, in an order
// in which each comes after what it reads.
//
// What moves: pure operations (Editing.swift, `isPure`) except integer
// division and remainder, which may trap and so must run only where the
// program runs them; everything else that is pure cannot fail, so running it
// once before the loop, even when the loop would not have run it, changes
// nothing but the time. An operand is invariant when it is a constant, is
// defined outside the loop, or is the result of an instruction that already
// moved. Headers are taken in reverse postorder, outer loops before the loops
// inside them, so an instruction that does not change in the outer loop moves
// all the way out, and one that changes only there moves out of the inner
// loop. Each instruction moves at most once.
//
// Cost: each loop's blocks are found by a walk over predecessors and sorted by
// reverse postorder; a function whose loops nest so deeply that these walks
// add up to more than a few times its size stops looking for more loops.
//
// Requires: SSA form; the function's control flow with dominators.
// Provides: no movable instruction left in a loop that has a preheader.
// Invalidates: instruction indices (the graph and the blocks stay).

import KilnIL

/// Moves loop-invariant pure computations to their loops' preheaders.
public func hoistLoopInvariants(_ function: inout Function) {
    guard !function.blocks.isEmpty else { return }
    hoistLoopInvariants(&function, ControlFlow(function))
}

/// The same, sharing the control flow with the passes around it (computed with dominators if
/// absent or computed without; the graph does not change).
func hoistLoopInvariants(_ function: inout Function, flow shared: inout ControlFlow?) {
    guard !function.blocks.isEmpty else { return }
    if shared == nil || !shared!.hasDominators { shared = ControlFlow(function) }
    hoistLoopInvariants(&function, shared!)
}

func hoistLoopInvariants(_ function: inout Function, _ flow: ControlFlow) {
    let blockCount = function.blocks.count
    // Only a function with a back edge has a loop.
    var hasLoop = false
    for block in 0..<blockCount where !hasLoop {
        for successor in flow.successors[block] where flow.dominates(successor, block) { hasLoop = true }
    }
    guard hasLoop else { return }

    // The block that defines each temporary (phis included); parameters are in block 0.
    var definingBlock = [Int32](repeating: -1, count: function.temps.count)
    for (index, block) in function.blocks.enumerated() {
        for instruction in function.instructions[block.instructionRange] where instruction.to.isTemp {
            definingBlock[Int(instruction.to.index)] = Int32(index)
        }
        for phi in function.phis[block.phiRange] { definingBlock[Int(phi.to.index)] = Int32(index) }
    }

    var loopOf = [Int32](repeating: -1, count: blockCount)
    var movedTo = [Int32](repeating: -1, count: function.instructions.count)
    var moveBlocks: [Int32] = [], moveInstructions: [Int32] = []
    var budget = 4 * (blockCount + function.instructions.count) + 64
    var body: [Int] = [], work: [Int] = []
    for header in flow.reversePostorder where header != 0 {
        var preheader = -1, outside = 0, hasBackEdge = false
        for predecessor in flow.predecessors[header] {
            if flow.dominates(header, predecessor) {
                hasBackEdge = true
            } else {
                outside += 1
                preheader = predecessor
            }
        }
        guard hasBackEdge, outside == 1, function.blocks[preheader].jump.kind == .jmp else { continue }

        // The loop's blocks: backwards from the back edges, not past the header.
        let stamp = Int32(header)
        body.removeAll(keepingCapacity: true)
        loopOf[header] = stamp
        body.append(header)
        for predecessor in flow.predecessors[header] where flow.dominates(header, predecessor) && loopOf[predecessor] != stamp {
            loopOf[predecessor] = stamp
            work.append(predecessor)
        }
        while let block = work.popLast() {
            body.append(block)
            budget -= 1
            for predecessor in flow.predecessors[block] where loopOf[predecessor] != stamp {
                loopOf[predecessor] = stamp
                work.append(predecessor)
            }
        }
        budget -= body.count
        if budget < 0 { break }
        body.sort { flow.postorderRank[$0] < flow.postorderRank[$1] }

        func isInvariant(_ value: Value) -> Bool {
            guard value.isTemp else { return true }
            let block = definingBlock[Int(value.index)]
            return block >= 0 && loopOf[Int(block)] != stamp
        }
        for block in body {
            for index in function.blocks[block].instructionRange where movedTo[index] < 0 {
                let instruction = function.instructions[index]
                guard instruction.to.isTemp, isMovable(instruction.op),
                      isInvariant(instruction.arg0), isInvariant(instruction.arg1) else { continue }
                movedTo[index] = Int32(preheader)
                definingBlock[Int(instruction.to.index)] = Int32(preheader)
                moveBlocks.append(Int32(preheader))
                moveInstructions.append(Int32(index))
            }
        }
    }
    guard !moveInstructions.isEmpty else { return }

    // Lay the instructions out again: each block keeps what stayed and ends with what moved
    // into it, in the order it moved.
    let arriving = Adjacency(count: blockCount, nodes: moveBlocks, items: moveInstructions)
    var instructions: [Instruction] = []
    instructions.reserveCapacity(function.instructions.count)
    for block in 0..<blockCount {
        let start = instructions.count
        for index in function.blocks[block].instructionRange where movedTo[index] < 0 {
            instructions.append(function.instructions[index])
        }
        for index in arriving[block] { instructions.append(function.instructions[index]) }
        function.blocks[block].instructionStart = UInt32(start)
        function.blocks[block].instructionCount = UInt32(instructions.count - start)
    }
    function.instructions = instructions
}

/// Worth a register for the whole loop, and unable to trap: multiplication and conversions.
/// Address arithmetic (`add` of an offset) stays: the code generator folds it into the
/// memory operands that use it, and moved out of a large loop it would only hold registers.
private func isMovable(_ op: Opcode) -> Bool {
    switch op {
    case .mul, .swtof, .uwtof, .sltof, .ultof, .stosi, .stoui, .dtosi, .dtoui, .exts, .truncd: true
    default: false
    }
}
