// Selection of comparisons, jumps and phis; the driver over a function's blocks.

import KilnCode
import KilnIL
import KilnX64

extension Selector {
    /// The condition a comparison tests, whether its operands are swapped, and the operand width.
    struct ComparisonShape {
        var isFloat: Bool
        var condition: Condition
        var swap: Bool
        var cls: Class
    }

    static func shape(_ op: Opcode) -> ComparisonShape {
        switch op {
        case .ceqw, .ceql, .ceqr: .init(isFloat: false, condition: .e, swap: false, cls: op == .ceqw ? .w : .l)
        case .cnew, .cnel, .cner: .init(isFloat: false, condition: .ne, swap: false, cls: op == .cnew ? .w : .l)
        case .csltw, .csltl: .init(isFloat: false, condition: .l, swap: false, cls: op == .csltw ? .w : .l)
        case .cslew, .cslel: .init(isFloat: false, condition: .le, swap: false, cls: op == .cslew ? .w : .l)
        case .csgtw, .csgtl: .init(isFloat: false, condition: .g, swap: false, cls: op == .csgtw ? .w : .l)
        case .csgew, .csgel: .init(isFloat: false, condition: .ge, swap: false, cls: op == .csgew ? .w : .l)
        case .cultw, .cultl: .init(isFloat: false, condition: .b, swap: false, cls: op == .cultw ? .w : .l)
        case .culew, .culel: .init(isFloat: false, condition: .be, swap: false, cls: op == .culew ? .w : .l)
        case .cugtw, .cugtl: .init(isFloat: false, condition: .a, swap: false, cls: op == .cugtw ? .w : .l)
        case .cugew, .cugel: .init(isFloat: false, condition: .ae, swap: false, cls: op == .cugew ? .w : .l)
        // Floats: ucomis sets CF/ZF like an unsigned compare and PF when unordered. `<` and
        // `<=` swap the operands so that "above" tests are false on NaN.
        case .ceqs, .ceqd: .init(isFloat: true, condition: .e, swap: false, cls: op == .ceqs ? .s : .d)
        case .cnes, .cned: .init(isFloat: true, condition: .ne, swap: false, cls: op == .cnes ? .s : .d)
        case .clts, .cltd: .init(isFloat: true, condition: .a, swap: true, cls: op == .clts ? .s : .d)
        case .cles, .cled: .init(isFloat: true, condition: .ae, swap: true, cls: op == .cles ? .s : .d)
        case .cgts, .cgtd: .init(isFloat: true, condition: .a, swap: false, cls: op == .cgts ? .s : .d)
        case .cges, .cged: .init(isFloat: true, condition: .ae, swap: false, cls: op == .cges ? .s : .d)
        case .cos, .cod: .init(isFloat: true, condition: .np, swap: false, cls: op == .cos ? .s : .d)
        default: .init(isFloat: true, condition: .p, swap: false, cls: op == .cuos ? .s : .d)
        }
    }

    static func reversed(_ condition: Condition) -> Condition {
        switch condition {
        case .l: .g
        case .g: .l
        case .le: .ge
        case .ge: .le
        case .b: .a
        case .a: .b
        case .be: .ae
        case .ae: .be
        default: condition
        }
    }

    /// Emits the flag-setting instruction of a comparison; returns the condition to test.
    mutating func emitFlags(_ instruction: Instruction) throws -> (ComparisonShape, Condition) {
        let shape = Selector.shape(instruction.op)
        let width = Selector.width(shape.cls)
        var left = instruction.arg0, right = instruction.arg1
        if shape.isFloat {
            if shape.swap { swap(&left, &right) }
            let first = try floatRegister(left, shape.cls)
            emit(.ucomis, width, .reg(first), try floatOperand(right, shape.cls))
            return (shape, shape.condition)
        }
        var condition = shape.condition
        if !left.isTemp && right.isTemp {
            swap(&left, &right)
            condition = Selector.reversed(condition)
        }
        let first = try integerRegister(left, width)
        let second = try integerOperand(right, width)
        if case .imm(0) = second, condition == .e || condition == .ne {
            emit(.test, width, .reg(first), .reg(first))
        } else {
            emit(.alu(.cmp), width, .reg(first), second)
        }
        return (shape, condition)
    }

    /// A comparison whose 0/1 result is needed as a value.
    mutating func selectComparisonValue(_ instruction: Instruction, _ to: Reg) throws {
        let isFloatEquality = [.ceqs, .ceqd, .cnes, .cned].contains(instruction.op)
        let extra = isFloatEquality ? machine.newVirtual(.gpr) : -1
        // Cleared at the result's width: a spilled `l` result must be zero in all 8 bytes.
        let width = Selector.width(instruction.cls)
        emit(.alu(.xor), width, .reg(to), .reg(to))
        if isFloatEquality { emit(.alu(.xor), width, .reg(extra), .reg(extra)) }
        let (_, condition) = try emitFlags(instruction)
        emit(.setcc(condition), .b8, .reg(to))
        if isFloatEquality {
            let equal = instruction.op == .ceqs || instruction.op == .ceqd
            emit(.setcc(equal ? .np : .p), .b8, .reg(extra))
            emit(.alu(equal ? .and : .or), width, .reg(to), .reg(extra))
        }
    }

    // MARK: Blocks

    var currentBlock: Int { machine.blocks.count }

