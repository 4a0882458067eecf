// The renaming walk of SSA construction: one definition, one temporary.
//
// Walks the dominator tree keeping, for each temporary being renamed, a stack
// of the values that reach the current point. The first definition keeps the
// original temporary; later ones get new temporaries of the same class.

import KilnIL

struct Renamer {
    var function: Function
    let flow: ControlFlow
    let candidates: [Bool]
    let newPhis: [[Int]]
    /// The result of each new phi, parallel to `newPhis`.
    var newPhiResults: [[Value]]
    /// The incoming values of each new phi, parallel to `newPhis`.
    var newPhiArguments: [[[PhiArgument]]]
    var reaching: [[Value]]
    var originalTaken: [Bool]
    var undefined: Value?

    init(function: Function, flow: ControlFlow, candidates: [Bool], newPhis: [[Int]]) {
        self.function = function
        self.flow = flow
        self.candidates = candidates
        self.newPhis = newPhis
        newPhiResults = newPhis.map { Array(repeating: Value.none, count: $0.count) }
        newPhiArguments = newPhis.map { Array(repeating: [], count: $0.count) }
        reaching = Array(repeating: [], count: function.temps.count)
        originalTaken = Array(repeating: false, count: function.temps.count)
    }

    mutating func fresh(_ temp: Int, names: inout NameTable) -> Value {
        if !originalTaken[temp] {
            originalTaken[temp] = true
            return .temp(UInt32(temp))
        }
        let base = names.text(function.temps[temp].name)
        var suffix = reaching[temp].count + 1
        var name: Name
        while names.find("\(base).\(suffix)") != nil {
            suffix += 1
        }
        name = names.intern("\(base).\(suffix)")
        function.temps.append(Temp(name: name, cls: function.temps[temp].cls, location: function.temps[temp].location))
        return .temp(UInt32(function.temps.count - 1))
    }

    /// The value of a candidate temporary that reaches here (the constant 0 if none does).
    mutating func current(_ temp: Int) -> Value {
        if let top = reaching[temp].last { return top }
        if let undefined { return undefined }
        let zero = Constant(bits: 0)
        let index = function.constants.firstIndex(of: zero) ?? {
            function.constants.append(zero)
            return function.constants.count - 1
        }()
        undefined = .constant(UInt32(index))
        return undefined!
    }

    mutating func rewriteUse(_ value: Value) -> Value {
        guard value.isTemp, candidates[Int(value.index)] else { return value }
        return current(Int(value.index))
    }

    mutating func run(names: inout NameTable) {
        var log: [Int] = []
        // Each entry: a block and where the log stood when it was entered (-1: not yet entered).
        var stack: [(block: Int, mark: Int)] = [(0, -1)]
        while let (block, mark) = stack.popLast() {
            if mark >= 0 {
                while log.count > mark { reaching[log.removeLast()].removeLast() }
                continue
            }
            stack.append((block, log.count))
            visit(block, &log, names: &names)
            for child in flow.dominatorChildren[block].reversed() { stack.append((child, -1)) }
        }
        rebuildPhis()
    }

    mutating func visit(_ block: Int, _ log: inout [Int], names: inout NameTable) {
        let range = function.blocks[block].phiRange
        for index in range where candidates[Int(function.phis[index].to.index)] {
            let temp = Int(function.phis[index].to.index)
            let value = fresh(temp, names: &names)
            function.phis[index].to = value
            reaching[temp].append(value)
            log.append(temp)
        }
        for (position, temp) in newPhis[block].enumerated() {
            let value = fresh(temp, names: &names)
            newPhiResults[block][position] = value
            reaching[temp].append(value)
            log.append(temp)
        }
        for index in function.blocks[block].instructionRange {
            var instruction = function.instructions[index]
            instruction.arg0 = rewriteUse(instruction.arg0)
            instruction.arg1 = rewriteUse(instruction.arg1)
            if instruction.to.isTemp, candidates[Int(instruction.to.index)] {
                let temp = Int(instruction.to.index)
                instruction.to = fresh(temp, names: &names)
                reaching[temp].append(instruction.to)
                log.append(temp)
            }
            function.instructions[index] = instruction
        }
        function.blocks[block].jump.arg = rewriteUse(function.blocks[block].jump.arg)
        let from = BlockID(index: UInt32(block))
        for successor in flow.successors[block] {
            for phiIndex in function.blocks[successor].phiRange {
                let phi = function.phis[phiIndex]
                for argumentIndex in Int(phi.argumentStart)..<Int(phi.argumentStart + phi.argumentCount)
                where function.phiArguments[argumentIndex].block == from {
                    function.phiArguments[argumentIndex].value = rewriteUse(function.phiArguments[argumentIndex].value)
                }
            }
            for (position, temp) in newPhis[successor].enumerated() {
                let location = function.blocks[block].jump.location
                newPhiArguments[successor][position].append(PhiArgument(block: from, value: current(temp), location: location))
            }
        }
    }

    /// Lays out the phi arrays again: each block's original phis, then its new ones.
    mutating func rebuildPhis() {
        var phis: [Phi] = []
        var arguments: [PhiArgument] = []
        for block in function.blocks.indices {
            let start = UInt32(phis.count)
            for var phi in function.phis[function.blocks[block].phiRange] {
                let argumentStart = UInt32(arguments.count)
                arguments.append(contentsOf: function.arguments(of: phi))
                phi.argumentStart = argumentStart
                phis.append(phi)
            }
            for (position, temp) in newPhis[block].enumerated() {
                let argumentStart = UInt32(arguments.count)
                arguments.append(contentsOf: newPhiArguments[block][position])
                phis.append(Phi(to: newPhiResults[block][position], cls: function.temps[temp].cls ?? .l,
                                argumentStart: argumentStart, argumentCount: UInt32(newPhiArguments[block][position].count),
                                location: function.blocks[block].location))
            }
            function.blocks[block].phiStart = start
            function.blocks[block].phiCount = UInt32(phis.count) - start
        }
        function.phis = phis
        function.phiArguments = arguments
    }
}
