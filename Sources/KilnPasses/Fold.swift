// Constant folding and copy propagation: sparse conditional constant
// propagation (Wegman and Zadeck) over SSA, with copies in the same lattice.
//
// Every temporary starts unknown and can only move down: to "equal to this
// constant", to "equal to that temporary" (a copy, or a phi whose arguments
// all agree), and finally to "itself". Blocks and edges start unreachable; a
// `jnz` on a known constant makes only one successor reachable, and phis meet
// only the arguments of reachable edges. Two worklists drive it, as in the
// paper: edges that became reachable, and temporaries whose value went down
// (their users are evaluated again). A phi meets one argument at a time, as
// its edge becomes reachable or its value goes down, so a phi of a hundred
// thousand arguments costs a hundred thousand steps, not their square.
//
// An undefined argument (`Constant.undefined`, left by SSA construction)
// agrees with any constant, but not with a temporary: a phi of `%x` and
// undefined stays a phi, because `%x` need not be defined on the undefined
// path.
//
// Then every use is rewritten to the value it equals, the definitions so
// replaced are dropped, `jnz` on a constant becomes `jmp`, and blocks that
// became unreachable go, with their phi arguments. A temporary is replaced by
// another only when both have the same class: a `%x =w copy %l` stays a copy.
// Thread-local addresses are not propagated (each use would cost a call to
// find the thread's block). The arithmetic itself, with what is left to run
// time, is in Fold+Evaluate.swift.
//
// Requires: SSA form (SSA.swift); unreachable blocks removed.
// Provides: no instruction or phi whose value is a known constant or another
// temporary of its class; no `jnz` on a constant; every block reachable;
// integer operations with one constant operand have it second where swapping
// is exact (commutative operations, mirrored comparisons).
// Invalidates: block ids (blocks may be removed); instruction and phi indices.

import KilnIL

/// Folds constants, propagates copies and removes branches that cannot be taken.
public func foldConstants(_ function: inout Function) {
    var flow: ControlFlow?
    foldConstants(&function, flow: &flow)
}

/// The same, sharing the control flow with the passes around it: `flow` is computed if absent,
/// and set to nil when a branch became a jump (the graph changed).
func foldConstants(_ function: inout Function, flow: inout ControlFlow?) {
    guard !function.blocks.isEmpty else { return }
    if flow == nil { flow = ControlFlow(function, dominators: false) }
    var folder = Folder(function, flow!)
    folder.propagate()
    if folder.rewrite() {
        flow = nil
        function = folder.function
        removeUnreachableBlocks(&function)
    } else {
        function = folder.function
    }
}

private struct Folder {
    var function: Function
    let flow: ControlFlow
    var pool: ConstantPool
    /// The lattice: `.none` unknown, `.temp(self)` not known, any other value the one it equals.
    var known: [Value]
    var isExecutable: [Bool]
    /// Parallel to `flow.successors.items`.
    var isExecutableEdge: [Bool]
    /// The block of each instruction and of each phi; the phi of each phi argument.
    let blockOfInstruction: [Int32], blockOfPhi: [Int32], phiOfArgument: [Int32]
    /// The existing phi arguments, by the predecessor they come from.
    let argumentsFrom: Adjacency
    /// Who reads each temporary: instruction i as 3i, phi argument a as 3a + 1, the jump of
    /// block b as 3b + 2.
    let users: Adjacency
    /// Phis that met an undefined argument.
    var sawUndefined: [Bool]
    /// Blocks that became reachable after the sweep went past them.
    var blockWork: [Int] = []
    var tempWork: [Int] = []
    /// How far the reverse-postorder sweep has gone.
    var visitedUpTo = 0

    init(_ function: Function, _ flow: ControlFlow) {
        self.function = function
        self.flow = flow
        pool = ConstantPool(function)
        known = Array(repeating: .none, count: function.temps.count)
        isExecutable = Array(repeating: false, count: function.blocks.count)
        isExecutableEdge = Array(repeating: false, count: flow.successors.items.count)
        sawUndefined = Array(repeating: false, count: function.phis.count)
        var instructionBlocks = [Int32](repeating: 0, count: function.instructions.count)
        var phiBlocks = [Int32](repeating: 0, count: function.phis.count)
        var argumentPhis = [Int32](repeating: 0, count: function.phiArguments.count)
        var userTemps: [Int32] = [], userCodes: [Int32] = []
        let readers = 2 * function.instructions.count + function.phiArguments.count + function.blocks.count
        userTemps.reserveCapacity(readers)
        userCodes.reserveCapacity(readers)
        func read(_ value: Value, _ code: Int) {
            guard value.isTemp else { return }
            userTemps.append(Int32(value.index))
            userCodes.append(Int32(code))
        }
        for (blockIndex, block) in function.blocks.enumerated() {
            for index in block.instructionRange {
                instructionBlocks[index] = Int32(blockIndex)
                read(function.instructions[index].arg0, 3 * index)
                read(function.instructions[index].arg1, 3 * index)
            }
            for index in block.phiRange {
                phiBlocks[index] = Int32(blockIndex)
                let phi = function.phis[index]
                for argument in Int(phi.argumentStart)..<Int(phi.argumentStart + phi.argumentCount) {
                    argumentPhis[argument] = Int32(index)
                    read(function.phiArguments[argument].value, 3 * argument + 1)
                }
            }
            read(block.jump.arg, 3 * blockIndex + 2)
        }
        blockOfInstruction = instructionBlocks
        blockOfPhi = phiBlocks
        phiOfArgument = argumentPhis
        users = Adjacency(count: function.temps.count, nodes: userTemps, items: userCodes)
        argumentsFrom = Adjacency(count: function.blocks.count,
                                  nodes: function.phiArguments.map { Int32($0.block.index) },
                                  items: (0..<function.phiArguments.count).map { Int32($0) })
    }

