// Global value numbering: one computation for each pure expression on each
// dominator-tree path.
//
// Walks the dominator tree with a scoped table from (operation, class,
// operands) to the temporary that first computed it. An instruction found in
// the table is dropped and its uses read the earlier temporary, whose
// definition dominates them. Operands are compared after earlier replacements
// and with equal constants identified (a function's constants are distinct);
// commutative integer operations and mirrored comparisons are put in one
// order first. Only pure operations take part (Editing.swift, `isPure`):
// loads may see different memory, `alloc` makes a new slot each time. Integer
// division is pure here: an identical division that dominates it would have
// trapped first.
//
// The table is a chained hash table whose entries are added and removed in
// stack order (a block's entries go when the walk leaves it), so removing an
// entry only pops it from the front of its chain.
//
// Requires: SSA form.
// Provides: no pure instruction repeats one that dominates it.
// Invalidates: instruction indices.

import KilnIL

/// Removes pure instructions that repeat a dominating one.
public func numberValues(_ function: inout Function) {
    guard !function.blocks.isEmpty else { return }
    let flow = ControlFlow(function)
    numberValues(&function, flow)
}

/// The same, sharing the control flow with the passes around it (computed with dominators if
/// absent or computed without; the graph does not change).
func numberValues(_ function: inout Function, flow shared: inout ControlFlow?) {
    guard !function.blocks.isEmpty else { return }
    if shared == nil || !shared!.hasDominators { shared = ControlFlow(function) }
    numberValues(&function, shared!)
}

/// The same, with the function's control flow already computed.
func numberValues(_ function: inout Function, _ flow: ControlFlow) {
    var substitution = Substitution(tempCount: function.temps.count)
    var table = ScopedExpressionTable(capacity: function.instructions.count)
    var removed = [Bool](repeating: false, count: function.instructions.count)
    var anyRemoved = false
    var stack: [(block: Int, mark: Int)] = [(0, -1)]
    while let (block, mark) = stack.popLast() {
        if mark >= 0 {
            table.pop(to: mark)
            continue
        }
        stack.append((block, table.count))
        for index in function.blocks[block].instructionRange {
            var instruction = function.instructions[index]
            guard instruction.op.isPure, instruction.to.isTemp else { continue }
            instruction.arg0 = substitution.resolve(instruction.arg0)
            instruction.arg1 = substitution.resolve(instruction.arg1)
            putConstantSecond(&instruction)
            if instruction.arg1.raw < instruction.arg0.raw, instruction.arg0.isTemp == instruction.arg1.isTemp {
                if instruction.op.isCommutativeInteger {
                    swap(&instruction.arg0, &instruction.arg1)
                } else if let mirrored = instruction.op.swappedComparison {
                    instruction.op = mirrored
                    swap(&instruction.arg0, &instruction.arg1)
                }
            }
            if let earlier = table.find(instruction) {
                substitution.replacement[Int(instruction.to.index)] = earlier
                removed[index] = true
                anyRemoved = true
            } else {
                table.push(instruction)
            }
        }
        for child in flow.dominatorChildren[block].reversed() { stack.append((child, -1)) }
    }
    guard anyRemoved else { return }
    function.compact(keepingInstruction: { !removed[$0] })
    function.apply(substitution)
}

/// Expressions with the temporary that computed them, removable in stack order.
private struct ScopedExpressionTable {
    var buckets: [Int32]
    var entries: [(op: Opcode, cls: Class, arg0: Value, arg1: Value, result: Value, next: Int32)] = []
    let mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        buckets = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    var count: Int { entries.count }

    @inline(__always) func bucket(_ instruction: Instruction) -> Int {
        var value = UInt64(instruction.op.rawValue) | UInt64(instruction.cls.rawValue) << 8
        value = (value ^ UInt64(instruction.arg0.raw) << 16) &* 0x9E37_79B9_7F4A_7C15
        value = (value ^ UInt64(instruction.arg1.raw)) &* 0xC2B2_AE3D_27D4_EB4F
        return Int(truncatingIfNeeded: value >> 29) & mask
    }

    func find(_ instruction: Instruction) -> Value? {
        var entry = buckets[bucket(instruction)]
        while entry >= 0 {
            let candidate = entries[Int(entry)]
            if candidate.op == instruction.op, candidate.cls == instruction.cls, candidate.arg0 == instruction.arg0,
               candidate.arg1 == instruction.arg1 {
                return candidate.result
            }
            entry = candidate.next
        }
        return nil
    }

    mutating func push(_ instruction: Instruction) {
        let slot = bucket(instruction)
        entries.append((instruction.op, instruction.cls, instruction.arg0, instruction.arg1, instruction.to, buckets[slot]))
        buckets[slot] = Int32(entries.count - 1)
    }

    /// Removes the entries pushed after the table had `count` of them.
    mutating func pop(to count: Int) {
        while entries.count > count {
            let entry = entries.removeLast()
            let slot = bucket(Instruction(entry.op, entry.cls, to: entry.result, entry.arg0, entry.arg1, at: .none))
            buckets[slot] = entry.next
        }
    }
}