    /// Selects the whole function.
    mutating func run() throws -> MachineFunction {
        for (index, block) in function.blocks.enumerated() {
            if block.jump.kind == .jnz, block.jump.arg.isTemp {
                let temp = block.jump.arg.index
                let defining = definition[Int(temp)]
                if defining >= 0, uses[Int(temp)] == 1, block.instructionRange.contains(Int(defining)),
                   function.instructions[Int(defining)].op.isComparison {
                    fused.insert(temp)
                }
            }
            _ = index
        }
        predecessorCounts = function.predecessorCounts()
        // The machine layout: each IL block, then the blocks that split its outgoing critical
        // edges, so values that flow along an edge live only around it.
        machineBlock = []
        machineBlock.reserveCapacity(function.blocks.count)
        var next: Int32 = 0
        for block in function.blocks {
            machineBlock.append(next)
            next += 1
            let jump = block.jump
            if jump.kind == .jnz, jump.target != jump.otherTarget {
                next += Int32(needsSplitBlock(Int(jump.target.index)) ? 1 : 0)
                next += Int32(needsSplitBlock(Int(jump.otherTarget.index)) ? 1 : 0)
            }
        }
        machine.blocks.reserveCapacity(Int(next))
        for (index, block) in function.blocks.enumerated() {
            // One allocation per block in most cases (calls and copies may add more).
            code = []
            code.reserveCapacity(Int(block.instructionCount) + 2)
            currentBlockRange = block.instructionRange
            location = block.location
            if index == 0 { try selectParameters() }
            var position = block.instructionRange.lowerBound
            while position < block.instructionRange.upperBound {
                try select(position)
                position += 1
            }
            var splitBlocks: [[MInstruction]] = []
            try selectJump(index, &splitBlocks)
            machine.blocks.append(code)
            machine.blocks.append(contentsOf: splitBlocks)
        }
        return machine
    }

    /// Whether an edge of a `jnz` into `successor` gets a block of its own: when it carries phi
    /// copies, or is critical.
    func needsSplitBlock(_ successor: Int) -> Bool {
        function.blocks[successor].phiCount > 0 || predecessorCounts[successor] > 1
    }

    /// The parallel copy that phis of `successor` need on the edge from `block`.
    mutating func phiMoves(from block: Int, to successor: Int) throws -> [(destination: Reg, source: MOperand)] {
        var moves: [(destination: Reg, source: MOperand)] = []
        for index in phiArgumentsFrom[block] where Int(phiBlockOfArgument[index]) == successor {
            let argument = function.phiArguments[index]
            let phi = function.phis[Int(phiOfArgument[index])]
            moves.append((register(phi.to.index), try phiSource(argument.value, phi.cls)))
        }
        guard moves.count == function.blocks[successor].phiCount else {
            throw fail("phi without an argument for a predecessor")
        }
        return moves
    }

    mutating func emitMoves(_ moves: [(destination: Reg, source: MOperand)]) {
        guard !moves.isEmpty else { return }
        machine.moves.append(moves)
        emit(.parallelMove(Int32(machine.moves.count - 1)), .b64)
    }

    /// The block a jump to `successor` should target: a new block carrying the phi copies
    /// when the edge needs them and cannot hold them in `block` itself.
    mutating func edgeTarget(from block: Int, to successor: Int, _ splitBlocks: inout [[MInstruction]]) throws -> Int32 {
        // Every critical edge gets a block of its own, so the register allocator always has
        // a place for the copies an edge needs (emission drops the block if it stays empty).
        guard needsSplitBlock(successor) else { return machineBlock[successor] }
        let moves = try phiMoves(from: block, to: successor)
        let saved = code
        code = []
        emitMoves(moves)
        emit(.jmp(machineBlock[successor]), .b64)
        splitBlocks.append(code)
        code = saved
        return machineBlock[block] + Int32(splitBlocks.count)
    }

    mutating func selectJump(_ index: Int, _ splitBlocks: inout [[MInstruction]]) throws {
        let jump = function.blocks[index].jump
        location = jump.location
        switch jump.kind {
        case .jmp:
            emitMoves(try phiMoves(from: index, to: Int(jump.target.index)))
            emit(.jmp(machineBlock[Int(jump.target.index)]), .b64)
        case .jnz where jump.target == jump.otherTarget:
            emitMoves(try phiMoves(from: index, to: Int(jump.target.index)))
            emit(.jmp(machineBlock[Int(jump.target.index)]), .b64)
        case .jnz:
            let yes = try edgeTarget(from: index, to: Int(jump.target.index), &splitBlocks)
            let no = try edgeTarget(from: index, to: Int(jump.otherTarget.index), &splitBlocks)
            if let constant = constant(jump.arg), constant.kind == .bits {
                emit(.jmp(UInt32(truncatingIfNeeded: constant.bits) != 0 ? yes : no), .b64)
                return
            }
            if jump.arg.isTemp, fused.contains(jump.arg.index) {
                let compare = function.instructions[Int(definition[Int(jump.arg.index)])]
                let (shape, condition) = try emitFlags(compare)
                location = jump.location
                if shape.isFloat && (condition == .e || condition == .ne) {
                    // Equal needs ZF and not PF; not-equal is either.
                    if condition == .e {
                        emit(.jcc(.p, no), .b64)
                        emit(.jcc(.e, yes), .b64)
                    } else {
                        emit(.jcc(.p, yes), .b64)
                        emit(.jcc(.ne, yes), .b64)
                    }
                    emit(.jmp(no), .b64)
                } else {
                    emit(.jcc(condition, yes), .b64)
                    emit(.jmp(no), .b64)
                }
                return
            }
            let value = try integerRegister(jump.arg, .b32)
            emit(.test, .b32, .reg(value), .reg(value))
            emit(.jcc(.ne, yes), .b64)
            emit(.jmp(no), .b64)
        case .ret, .retValue:
            try selectReturn(jump)
        case .hlt, .none:
            emit(.ud2, .b64)
        }
    }
}