    /// Runs to the fixed point. Blocks are visited in reverse postorder, each once when it
    /// becomes reachable, and changed temporaries are drained before the next block, so most
    /// instructions see their operands' final values the first time they are evaluated.
    mutating func propagate() {
        isExecutable[0] = true
        var cursor = 0
        while true {
            if let temp = tempWork.popLast() {
                for code in users[temp] { revisit(code) }
            } else if let block = blockWork.popLast() {
                visit(block)
            } else {
                while cursor < flow.reversePostorder.count, !isExecutable[flow.reversePostorder[cursor]] { cursor += 1 }
                guard cursor < flow.reversePostorder.count else { break }
                visit(flow.reversePostorder[cursor])
                cursor += 1
            }
            visitedUpTo = cursor
        }
    }

    mutating func visit(_ block: Int) {
        for index in function.blocks[block].instructionRange { evaluateInstruction(index) }
        visitJump(block)
    }

    /// Evaluates a reader of a temporary whose value went down.
    mutating func revisit(_ code: Int) {
        let index = code / 3
        switch code % 3 {
        case 0:
            // Values only go down: an instruction already at "not known" cannot change.
            let to = function.instructions[index].to
            if to.isTemp, known[Int(to.index)] != to, isExecutable[Int(blockOfInstruction[index])] {
                evaluateInstruction(index)
            }
        case 1:
            let from = Int(function.phiArguments[index].block.index)
            let phiBlock = Int(blockOfPhi[Int(phiOfArgument[index])])
            if let edge = edge(from, phiBlock), isExecutableEdge[edge] { meetArgument(index) }
        default:
            if isExecutable[index] { visitJump(index) }
        }
    }

    /// The position of the edge `from -> to` in `flow.successors.items`.
    func edge(_ from: Int, _ to: Int) -> Int? {
        for position in flow.successors.start[from]..<flow.successors.start[from + 1]
        where flow.successors.items[position] == to {
            return position
        }
        return nil
    }

    mutating func evaluateInstruction(_ index: Int) {
        let instruction = function.instructions[index]
        guard instruction.to.isTemp else { return }
        set(instruction.to, evaluate(instruction))
    }

    mutating func visitJump(_ block: Int) {
        let jump = function.blocks[block].jump
        switch jump.kind {
        case .jmp:
            markEdge(from: block, at: flow.successors.start[block])
        case .jnz:
            guard let condition = operand(jump.arg) else { return }
            if condition.isConstant, function.constants[Int(condition.index)].kind == .bits {
                let taken = UInt32(truncatingIfNeeded: function.constants[Int(condition.index)].bits) != 0
                markEdge(from: block, at: edge(block, Int((taken ? jump.target : jump.otherTarget).index))!)
            } else {
                for position in flow.successors.start[block]..<flow.successors.start[block + 1] {
                    markEdge(from: block, at: position)
                }
            }
        default:
            break
        }
    }

    mutating func markEdge(from block: Int, at position: Int) {
        guard !isExecutableEdge[position] else { return }
        isExecutableEdge[position] = true
        let target = flow.successors.items[position]
        for argument in argumentsFrom[block] where Int(blockOfPhi[Int(phiOfArgument[argument])]) == target {
            meetArgument(argument)
        }
        if !isExecutable[target] {
            isExecutable[target] = true
            // The reverse-postorder sweep visits it, unless it has already gone past.
            if flow.postorderRank[target] < visitedUpTo { blockWork.append(target) }
        }
    }

    /// Lowers the lattice value of `temp`; a temporary of another class stands for nothing.
    mutating func set(_ temp: Value, _ value: Value) {
        let index = Int(temp.index)
        var value = value
        if value.isTemp, value != temp, function.temps[Int(value.index)].cls != function.temps[index].cls {
            value = temp
        }
        if known[index] != value {
            known[index] = value
            tempWork.append(index)
        }
    }

