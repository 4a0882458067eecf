// SSA construction for temporaries that the input assigns more than once.
//
// QBE's IL may assign a temporary several times (non-SSA input); every later
// pass wants each temporary defined once, with phis where definitions meet.
// This pass is Cytron et al.'s: phis at the iterated dominance frontier of the
// defining blocks, kept only where the temporary is live (pruned SSA), then a
// renaming walk over the dominator tree (SSA+Rename.swift).
//
// Liveness is computed per temporary, and only for the temporaries being
// renamed: from the blocks that read it before writing it, backwards over
// predecessors until a block that writes it. The cost is the size of its live
// range in blocks, not blocks times temporaries, so a function of a hundred
// thousand blocks with a few reassigned temporaries costs what it contains.
//
// Requires: a verified function; unreachable blocks removed.
// Provides: every temporary defined exactly once (by a parameter, an
// instruction or a phi) and every use dominated by its definition; a use that
// no definition reaches reads `Constant.undefined` (the IL leaves it
// undefined; it reads as 0, and a phi's copy of it may be left out).
// Temporaries defined once whose uses all follow the definition are left
// untouched, as are temporaries the input already defines by a phi.
// Invalidates: liveness and any instruction or phi indices held across it.

import KilnIL

/// Rewrites `function` into SSA form. New temporaries are named `<old>.<n>` in `names`.
public func buildSSA(_ function: inout Function, names: inout NameTable) {
    var flow: ControlFlow?
    buildSSA(&function, names: &names, flow: &flow, marks: NameMarks())
}

/// The same, sharing the control flow with the passes around it: `flow` is computed if absent
/// (with dominators), and stays valid afterwards (the graph does not change).
func buildSSA(_ function: inout Function, names: inout NameTable, flow shared: inout ControlFlow?, marks: NameMarks) {
    if shared == nil || !shared!.hasDominators { shared = ControlFlow(function) }
    let flow = shared!
    let candidates = findCandidates(function, flow)
    guard candidates.contains(true) else { return }
    let newPhis = placePhis(function, flow, candidates)
    var renamer = Renamer(function: function, flow: flow, candidates: candidates, newPhis: newPhis, marks: marks)
    renamer.run(names: &names)
    function = renamer.function
}

/// Temporaries that need renaming: defined more than once, or used where their one definition
/// does not reach first (another block it does not dominate, or earlier in the same block).
func findCandidates(_ function: Function, _ flow: ControlFlow) -> [Bool] {
    let count = function.temps.count
    var definitions = [Int32](repeating: 0, count: count)
    var definingBlock = [Int32](repeating: -1, count: count)
    var definedByPhi = [Bool](repeating: false, count: count)
    for (index, block) in function.blocks.enumerated() {
        for phi in function.phis[block.phiRange] {
            definitions[Int(phi.to.index)] += 1
            definingBlock[Int(phi.to.index)] = Int32(index)
            definedByPhi[Int(phi.to.index)] = true
        }
        for instruction in function.instructions[block.instructionRange] where instruction.to.isTemp {
            definitions[Int(instruction.to.index)] += 1
            definingBlock[Int(instruction.to.index)] = Int32(index)
        }
    }
    var candidate = definitions.map { $0 > 1 }
    // A single definition: every use must come after it in its block, or in a block it dominates.
    var seenDefinition = [Bool](repeating: false, count: count)
    func use(_ value: Value, in block: Int, atEnd: Bool) {
        guard value.isTemp else { return }
        let temp = Int(value.index)
        guard definitions[temp] == 1, !candidate[temp], !definedByPhi[temp] else { return }
        let home = Int(definingBlock[temp])
        if home == block ? !(atEnd || seenDefinition[temp]) : !flow.dominates(home, block) { candidate[temp] = true }
    }
    for block in flow.reversePostorder {
        for instruction in function.instructions[function.blocks[block].instructionRange] {
            use(instruction.arg0, in: block, atEnd: false)
            use(instruction.arg1, in: block, atEnd: false)
            if instruction.to.isTemp { seenDefinition[Int(instruction.to.index)] = true }
        }
        use(function.blocks[block].jump.arg, in: block, atEnd: true)
    }
    // A phi argument is read at the end of its predecessor.
    for argument in function.phiArguments { use(argument.value, in: Int(argument.block.index), atEnd: true) }
    return candidate
}

