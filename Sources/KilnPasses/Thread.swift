// Jump threading: a branch on a phi goes straight to its target from each
// predecessor that brings a constant.
//
// C front ends compile `a && b` and `a || b` into blocks that only merge the
// constants 0 and 1 in a phi and branch on it:
//
//     @t  ... jmp @join          @join  %c =w phi @t 1, @f 0
//     @f  ... jmp @join                 jnz %c, @yes, @no
//
// From @t the branch always goes to @yes, from @f always to @no: this pass
// makes @t jump to @yes and @f to @no. Besides a jump less at run time, it
// removes paths the program can never take, and those paths make liveness
// imprecise: a variable written on the paths through @t and read after @yes
// looks live where @f comes from, and in a loop that makes it live around
// the whole loop (an interpreter's dispatch loop then carries dozens of such
// values on every back edge).
//
// A block qualifies when it has no instructions, only phis and its jump, and
// its phis are read by nothing but its own `jnz` and, on its own outgoing
// edges, the phis of its successors. Then a predecessor whose phi argument
// decides the branch (or any predecessor, when the block ends in `jmp`) can
// skip the block: it jumps to the target directly, and the target's phis get
// for that predecessor what they got from the block, with the block's own
// phis replaced by their argument for that predecessor. A predecessor that
// already jumps to the target keeps its edge through the block (two edges
// between the same blocks cannot carry different phi arguments). Skipped
// blocks with no predecessor left are removed. Phis of more than 64 arguments
// are not looked through (their arguments are searched), so the pass stays
// linear.
//
// It runs before SSA construction, on the phis the front end wrote, so that
// the temporaries SSA construction makes from stack slots are placed on the
// threaded graph. It needs no SSA form: a skipped block has no instructions,
// so a temporary read at the end of a predecessor has the value it would have
// had at the end of the skipped block.
//
// Requires: a verified function; unreachable blocks removed.
// Provides: no branch on a phi argument that is a constant, where the block
// qualifies; nothing else changes meaning.
// Invalidates: block ids (blocks may be removed), phi indices.

import KilnIL

/// Threads jumps through blocks that only branch on a phi of constants.
public func threadJumps(_ function: inout Function) {
    // Only a block without instructions can be skipped: most functions have none to look at.
    guard function.blocks.count > 2,
          function.blocks.dropFirst().contains(where: { $0.instructionCount == 0 && ($0.jump.kind == .jmp || $0.jump.kind == .jnz) })
    else { return }
    var threader = Threader(function)
    guard threader.run() else { return }
    threader.rebuild()
    function = threader.function
    removeUnreachableBlocks(&function)
}

private struct Threader {
    var function: Function
    /// Predecessors of each block, kept up to date as edges move.
    var predecessors: [[Int]]
    /// Each phi's arguments, once this pass has changed them (else `function.phiArguments`).
    var changedArguments: [Int: [PhiArgument]] = [:]
    /// How many times each temporary is read, and how many of those reads are allowed for a
    /// phi of a skippable block (its own `jnz`, phi arguments on its outgoing edges).
    var reads: [Int32]
    var phiBlock: [Int32]
    var changed = false

    init(_ function: Function) {
        self.function = function
        var predecessors = Array(repeating: [Int](), count: function.blocks.count)
        for (index, block) in function.blocks.enumerated() {
            let jump = block.jump
            guard jump.kind == .jmp || jump.kind == .jnz else { continue }
            predecessors[Int(jump.target.index)].append(index)
            if jump.kind == .jnz, jump.otherTarget != jump.target { predecessors[Int(jump.otherTarget.index)].append(index) }
        }
        self.predecessors = predecessors
        reads = Array(repeating: 0, count: function.temps.count)
        phiBlock = Array(repeating: -1, count: function.temps.count)
        for instruction in function.instructions {
            if instruction.arg0.isTemp { reads[Int(instruction.arg0.index)] += 1 }
            if instruction.arg1.isTemp { reads[Int(instruction.arg1.index)] += 1 }
        }
        for argument in function.phiArguments where argument.value.isTemp { reads[Int(argument.value.index)] += 1 }
        for (index, block) in function.blocks.enumerated() {
            if block.jump.arg.isTemp { reads[Int(block.jump.arg.index)] += 1 }
            for phi in function.phis[block.phiRange] { phiBlock[Int(phi.to.index)] = Int32(index) }
        }
    }

    func arguments(_ phi: Int) -> [PhiArgument] {
        changedArguments[phi] ?? Array(function.arguments(of: function.phis[phi]))
    }

    func argument(_ phi: Int, from block: Int) -> Value? {
        arguments(phi).first { Int($0.block.index) == block }?.value
    }

    /// The successors of a block, each once.
    func successors(_ block: Int) -> [Int] {
        let jump = function.blocks[block].jump
        switch jump.kind {
        case .jmp: return [Int(jump.target.index)]
        case .jnz: return jump.target == jump.otherTarget ? [Int(jump.target.index)] : [Int(jump.target.index), Int(jump.otherTarget.index)]
        default: return []
        }
    }

    /// Phis with more arguments than this are not looked through (each lookup is a search of
    /// the arguments; the bound keeps the pass linear when a block has very many predecessors).
    static let argumentLimit = 64

