// SSA construction for temporaries that the input assigns more than once.
//
// QBE's IL may assign a temporary several times (non-SSA input); every later
// pass wants each temporary defined once, with phis where definitions meet.
// This pass is Cytron et al.'s: phis at the iterated dominance frontier of the
// defining blocks, kept only where the temporary is live (pruned SSA), then a
// renaming walk over the dominator tree.
//
// Requires: a verified function; unreachable blocks removed.
// Provides: every temporary defined exactly once (by a parameter, an
// instruction or a phi) and every use dominated by its definition; a use that
// no definition reaches reads the integer constant 0 (the IL leaves it
// undefined). Temporaries defined once whose uses all follow the definition are
// left untouched, as are temporaries the input already defines by a phi.
// Invalidates: liveness and any instruction or phi indices held across it.

import KilnIL

/// Rewrites `function` into SSA form. New temporaries are named `<old>.<n>` in `names`.
public func buildSSA(_ function: inout Function, names: inout NameTable) {
    let flow = ControlFlow(function)
    let candidates = findCandidates(function, flow)
    guard !candidates.isEmpty else { return }
    let live = Liveness(function, flow)
    let newPhis = placePhis(function, flow, candidates, live)
    var renamer = Renamer(function: function, flow: flow, candidates: candidates, newPhis: newPhis)
    renamer.run(names: &names)
    function = renamer.function
}

/// Temporaries that need renaming: defined more than once, or used where their one definition
/// does not reach first (another block, or earlier in the same block).
func findCandidates(_ function: Function, _ flow: ControlFlow) -> [Bool] {
    let count = function.temps.count
    var definitions = [Int](repeating: 0, count: count)
    var definingBlock = [Int](repeating: -1, count: count)
    var definedByPhi = [Bool](repeating: false, count: count)
    for (index, block) in function.blocks.enumerated() {
        for phi in function.phis[block.phiRange] {
            definitions[Int(phi.to.index)] += 1
            definingBlock[Int(phi.to.index)] = index
            definedByPhi[Int(phi.to.index)] = true
        }
        for instruction in function.instructions[block.instructionRange] where instruction.to.isTemp {
            definitions[Int(instruction.to.index)] += 1
            definingBlock[Int(instruction.to.index)] = index
        }
    }
    var candidate = definitions.map { $0 > 1 }
    // A single definition: every use must come after it in its block, or in a block it dominates.
    var seenDefinition = [Bool](repeating: false, count: count)
    func use(_ value: Value, in block: Int) {
        guard value.isTemp else { return }
        let temp = Int(value.index)
        guard definitions[temp] == 1, !candidate[temp], !definedByPhi[temp] else { return }
        let home = definingBlock[temp]
        if home == block ? !seenDefinition[temp] : !flow.dominates(home, block) { candidate[temp] = true }
    }
    for block in flow.reversePostorder {
        let range = function.blocks[block].instructionRange
        for instruction in function.instructions[range] {
            use(instruction.arg0, in: block)
            use(instruction.arg1, in: block)
            if instruction.to.isTemp { seenDefinition[Int(instruction.to.index)] = true }
        }
        use(function.blocks[block].jump.arg, in: block)
        for successor in flow.successors[block] {
            for phi in function.phis[function.blocks[successor].phiRange] {
                for argument in function.arguments(of: phi) where Int(argument.block.index) == block {
                    use(argument.value, in: block)
                }
            }
        }
    }
    return candidate
}

/// Live-in temporaries of each block, by backward dataflow.
struct Liveness {
    var liveIn: [BitSet]

    init(_ function: Function, _ flow: ControlFlow) {
        let blockCount = function.blocks.count
        let tempCount = function.temps.count
        var uses = Array(repeating: BitSet(capacity: tempCount), count: blockCount)
        var defs = Array(repeating: BitSet(capacity: tempCount), count: blockCount)
        var phiUses = Array(repeating: BitSet(capacity: tempCount), count: blockCount)
        for (index, block) in function.blocks.enumerated() {
            for phi in function.phis[block.phiRange] {
                defs[index].insert(Int(phi.to.index))
                for argument in function.arguments(of: phi) where argument.value.isTemp {
                    phiUses[Int(argument.block.index)].insert(Int(argument.value.index))
                }
            }
            func read(_ value: Value) {
                if value.isTemp, !defs[index].contains(Int(value.index)) { uses[index].insert(Int(value.index)) }
            }
            for instruction in function.instructions[block.instructionRange] {
                read(instruction.arg0)
                read(instruction.arg1)
                if instruction.to.isTemp { defs[index].insert(Int(instruction.to.index)) }
            }
            read(block.jump.arg)
        }
        liveIn = uses
        var liveOut = phiUses
        var changed = true
        while changed {
            changed = false
            for block in flow.reversePostorder.reversed() {
                for successor in flow.successors[block] { liveOut[block].formUnion(liveIn[successor]) }
                var updated = liveIn[block]
                updated.assign(liveOut[block], minus: defs[block], plus: uses[block])
                if updated != liveIn[block] {
                    liveIn[block] = updated
                    changed = true
                }
            }
        }
    }
}

/// For each block, the candidate temporaries that get a new phi there.
func placePhis(_ function: Function, _ flow: ControlFlow, _ candidates: [Bool], _ live: Liveness) -> [[Int]] {
    let frontiers = flow.dominanceFrontiers()
    var definingBlocks = Array(repeating: [Int](), count: function.temps.count)
    for (index, block) in function.blocks.enumerated() {
        for phi in function.phis[block.phiRange] where candidates[Int(phi.to.index)] {
            definingBlocks[Int(phi.to.index)].append(index)
        }
        for instruction in function.instructions[block.instructionRange]
        where instruction.to.isTemp && candidates[Int(instruction.to.index)] {
            if definingBlocks[Int(instruction.to.index)].last != index {
                definingBlocks[Int(instruction.to.index)].append(index)
            }
        }
    }
    var placed = Array(repeating: [Int](), count: function.blocks.count)
    var hasPhi = [Int](repeating: -1, count: function.blocks.count)
    var queued = [Int](repeating: -1, count: function.blocks.count)
    for temp in candidates.indices where candidates[temp] {
        var work = definingBlocks[temp]
        for block in work { queued[block] = temp }
        while let block = work.popLast() {
            for frontier in frontiers[block] where hasPhi[frontier] != temp {
                hasPhi[frontier] = temp
                guard live.liveIn[frontier].contains(temp) else { continue }
                placed[frontier].append(temp)
                if queued[frontier] != temp {
                    queued[frontier] = temp
                    work.append(frontier)
                }
            }
        }
    }
    return placed
}