/// Where each candidate temporary is written and read, per block.
struct Occurrences {
    /// Blocks that write the temporary (a phi or an instruction), each once.
    var definitions: Adjacency
    /// Blocks that read the temporary before writing it, each once.
    var upwardUses: Adjacency
    /// Blocks at whose end a phi argument reads the temporary.
    var exitUses: Adjacency

    init(_ function: Function, _ candidates: [Bool]) {
        let count = function.temps.count
        var definitionTemps: [Int32] = [], definitionBlocks: [Int32] = []
        var useTemps: [Int32] = [], useBlocks: [Int32] = []
        var lastDefinition = [Int32](repeating: -1, count: count)
        var lastUse = [Int32](repeating: -1, count: count)
        func define(_ value: Value, _ block: Int32) {
            let temp = Int(value.index)
            guard value.isTemp, candidates[temp], lastDefinition[temp] != block else { return }
            lastDefinition[temp] = block
            definitionTemps.append(Int32(temp))
            definitionBlocks.append(block)
        }
        func read(_ value: Value, _ block: Int32) {
            let temp = Int(value.index)
            guard value.isTemp, candidates[temp], lastDefinition[temp] != block, lastUse[temp] != block else { return }
            lastUse[temp] = block
            useTemps.append(Int32(temp))
            useBlocks.append(block)
        }
        for (index, block) in function.blocks.enumerated() {
            let here = Int32(index)
            for phi in function.phis[block.phiRange] { define(phi.to, here) }
            for instruction in function.instructions[block.instructionRange] {
                read(instruction.arg0, here)
                read(instruction.arg1, here)
                define(instruction.to, here)
            }
            read(block.jump.arg, here)
        }
        var exitTemps: [Int32] = [], exitBlocks: [Int32] = []
        for argument in function.phiArguments where argument.value.isTemp && candidates[Int(argument.value.index)] {
            exitTemps.append(Int32(argument.value.index))
            exitBlocks.append(Int32(argument.block.index))
        }
        definitions = Adjacency(count: count, nodes: definitionTemps, items: definitionBlocks)
        upwardUses = Adjacency(count: count, nodes: useTemps, items: useBlocks)
        exitUses = Adjacency(count: count, nodes: exitTemps, items: exitBlocks)
    }
}

/// For each block, the candidate temporaries that get a new phi there (in increasing order).
func placePhis(_ function: Function, _ flow: ControlFlow, _ candidates: [Bool]) -> Adjacency {
    let occurrences = Occurrences(function, candidates)
    let frontiers = flow.dominanceFrontiers()
    let blockCount = function.blocks.count
    // Marks stamped with the temporary being placed, so nothing is cleared between temporaries.
    var defines = [Int](repeating: -1, count: blockCount)
    var liveIn = [Int](repeating: -1, count: blockCount)
    var hasPhi = [Int](repeating: -1, count: blockCount)
    var queued = [Int](repeating: -1, count: blockCount)
    var work: [Int] = []
    var placedBlocks: [Int32] = [], placedTemps: [Int32] = []
    for temp in candidates.indices where candidates[temp] {
        for block in occurrences.definitions[temp] { defines[block] = temp }
        // The blocks where the temporary is live on entry.
        for block in occurrences.upwardUses[temp] where liveIn[block] != temp {
            liveIn[block] = temp
            work.append(block)
        }
        for block in occurrences.exitUses[temp] where defines[block] != temp && liveIn[block] != temp {
            liveIn[block] = temp
            work.append(block)
        }
        while let block = work.popLast() {
            for predecessor in flow.predecessors[block] where defines[predecessor] != temp && liveIn[predecessor] != temp {
                liveIn[predecessor] = temp
                work.append(predecessor)
            }
        }
        // Phis at the iterated dominance frontier, where the temporary is live.
        for block in occurrences.definitions[temp] {
            queued[block] = temp
            work.append(block)
        }
        while let block = work.popLast() {
            for frontier in frontiers[block] where hasPhi[frontier] != temp {
                hasPhi[frontier] = temp
                guard liveIn[frontier] == temp else { continue }
                placedBlocks.append(Int32(frontier))
                placedTemps.append(Int32(temp))
                if queued[frontier] != temp {
                    queued[frontier] = temp
                    work.append(frontier)
                }
            }
        }
    }
    return Adjacency(count: blockCount, nodes: placedBlocks, items: placedTemps)
}
