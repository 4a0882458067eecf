// The renaming walk of SSA construction: one definition, one temporary.
//
// Walks the dominator tree keeping, for each temporary being renamed, the
// value that reaches the current point: one stack of (temporary, value)
// entries shared by all temporaries, each entry linking to the temporary's
// previous one, popped when the walk leaves the block that pushed it. The
// first definition keeps the original temporary; later ones get new
// temporaries of the same class, named `<old>.<n>` (TempNamer: a counter per
// temporary, unique within the function, so naming costs nothing more as the
// function or the module grows).
//
// Every phi argument is visited once: arguments are found through their
// predecessor block, and the arguments of new phis are filled in by the
// position of the predecessor in the block's predecessor list, so a block
// with a hundred thousand predecessors costs a hundred thousand steps.

import KilnIL

struct Renamer {
    var function: Function
    let flow: ControlFlow
    let candidates: [Bool]
    /// The candidate temporaries that get a new phi, per block.
    let newPhis: Adjacency
    /// The result of each new phi, parallel to `newPhis.items`.
    var newPhiResults: [Value]
    /// Where each new phi's arguments start in `newPhiArguments`; one per predecessor.
    var newPhiArgumentStart: [Int]
    var newPhiArguments: [PhiArgument]
    /// For each successor edge (parallel to `flow.successors.items`), the position of the
    /// edge's source among the predecessors of its target.
    var predecessorPosition: [Int]
    /// The existing phi arguments, by the predecessor they come from.
    let argumentsFrom: Adjacency
    /// The reaching-value stack: each entry's temporary, value and the entry it hides.
    var stack: [(temp: Int32, value: Value, hidden: Int32)] = []
    /// The top entry of each temporary in `stack`, or -1.
    var top: [Int32]
    var originalTaken: [Bool]
    var namer: TempNamer
    /// The next suffix to try for each temporary's new names.
    var nextSuffix: [Int]
    var undefined: Value?

    init(function: Function, flow: ControlFlow, candidates: [Bool], newPhis: Adjacency, marks: NameMarks) {
        self.function = function
        self.flow = flow
        self.candidates = candidates
        self.newPhis = newPhis
        newPhiResults = Array(repeating: .none, count: newPhis.items.count)
        var starts: [Int] = []
        starts.reserveCapacity(newPhis.items.count)
        var total = 0
        for block in 0..<newPhis.count {
            for _ in newPhis[block] {
                starts.append(total)
                total += flow.predecessors.degree(block)
            }
        }
        newPhiArgumentStart = starts
        newPhiArguments = Array(repeating: PhiArgument(block: BlockID(index: 0), value: .none, location: .none),
                                count: total)
        var position = [Int](repeating: 0, count: flow.successors.items.count)
        for block in 0..<flow.predecessors.count {
            for (index, predecessor) in flow.predecessors[block].enumerated() {
                for edge in flow.successors.start[predecessor]..<flow.successors.start[predecessor + 1]
                where flow.successors.items[edge] == block {
                    position[edge] = index
                }
            }
        }
        predecessorPosition = position
        var sources: [Int32] = [], argumentIndices: [Int32] = []
        sources.reserveCapacity(function.phiArguments.count)
        argumentIndices.reserveCapacity(function.phiArguments.count)
        for (index, argument) in function.phiArguments.enumerated() {
            sources.append(Int32(argument.block.index))
            argumentIndices.append(Int32(index))
        }
        argumentsFrom = Adjacency(count: function.blocks.count, nodes: sources, items: argumentIndices)
        top = Array(repeating: -1, count: function.temps.count)
        originalTaken = Array(repeating: false, count: function.temps.count)
        namer = TempNamer(function, marks: marks)
        nextSuffix = Array(repeating: 1, count: function.temps.count)
    }

    /// A temporary for a new definition of `temp`: `temp` itself the first time.
    mutating func fresh(_ temp: Int, names: inout NameTable) -> Value {
        if !originalTaken[temp] {
            originalTaken[temp] = true
            return .temp(UInt32(temp))
        }
        let name = namer.fresh(function.temps[temp].name, counter: &nextSuffix[temp], names: &names)
        function.temps.append(Temp(name: name, cls: function.temps[temp].cls, location: function.temps[temp].location))
        return .temp(UInt32(function.temps.count - 1))
    }