    /// What an operand is known to equal; nil while unknown.
    func operand(_ value: Value) -> Value? {
        guard value.isTemp else { return value }
        let current = known[Int(value.index)]
        return current.isNone ? nil : current
    }

    mutating func constant(_ constant: Constant) -> Value {
        pool.value(constant, in: &function)
    }

    func isUndefined(_ value: Value) -> Bool {
        value.isConstant && function.constants[Int(value.index)].isUndefined
    }

    /// Meets one phi argument (on a reachable edge) into the phi's value.
    mutating func meetArgument(_ index: Int) {
        let phiIndex = Int(phiOfArgument[index])
        let phi = function.phis[phiIndex]
        let current = known[Int(phi.to.index)]
        guard current != phi.to, var value = operand(function.phiArguments[index].value), value != phi.to else { return }
        if isUndefined(value) {
            sawUndefined[phiIndex] = true
            if current.isNone {
                set(phi.to, value)
            } else if current.isTemp {
                set(phi.to, phi.to)
            }
            return
        }
        if value.isConstant {
            value = constant(function.constants[Int(value.index)].normalized(for: phi.cls))
        } else if sawUndefined[phiIndex] {
            set(phi.to, phi.to)
            return
        }
        if current.isNone || isUndefined(current) {
            set(phi.to, value)
        } else if current != value {
            set(phi.to, phi.to)
        }
    }

    mutating func evaluate(_ instruction: Instruction) -> Value {
        let op = instruction.op
        guard op.isPure else { return instruction.to }
        let arity = instruction.arg1.isNone ? 1 : 2
        guard let a = operand(instruction.arg0) else { return .none }
        let b = arity == 2 ? operand(instruction.arg1) : Value.none
        guard let b else { return .none }
        if op == .copy && a.isTemp { return a }
        if (op == .mul || op == .and) && instruction.cls.isInteger && (isZero(a) || isZero(b)) {
            return constant(Constant(bits: 0))
        }
        guard a.isConstant, arity == 1 || b.isConstant else { return instruction.to }
        let first = function.constants[Int(a.index)]
        let second = arity == 2 ? function.constants[Int(b.index)] : nil
        guard let result = KilnPasses.evaluate(op, instruction.cls, first, second),
              !(result.kind == .address && result.isThreadLocal) else { return instruction.to }
        return constant(result)
    }

    func isZero(_ value: Value) -> Bool {
        guard value.isConstant else { return false }
        let constant = function.constants[Int(value.index)]
        return constant.kind == .bits && constant.bits == 0
    }

    /// Replaces what is known, drops what was replaced, turns decided branches into jumps;
    /// returns whether a branch became a jump.
    mutating func rewrite() -> Bool {
        var substitution = Substitution(tempCount: function.temps.count)
        for temp in known.indices where !known[temp].isNone && known[temp] != .temp(UInt32(temp)) {
            substitution.replacement[temp] = known[temp]
        }
        let replacement = substitution.replacement
        let instructions = function.instructions, phis = function.phis
        function.compact(
            keepingInstruction: { index in
                let to = instructions[index].to
                return !to.isTemp || replacement[Int(to.index)].isNone
            },
            keepingPhi: { index in replacement[Int(phis[index].to.index)].isNone })
        function.apply(substitution)
        for index in function.instructions.indices { putConstantSecond(&function.instructions[index]) }
        var decided = false
        for index in function.blocks.indices where function.blocks[index].jump.kind == .jnz {
            let jump = function.blocks[index].jump
            guard jump.arg.isConstant, function.constants[Int(jump.arg.index)].kind == .bits else { continue }
            decided = true
            let taken = UInt32(truncatingIfNeeded: function.constants[Int(jump.arg.index)].bits) != 0
            function.blocks[index].jump = Jump(kind: .jmp, target: taken ? jump.target : jump.otherTarget,
                                               at: jump.location)
            function.blocks[index].fallsThrough = false
        }
        let blocks = function.blocks
        function.removePhiArguments { block, argument in
            let jump = blocks[Int(argument.block.index)].jump
            let target = BlockID(index: UInt32(block))
            switch jump.kind {
            case .jmp: return jump.target != target
            case .jnz: return jump.target != target && jump.otherTarget != target
            default: return true
            }
        }
        return decided
    }
}

/// `op c, %x` becomes `op %x, c` when that computes the same (immediates go second in x86 forms).
func putConstantSecond(_ instruction: inout Instruction) {
    guard instruction.arg0.isConstant, instruction.arg1.isTemp else { return }
    if instruction.op.isCommutativeInteger {
        swap(&instruction.arg0, &instruction.arg1)
    } else if let swapped = instruction.op.swappedComparison {
        instruction.op = swapped
        swap(&instruction.arg0, &instruction.arg1)
    }
}
