// The control-flow facts passes share: successors and predecessors, reverse
// postorder, dominators, the dominator tree, dominance frontiers, and the
// removal of unreachable blocks.
//
// Requires: a verified function (every jump target is a block of the function).
//
// Everything here is linear or nearly so in blocks plus edges, whatever the
// shape: a chain of a hundred thousand blocks, or one block with a hundred
// thousand predecessors. Dominators are Lengauer and Tarjan's (semidominators
// with path compression, O(E log N)); the iterative algorithm of Cooper,
// Harvey and Kennedy walks the dominator tree once per predecessor, which is
// quadratic when a block with many predecessors sits under a deep tree.
// Dominance is answered in constant time from a numbering of the dominator
// tree, and frontiers stop climbing the tree where the block is already
// recorded, so building them costs what they contain.

import KilnIL

/// Successors, predecessors, order and dominance of one function's blocks.
public struct ControlFlow: Sendable {
    /// Successors of each block, each listed once, in jump order.
    public let successors: Adjacency
    /// Predecessors of each block, each listed once, in block order.
    public let predecessors: Adjacency
    /// Reachable blocks in reverse postorder; the start block first.
    public let reversePostorder: [Int]
    /// Position of each block in `reversePostorder`, or -1 when unreachable.
    public let postorderRank: [Int]
    /// Immediate dominator of each reachable block (the start block is its own); -1 when unreachable.
    public let immediateDominator: [Int]
    /// Children of each block in the dominator tree, in reverse postorder.
    public let dominatorChildren: Adjacency
    /// Entry and exit numbers of a walk of the dominator tree: a dominates b exactly when
    /// a's interval contains b's.
    @usableFromInline let treeEntry: [Int32], treeExit: [Int32]

    /// Whether the dominator facts were computed (`init(_:dominators:)`).
    public let hasDominators: Bool

