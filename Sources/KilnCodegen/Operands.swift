// Which registers each machine instruction reads and writes.
//
// The register allocator's liveness and the emitter's spill handling both need
// this, so it is computed in one place. Physical registers appear here too:
// argument registers before a call, rax/rdx around division, and the
// caller-saved registers that a call clobbers.

import KilnX64

extension MachineFunction {
    /// Registers read and written by an instruction (rsp and rbp excluded).
    func registers(of instruction: MInstruction, uses: inout [Reg], defs: inout [Reg]) {
        uses.removeAll(keepingCapacity: true)
        defs.removeAll(keepingCapacity: true)
        func addressUses(_ operand: MOperand) {
            if case .mem(let memory) = operand {
                if case .reg(let base) = memory.base { uses.append(base) }
                if memory.index >= 0 { uses.append(memory.index) }
            }
        }
        func read(_ operand: MOperand) {
            if case .reg(let register) = operand { uses.append(register) }
            addressUses(operand)
        }
        func write(_ operand: MOperand) {
            if case .reg(let register) = operand { defs.append(register) } else { addressUses(operand) }
        }
        func readWrite(_ operand: MOperand) {
            read(operand)
            if case .reg(let register) = operand { defs.append(register) }
        }
        switch instruction.op {
        case .mov, .lea, .movsx, .movzx, .imul3, .fmov, .intToFloat, .floatToInt, .floatToFloat, .moveBetweenFiles:
            read(instruction.b)
            write(instruction.a)
        case .alu(let operation):
            if operation == .xor, instruction.a == instruction.b, case .reg(let register) = instruction.a {
                defs.append(register)
            } else if operation == .cmp {
                read(instruction.a)
                read(instruction.b)
            } else {
                read(instruction.b)
                readWrite(instruction.a)
            }
        case .test, .ucomis:
            read(instruction.a)
            read(instruction.b)
        case .imul, .fop, .flogic, .cmov:
            read(instruction.b)
            readWrite(instruction.a)
        case .shift:
            read(instruction.b)
            readWrite(instruction.a)
        case .setcc:
            readWrite(instruction.a)
        case .unary(let operation):
            switch operation {
            case .neg, .not:
                readWrite(instruction.a)
            default:
                read(instruction.b)
                uses.append(physical(GPR.rax))
                uses.append(physical(GPR.rdx))
                defs.append(physical(GPR.rax))
                defs.append(physical(GPR.rdx))
            }
        case .signExtendRAX:
            uses.append(physical(GPR.rax))
            defs.append(physical(GPR.rdx))
        case .call(let index):
            read(instruction.a)
            uses.append(contentsOf: calls[Int(index)].uses)
            for register in callerSavedGPRs where register != scratchGPR1 && register != scratchGPR2 {
                defs.append(physical(register))
            }
            for register in XMM.allCases where register != scratchXMM1 && register != scratchXMM2 {
                defs.append(physical(register))
            }
        case .ret:
            if case .imm(let index) = instruction.a { uses.append(contentsOf: calls[Int(index)].uses) }
        case .parallelMove(let index):
            for (destination, source) in moves[Int(index)] {
                read(source)
                defs.append(destination)
            }
        case .copyBytes:
            read(instruction.a)
            read(instruction.b)
            write(instruction.c)
        case .jcc, .jmp, .ud2:
            break
        }
        uses.removeAll { $0 == physical(GPR.rsp) || $0 == physical(GPR.rbp) }
        defs.removeAll { $0 == physical(GPR.rsp) || $0 == physical(GPR.rbp) }
    }
}

/// Every instruction's reads and writes, computed once per function: liveness, interval
/// building and resolution all read it, instead of decoding each instruction again.
///
/// Instructions are numbered in layout order (block 0's first is 0). Instruction i reads
/// `registers[start[i] ..< split[i]]` and writes `registers[split[i] ..< start[i + 1]]`.
struct OperandTable {
    var start: [Int32]
    var split: [Int32]
    var registers: [Reg]
    /// Where each block's instructions start; one more entry than blocks.
    var blockStart: [Int32]
    /// For each register moved to or from another by a plain `mov`, the first such partner
    /// (a hint that both may share a register), or -1.
    var hints: [Reg]

    init(_ machine: MachineFunction, registerCount: Int) {
        var count = 0
        var blockStart: [Int32] = []
        blockStart.reserveCapacity(machine.blocks.count + 1)
        for block in machine.blocks {
            blockStart.append(Int32(count))
            count += block.count
        }
        blockStart.append(Int32(count))
        self.blockStart = blockStart
        start = []
        split = []
        start.reserveCapacity(count + 1)
        split.reserveCapacity(count)
        registers = []
        registers.reserveCapacity(count * 3)
        hints = [Reg](repeating: -1, count: registerCount)
        var uses: [Reg] = [], defs: [Reg] = []
        for block in machine.blocks {
            for instruction in block {
                machine.registers(of: instruction, uses: &uses, defs: &defs)
                start.append(Int32(registers.count))
                registers.append(contentsOf: uses)
                split.append(Int32(registers.count))
                registers.append(contentsOf: defs)
                if case .mov = instruction.op, case .reg(let to) = instruction.a, case .reg(let from) = instruction.b {
                    if hints[Int(to)] < 0 { hints[Int(to)] = from }
                    if hints[Int(from)] < 0 { hints[Int(from)] = to }
                }
            }
        }
        start.append(Int32(registers.count))
    }

    /// The number of instructions.
    var count: Int { split.count }

    @inline(__always) func uses(_ instruction: Int) -> Range<Int> { Int(start[instruction])..<Int(split[instruction]) }
    @inline(__always) func defs(_ instruction: Int) -> Range<Int> { Int(split[instruction])..<Int(start[instruction + 1]) }
}