    func hasSmallPhis(_ block: Int) -> Bool {
        function.blocks[block].phiRange.allSatisfy { arguments($0).count <= Threader.argumentLimit }
    }

    /// Whether `block` can be skipped: no instructions, and its phis read only by its `jnz`
    /// and by its successors' phis on its edges.
    func isSkippable(_ block: Int) -> Bool {
        let current = function.blocks[block]
        guard block != 0, current.instructionCount == 0, current.jump.kind == .jmp || current.jump.kind == .jnz,
              !successors(block).contains(block), hasSmallPhis(block),
              successors(block).allSatisfy(hasSmallPhis) else { return false }
        if current.jump.kind == .jnz {
            guard current.jump.arg.isTemp, phiBlock[Int(current.jump.arg.index)] == Int32(block) else { return false }
        }
        for phiIndex in current.phiRange {
            let temp = Int(function.phis[phiIndex].to.index)
            var allowed: Int32 = current.jump.arg == .temp(UInt32(temp)) ? 1 : 0
            for successor in successors(block) {
                for other in function.blocks[successor].phiRange where argument(other, from: block) == .temp(UInt32(temp)) {
                    allowed += 1
                }
            }
            if allowed != reads[temp] { return false }
        }
        return true
    }

    /// Where `predecessor` goes when it skips `block`, if it can.
    func destination(of predecessor: Int, skipping block: Int) -> Int? {
        let jump = function.blocks[block].jump
        if jump.kind == .jmp { return Int(jump.target.index) }
        let condition = Int(jump.arg.index)
        let phi = function.blocks[block].phiRange.first { Int(function.phis[$0].to.index) == condition }!
        guard let value = argument(phi, from: predecessor), value.isConstant else { return nil }
        let constant = function.constants[Int(value.index)]
        guard constant.kind == .bits else { return nil }
        return Int((UInt32(truncatingIfNeeded: constant.bits) != 0 ? jump.target : jump.otherTarget).index)
    }

    /// Threads every edge it can; returns whether anything changed.
    mutating func run() -> Bool {
        var work = Array(function.blocks.indices.reversed())
        var queued = [Bool](repeating: true, count: function.blocks.count)
        // Each threaded edge removes an edge into a skippable block; the budget keeps the pass
        // linear even on graphs where threading could go on for long.
        var budget = 4 * function.blocks.count + 16
        while let block = work.popLast(), budget > 0 {
            queued[block] = false
            guard isSkippable(block) else { continue }
            for predecessor in predecessors[block] where predecessor != block {
                guard let target = destination(of: predecessor, skipping: block), target != block,
                      !successors(predecessor).contains(target), hasSmallPhis(target) else { continue }
                budget -= 1
                redirect(predecessor, from: block, to: target)
                // The target has a new predecessor to thread, and the predecessor a new target
                // its own predecessors may now reach directly.
                for changed in [target, predecessor] where !queued[changed] {
                    queued[changed] = true
                    work.append(changed)
                }
            }
        }
        return changed
    }

    /// Makes `predecessor` jump to `target` instead of `block`, moving its phi arguments.
    mutating func redirect(_ predecessor: Int, from block: Int, to target: Int) {
        changed = true
        for phi in function.blocks[target].phiRange {
            guard var value = argument(phi, from: block) else { continue }
            if value.isTemp, phiBlock[Int(value.index)] == Int32(block) {
                let own = function.blocks[block].phiRange.first { function.phis[$0].to == value }!
                value = argument(own, from: predecessor)!
            }
            if value.isTemp { reads[Int(value.index)] += 1 }
            var list = arguments(phi)
            list.append(PhiArgument(block: BlockID(index: UInt32(predecessor)), value: value, location: function.phis[phi].location))
            changedArguments[phi] = list
        }
        for phi in function.blocks[block].phiRange {
            var list = arguments(phi)
            if let removed = list.firstIndex(where: { Int($0.block.index) == predecessor }) {
                if list[removed].value.isTemp { reads[Int(list[removed].value.index)] -= 1 }
                list.remove(at: removed)
            }
            changedArguments[phi] = list
        }
        var jump = function.blocks[predecessor].jump
        let blockID = BlockID(index: UInt32(block)), targetID = BlockID(index: UInt32(target))
        if jump.target == blockID { jump.target = targetID }
        if jump.kind == .jnz, jump.otherTarget == blockID { jump.otherTarget = targetID }
        function.blocks[predecessor].jump = jump
        function.blocks[predecessor].fallsThrough = false
        predecessors[block].removeAll { $0 == predecessor }
        predecessors[target].append(predecessor)
    }

    /// Lays out the phi arguments again with the changes.
    mutating func rebuild() {
        var arguments: [PhiArgument] = []
        arguments.reserveCapacity(function.phiArguments.count)
        for index in function.phis.indices {
            let start = UInt32(arguments.count)
            arguments.append(contentsOf: self.arguments(index))
            function.phis[index].argumentStart = start
            function.phis[index].argumentCount = UInt32(arguments.count) - start
        }
        function.phiArguments = arguments
    }
}