    mutating func push(_ temp: Int, _ value: Value) {
        stack.append((Int32(temp), value, top[temp]))
        top[temp] = Int32(stack.count - 1)
    }

    /// The value of a candidate temporary that reaches here (`Constant.undefined` if none does).
    mutating func current(_ temp: Int) -> Value {
        let entry = top[temp]
        if entry >= 0 { return stack[Int(entry)].value }
        if let undefined { return undefined }
        let index = constantIndex(&function, Constant.undefined)
        undefined = .constant(index)
        return undefined!
    }

    mutating func rewriteUse(_ value: Value) -> Value {
        guard value.isTemp, candidates[Int(value.index)] else { return value }
        return current(Int(value.index))
    }

    mutating func run(names: inout NameTable) {
        // Each entry: a block and the stack height when it was entered (-1: not yet entered).
        var walk: [(block: Int, mark: Int)] = [(0, -1)]
        while let (block, mark) = walk.popLast() {
            if mark >= 0 {
                while stack.count > mark {
                    let entry = stack.removeLast()
                    top[Int(entry.temp)] = entry.hidden
                }
                continue
            }
            walk.append((block, stack.count))
            visit(block, names: &names)
            for child in flow.dominatorChildren[block].reversed() { walk.append((child, -1)) }
        }
        rebuildPhis()
    }

    mutating func visit(_ block: Int, names: inout NameTable) {
        for index in function.blocks[block].phiRange where candidates[Int(function.phis[index].to.index)] {
            let temp = Int(function.phis[index].to.index)
            let value = fresh(temp, names: &names)
            function.phis[index].to = value
            push(temp, value)
        }
        for position in newPhis.start[block]..<newPhis.start[block + 1] {
            let temp = newPhis.items[position]
            let value = fresh(temp, names: &names)
            newPhiResults[position] = value
            push(temp, value)
        }
        for index in function.blocks[block].instructionRange {
            var instruction = function.instructions[index]
            instruction.arg0 = rewriteUse(instruction.arg0)
            instruction.arg1 = rewriteUse(instruction.arg1)
            if instruction.to.isTemp, candidates[Int(instruction.to.index)] {
                let temp = Int(instruction.to.index)
                instruction.to = fresh(temp, names: &names)
                push(temp, instruction.to)
            }
            function.instructions[index] = instruction
        }
        function.blocks[block].jump.arg = rewriteUse(function.blocks[block].jump.arg)
        for index in argumentsFrom[block] {
            function.phiArguments[index].value = rewriteUse(function.phiArguments[index].value)
        }
        let from = BlockID(index: UInt32(block))
        let location = function.blocks[block].jump.location
        for edge in flow.successors.start[block]..<flow.successors.start[block + 1] {
            let successor = flow.successors.items[edge]
            for position in newPhis.start[successor]..<newPhis.start[successor + 1] {
                let slot = newPhiArgumentStart[position] + predecessorPosition[edge]
                newPhiArguments[slot] = PhiArgument(block: from, value: current(newPhis.items[position]), location: location)
            }
        }
    }

    /// Lays out the phi arrays again: each block's original phis, then its new ones.
    mutating func rebuildPhis() {
        var phis: [Phi] = []
        var arguments: [PhiArgument] = []
        phis.reserveCapacity(function.phis.count + newPhis.items.count)
        arguments.reserveCapacity(function.phiArguments.count + newPhiArguments.count)
        for block in function.blocks.indices {
            let start = UInt32(phis.count)
            for var phi in function.phis[function.blocks[block].phiRange] {
                let argumentStart = UInt32(arguments.count)
                arguments.append(contentsOf: function.arguments(of: phi))
                phi.argumentStart = argumentStart
                phis.append(phi)
            }
            let count = flow.predecessors.degree(block)
            for position in newPhis.start[block]..<newPhis.start[block + 1] {
                let temp = newPhis.items[position]
                let argumentStart = UInt32(arguments.count)
                let first = newPhiArgumentStart[position]
                arguments.append(contentsOf: newPhiArguments[first..<first + count])
                phis.append(Phi(to: newPhiResults[position], cls: function.temps[temp].cls ?? .l,
                                argumentStart: argumentStart, argumentCount: UInt32(count),
                                location: function.blocks[block].location))
            }
            function.blocks[block].phiStart = start
            function.blocks[block].phiCount = UInt32(phis.count) - start
        }
        function.phis = phis
        function.phiArguments = arguments
    }
}