    /// The facts of `function`; without `dominators`, only edges and orders (the dominator
    /// properties are then empty).
    public init(_ function: Function, dominators: Bool = true) {
        let count = function.blocks.count
        var from: [Int32] = [], to: [Int32] = []
        from.reserveCapacity(count * 2)
        to.reserveCapacity(count * 2)
        for (index, block) in function.blocks.enumerated() {
            let jump = block.jump
            guard jump.kind == .jmp || jump.kind == .jnz else { continue }
            from.append(Int32(index))
            to.append(Int32(jump.target.index))
            if jump.kind == .jnz, jump.otherTarget != jump.target {
                from.append(Int32(index))
                to.append(Int32(jump.otherTarget.index))
            }
        }
        successors = Adjacency(count: count, nodes: from, items: to)
        predecessors = Adjacency(count: count, nodes: to, items: from)

        // Depth-first search without recursion (functions may have many thousands of blocks):
        // preorder numbers and parents for the dominator computation, postorder for the rest.
        var preorder: [Int] = []
        var parent: [Int] = []
        var number = [Int](repeating: -1, count: count)
        var postorder: [Int] = []
        preorder.reserveCapacity(count)
        parent.reserveCapacity(count)
        postorder.reserveCapacity(count)
        var stack: [(block: Int, next: Int)] = []
        if count > 0 {
            number[0] = 0
            preorder.append(0)
            parent.append(-1)
            stack.append((0, successors.start[0]))
        }
        while let top = stack.last {
            if top.next < successors.start[top.block + 1] {
                stack[stack.count - 1].next += 1
                let successor = successors.items[top.next]
                if number[successor] < 0 {
                    number[successor] = preorder.count
                    preorder.append(successor)
                    parent.append(number[top.block])
                    stack.append((successor, successors.start[successor]))
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

        hasDominators = dominators
        guard dominators else {
            immediateDominator = []
            dominatorChildren = Adjacency(count: 0)
            treeEntry = []
            treeExit = []
            return
        }
        let idom = ControlFlow.dominators(preorder: preorder, parent: parent, number: number,
                                          predecessors: predecessors)
        var dominator = [Int](repeating: -1, count: count)
        for (index, block) in preorder.enumerated() { dominator[block] = preorder[idom[index]] }
        immediateDominator = dominator

        var childPairs: [(node: Int, item: Int)] = []
        childPairs.reserveCapacity(order.count)
        for block in order.dropFirst() { childPairs.append((dominator[block], block)) }
        let children = Adjacency(count: count, pairs: childPairs)
        dominatorChildren = children

        var entry = [Int32](repeating: -1, count: count), exit = [Int32](repeating: -1, count: count)
        var clock: Int32 = 0
        var walk: [(block: Int, next: Int)] = count > 0 ? [(0, children.start[0])] : []
        if count > 0 { entry[0] = 0 }
        while let top = walk.last {
            if top.next < children.start[top.block + 1] {
                walk[walk.count - 1].next += 1
                let child = children.items[top.next]
                clock += 1
                entry[child] = clock
                walk.append((child, children.start[child]))
            } else {
                exit[top.block] = clock
                walk.removeLast()
            }
        }
        treeEntry = entry
        treeExit = exit
    }

    /// Immediate dominators by Lengauer and Tarjan's algorithm, in preorder numbers: the
    /// result's entry i is the preorder number of the immediate dominator of preorder vertex i.
    static func dominators(preorder: [Int], parent: [Int], number: [Int], predecessors: Adjacency) -> [Int] {
        let n = preorder.count
        guard n > 1 else { return [Int](repeating: 0, count: n) }
        var semi = Array(0..<n)
        var label = Array(0..<n)
        var ancestor = [Int](repeating: -1, count: n)
        var idom = [Int](repeating: 0, count: n)
        // Vertices waiting in the bucket of their semidominator, as linked lists.
        var bucketHead = [Int](repeating: -1, count: n)
        var bucketNext = [Int](repeating: -1, count: n)
        var path: [Int] = []

        // The vertex of minimal semidominator on the path from v up to (not including) the
        // root of its tree in the forest, compressing the path on the way.
        func eval(_ v: Int) -> Int {
            guard ancestor[v] >= 0 else { return v }
            var x = v
            while ancestor[ancestor[x]] >= 0 {
                path.append(x)
                x = ancestor[x]
            }
            while let y = path.popLast() {
                let up = ancestor[y]
                if semi[label[up]] < semi[label[y]] { label[y] = label[up] }
                ancestor[y] = ancestor[up]
            }
            return label[v]
        }

        for w in stride(from: n - 1, through: 1, by: -1) {
            for predecessor in predecessors[preorder[w]] {
                let v = number[predecessor]
                guard v >= 0 else { continue }
                let u = eval(v)
                if semi[u] < semi[w] { semi[w] = semi[u] }
            }
            bucketNext[w] = bucketHead[semi[w]]
            bucketHead[semi[w]] = w
            let p = parent[w]
            ancestor[w] = p
            var v = bucketHead[p]
            while v >= 0 {
                let u = eval(v)
                idom[v] = semi[u] < semi[v] ? u : p
                v = bucketNext[v]
            }
            bucketHead[p] = -1
        }
        for w in 1..<n where idom[w] != semi[w] { idom[w] = idom[idom[w]] }
        idom[0] = 0
        return idom
    }

    /// Whether block `a` dominates block `b` (both reachable).
    @inlinable public func dominates(_ a: Int, _ b: Int) -> Bool {
        treeEntry[a] <= treeEntry[b] && treeExit[b] <= treeExit[a]
    }

    /// The dominance frontier of every block; each block's frontier lists blocks in reverse
    /// postorder.
    public func dominanceFrontiers() -> Adjacency {
        let count = immediateDominator.count
        var lastAdded = [Int](repeating: -1, count: count)
        var nodes: [Int32] = [], items: [Int32] = []
        for block in reversePostorder where predecessors.degree(block) >= 2 {
            for predecessor in predecessors[block] where postorderRank[predecessor] >= 0 {
                var runner = predecessor
                // Once a block already lists `block`, so does every block above it up to the
                // immediate dominator: an earlier walk went that way.
                while runner != immediateDominator[block], lastAdded[runner] != block {
                    lastAdded[runner] = block
                    nodes.append(Int32(runner))
                    items.append(Int32(block))
                    let up = immediateDominator[runner]
                    if up == runner { break }
                    runner = up
                }
            }
        }
        return Adjacency(count: count, nodes: nodes, items: items)
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
    stack.reserveCapacity(function.blocks.count + 1)
    var reached = 0
    while let block = stack.popLast() {
        guard !reachable[block] else { continue }
        reachable[block] = true
        reached += 1
        let jump = function.blocks[block].jump
        guard jump.kind == .jmp || jump.kind == .jnz else { continue }
        if !reachable[Int(jump.target.index)] { stack.append(Int(jump.target.index)) }
        if jump.kind == .jnz, !reachable[Int(jump.otherTarget.index)] { stack.append(Int(jump.otherTarget.index)) }
    }
    guard reached < function.blocks.count else { return }
    var newIndex = [Int](repeating: -1, count: function.blocks.count)
    var kept: [Int] = []
    kept.reserveCapacity(reached)
    for index in function.blocks.indices where reachable[index] {
        newIndex[index] = kept.count
        kept.append(index)
    }
    var blocks: [Block] = []
    var instructions: [Instruction] = []
    var phis: [Phi] = []
    var arguments: [PhiArgument] = []
    blocks.reserveCapacity(kept.count)
    instructions.reserveCapacity(function.instructions.count)
    phis.reserveCapacity(function.phis.count)
    arguments.reserveCapacity(function.phiArguments.count)
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
        if block.jump.kind == .jmp || block.jump.kind == .jnz {
            block.jump.target = BlockID(index: UInt32(newIndex[Int(block.jump.target.index)]))
            if block.jump.kind == .jnz {
                block.jump.otherTarget = BlockID(index: UInt32(newIndex[Int(block.jump.otherTarget.index)]))
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
