// The control-flow facts passes share: predecessors, reverse postorder,
// dominators, dominance frontiers, and the removal of unreachable blocks.
//
// Requires: a verified function (every jump target is a block of the function).
// Dominators are computed with the iterative algorithm of Cooper, Harvey and
// Kennedy over reverse postorder; it is simple and, for the shallow CFGs that
// compilers emit, as fast as Lengauer-Tarjan.

import KilnIL

/// Predecessors, order and dominance of one function's blocks.
public struct ControlFlow: Sendable {
    /// Predecessors of each block, each listed once.
    public let predecessors: [[Int]]
    /// Successors of each block, each listed once.
    public let successors: [[Int]]
    /// Reachable blocks in reverse postorder; the start block first.
    public let reversePostorder: [Int]
    /// Position of each block in `reversePostorder`, or -1 when unreachable.
    public let postorderRank: [Int]
    /// Immediate dominator of each reachable block (the start block is its own); -1 when unreachable.
    public let immediateDominator: [Int]
    /// Children of each block in the dominator tree.
    public let dominatorChildren: [[Int]]

    public init(_ function: Function) {
        let count = function.blocks.count
        var successors = Array(repeating: [Int](), count: count)
        var predecessors = Array(repeating: [Int](), count: count)
        for (index, block) in function.blocks.enumerated() {
            for target in block.jump.successors where !successors[index].contains(Int(target.index)) {
                successors[index].append(Int(target.index))
                predecessors[Int(target.index)].append(index)
            }
        }
        self.successors = successors
        self.predecessors = predecessors

        // Depth-first postorder without recursion (functions may have many thousands of blocks).
        var postorder: [Int] = []
        var visited = [Bool](repeating: false, count: count)
        var stack: [(block: Int, next: Int)] = []
        if count > 0 {
            visited[0] = true
            stack.append((0, 0))
        }
        while let top = stack.last {
            if top.next < successors[top.block].count {
                stack[stack.count - 1].next += 1
                let successor = successors[top.block][top.next]
                if !visited[successor] {
                    visited[successor] = true
                    stack.append((successor, 0))
                }
            } else {
                postorder.append(top.block)
                stack.removeLast()
            }
        }
        let order = Array(postorder.reversed())
        var rank = [Int](repeating: -1, count: count)
        for (position, block) in order.enumerated() { rank[block] = position }
        reversePostorder = order
        postorderRank = rank

        var dominator = [Int](repeating: -1, count: count)
        if count > 0 { dominator[0] = 0 }
        var changed = true
        while changed {
            changed = false
            for block in order.dropFirst() {
                var candidate = -1
                for predecessor in predecessors[block] where dominator[predecessor] != -1 {
                    if candidate == -1 {
                        candidate = predecessor
                    } else {
                        var a = candidate, b = predecessor
                        while a != b {
                            while rank[a] > rank[b] { a = dominator[a] }
                            while rank[b] > rank[a] { b = dominator[b] }
                        }
                        candidate = a
                    }
                }
                if candidate != dominator[block] {
                    dominator[block] = candidate
                    changed = true
                }
            }
        }
        immediateDominator = dominator
        var children = Array(repeating: [Int](), count: count)
        for block in order.dropFirst() { children[dominator[block]].append(block) }
        dominatorChildren = children
    }

    /// Whether block `a` dominates block `b` (both reachable).
    public func dominates(_ a: Int, _ b: Int) -> Bool {
        var current = b
        while true {
            if current == a { return true }
            let up = immediateDominator[current]
            if up == current || up < 0 { return false }
            current = up
        }
    }

    /// The dominance frontier of every block.
    public func dominanceFrontiers() -> [[Int]] {
        var frontiers = Array(repeating: [Int](), count: predecessors.count)
        for block in reversePostorder where predecessors[block].count >= 2 {
            for predecessor in predecessors[block] where postorderRank[predecessor] >= 0 {
                var runner = predecessor
                while runner != immediateDominator[block] {
                    if !frontiers[runner].contains(block) { frontiers[runner].append(block) }
                    let up = immediateDominator[runner]
                    if up == runner { break }
                    runner = up
                }
            }
        }
        return frontiers
    }
}

/// Drops blocks that cannot be reached from the start block, and the phi
/// arguments that came from them.
///
/// Provides: every block reachable; block order otherwise unchanged.
/// Invalidates: block ids (a `ControlFlow` of the old function).
public func removeUnreachableBlocks(_ function: inout Function) {
    // A plain depth-first search: most functions have no unreachable block, and need no more.
    var reachable = [Bool](repeating: false, count: function.blocks.count)
    var stack: [Int] = function.blocks.isEmpty ? [] : [0]
    var reached = 0
    while let block = stack.popLast() {
        guard !reachable[block] else { continue }
        reachable[block] = true
        reached += 1
        for target in function.blocks[block].jump.successors where !reachable[Int(target.index)] {
            stack.append(Int(target.index))
        }
    }
    guard reached < function.blocks.count else { return }
    var newIndex = [Int](repeating: -1, count: function.blocks.count)
    var kept: [Int] = []
    for index in function.blocks.indices where reachable[index] {
        newIndex[index] = kept.count
        kept.append(index)
    }
    var blocks: [Block] = []
    var instructions: [Instruction] = []
    var phis: [Phi] = []
    var arguments: [PhiArgument] = []
    for old in kept {
        var block = function.blocks[old]
        let start = UInt32(instructions.count)
        instructions.append(contentsOf: function.instructions[block.instructionRange])
        block.instructionStart = start
        let phiStart = UInt32(phis.count)
        for var phi in function.phis[block.phiRange] {
            let argumentStart = UInt32(arguments.count)
            for var argument in function.arguments(of: phi) where newIndex[Int(argument.block.index)] >= 0 {
                argument.block = BlockID(index: UInt32(newIndex[Int(argument.block.index)]))
                arguments.append(argument)
            }
            phi.argumentStart = argumentStart
            phi.argumentCount = UInt32(arguments.count) - argumentStart
            phis.append(phi)
        }
        block.phiStart = phiStart
        for target in [\Jump.target, \Jump.otherTarget] {
            let index = Int(block.jump[keyPath: target].index)
            if block.jump.kind == .jmp || block.jump.kind == .jnz, newIndex[index] >= 0 {
                block.jump[keyPath: target] = BlockID(index: UInt32(newIndex[index]))
            }
        }
        // A fall-through into a removed block cannot happen: the block after a reachable one
        // that falls through is reachable. But a kept block may now be followed by another.
        if block.fallsThrough, block.jump.target.index != UInt32(blocks.count + 1) { block.fallsThrough = false }
        blocks.append(block)
    }
    function.blocks = blocks
    function.instructions = instructions
    function.phis = phis
    function.phiArguments = arguments
}
