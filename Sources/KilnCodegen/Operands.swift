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

    /// The machine blocks a block's instructions may jump to.
    func successors(of block: Int) -> [Int] {
        var result: [Int] = []
        for instruction in blocks[block] {
            switch instruction.op {
            case .jmp(let target), .jcc(_, let target):
                if !result.contains(Int(target)) { result.append(Int(target)) }
            default:
                break
            }
        }
        return result
    }
}
