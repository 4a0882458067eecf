// Global value numbering: one computation for each pure expression on each
// dominator-tree path.
//
// Walks the dominator tree with a scoped table from (operation, class,
// operands) to the temporary that first computed it. An instruction found in
// the table is dropped and its uses read the earlier temporary, whose
// definition dominates them. Operands are compared after earlier replacements
// and with equal constants identified; commutative integer operations and
// mirrored comparisons are put in one order first. Only pure operations take
// part (Editing.swift, `isPure`): loads may see different memory, `alloc`
// makes a new slot each time. Integer division is pure here: an identical
// division that dominates it would have trapped first.
//
// Requires: SSA form.
// Provides: no pure instruction repeats one that dominates it.
// Invalidates: instruction indices.

import KilnIL

private struct Expression: Hashable {
    var op: Opcode
    var cls: Class
    var arg0: Value
    var arg1: Value
}

/// Removes pure instructions that repeat a dominating one.
public func numberValues(_ function: inout Function) {
    guard !function.blocks.isEmpty else { return }
    let flow = ControlFlow(function)
    let pool = ConstantPool(function)
    var substitution = Substitution(tempCount: function.temps.count)
    var table: [Expression: Value] = [:]
    var removed = [Bool](repeating: false, count: function.instructions.count)
    var log: [Expression] = []
    var stack: [(block: Int, mark: Int)] = [(0, -1)]
    while let (block, mark) = stack.popLast() {
        if mark >= 0 {
            while log.count > mark { table.removeValue(forKey: log.removeLast()) }
            continue
        }
        stack.append((block, log.count))
        for index in function.blocks[block].instructionRange {
            var instruction = function.instructions[index]
            guard instruction.op.isPure, instruction.to.isTemp else { continue }
            instruction.arg0 = pool.canonical(substitution.resolve(instruction.arg0), in: function)
            instruction.arg1 = pool.canonical(substitution.resolve(instruction.arg1), in: function)
            putConstantSecond(&instruction)
            if instruction.arg1.raw < instruction.arg0.raw, instruction.arg0.isTemp == instruction.arg1.isTemp {
                if instruction.op.isCommutativeInteger {
                    swap(&instruction.arg0, &instruction.arg1)
                } else if let mirrored = instruction.op.swappedComparison {
                    instruction.op = mirrored
                    swap(&instruction.arg0, &instruction.arg1)
                }
            }
            let key = Expression(op: instruction.op, cls: instruction.cls, arg0: instruction.arg0, arg1: instruction.arg1)
            if let earlier = table[key] {
                substitution.replacement[Int(instruction.to.index)] = earlier
                removed[index] = true
            } else {
                table[key] = instruction.to
                log.append(key)
            }
        }
        for child in flow.dominatorChildren[block].reversed() { stack.append((child, -1)) }
    }
    guard removed.contains(true) else { return }
    function.compact(keepingInstruction: { !removed[$0] })
    function.apply(substitution)
}
