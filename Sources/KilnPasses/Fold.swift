// Constant folding and copy propagation: sparse conditional constant
// propagation (Wegman and Zadeck) over SSA, with copies in the same lattice.
//
// Every temporary starts unknown and can only move down: to "equal to this
// constant", to "equal to that temporary" (a copy, or a phi whose arguments
// all agree), and finally to "itself". Blocks start unreachable; a `jnz` on a
// known constant makes only one successor reachable, and phis meet only the
// arguments of reachable edges. The lattice is iterated in reverse postorder
// until nothing changes. Then every use is rewritten to the value it equals,
// the definitions so replaced are dropped, `jnz` on a constant becomes `jmp`,
// and blocks that became unreachable go, with their phi arguments.
//
// A temporary is replaced by another only when both have the same class: a
// `%x =w copy %l` stays a copy. Thread-local addresses are not propagated
// (each use would cost a call to find the thread's block). The arithmetic
// itself, with what is left to run time, is in Fold+Evaluate.swift.
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
    guard !function.blocks.isEmpty else { return }
    var folder = Folder(function)
    folder.propagate()
    folder.rewrite()
    function = folder.function
    removeUnreachableBlocks(&function)
}

private struct Folder {
    var function: Function
    let flow: ControlFlow
    var pool: ConstantPool
    /// The lattice: `.none` unknown, `.temp(self)` not known, any other value the one it equals.
    var known: [Value]
    var isExecutable: [Bool]
    var executableEdges: Set<Int> = []
    var changed = false

    init(_ function: Function) {
        self.function = function
        flow = ControlFlow(function)
        pool = ConstantPool(function)
        known = Array(repeating: .none, count: function.temps.count)
        isExecutable = Array(repeating: false, count: function.blocks.count)
    }

    func edgeKey(_ from: Int, _ to: Int) -> Int { from * function.blocks.count + to }

    mutating func propagate() {
        isExecutable[0] = true
        repeat {
            changed = false
            for block in flow.reversePostorder where isExecutable[block] { visit(block) }
        } while changed
    }

    mutating func visit(_ blockIndex: Int) {
        let block = function.blocks[blockIndex]
        for phi in function.phis[block.phiRange] {
            set(phi.to, meet(phi, in: blockIndex))
        }
        for index in block.instructionRange {
            let instruction = function.instructions[index]
            guard instruction.to.isTemp else { continue }
            set(instruction.to, evaluate(instruction))
        }
        let jump = block.jump
        var targets = jump.successors
        if jump.kind == .jnz, let condition = operand(jump.arg), condition.isConstant {
            let constant = function.constants[Int(condition.index)]
            if constant.kind == .bits {
                targets = [UInt32(truncatingIfNeeded: constant.bits) != 0 ? jump.target : jump.otherTarget]
            }
        }
        for target in targets where executableEdges.insert(edgeKey(blockIndex, Int(target.index))).inserted {
            isExecutable[Int(target.index)] = true
            changed = true
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
            changed = true
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

    mutating func meet(_ phi: Phi, in block: Int) -> Value {
        var result = Value.none
        for argument in function.arguments(of: phi)
        where executableEdges.contains(edgeKey(Int(argument.block.index), block)) {
            guard var value = operand(argument.value), value != phi.to else { continue }
            if value.isConstant {
                value = constant(function.constants[Int(value.index)].normalized(for: phi.cls))
            }
            if result.isNone {
                result = value
            } else if result != value {
                return phi.to
            }
        }
        return result
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

    /// Replaces what is known, drops what was replaced, turns decided branches into jumps.
    mutating func rewrite() {
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
        for index in function.blocks.indices where function.blocks[index].jump.kind == .jnz {
            let jump = function.blocks[index].jump
            guard jump.arg.isConstant, function.constants[Int(jump.arg.index)].kind == .bits else { continue }
            let taken = UInt32(truncatingIfNeeded: function.constants[Int(jump.arg.index)].bits) != 0
            function.blocks[index].jump = Jump(kind: .jmp, target: taken ? jump.target : jump.otherTarget,
                                               at: jump.location)
            function.blocks[index].fallsThrough = false
        }
        let blocks = function.blocks
        function.removePhiArguments { block, argument in
            !blocks[Int(argument.block.index)].jump.successors.contains(BlockID(index: UInt32(block)))
        }
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
