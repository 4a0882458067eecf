// Which registers each machine instruction reads and writes.
//
// The register allocator's liveness and the emitter's spill handling both need
// this, so it is computed in one place. Physical registers appear here too:
// argument registers before a call, rax/rdx around division, and the
// caller-saved registers that a call clobbers.

import KilnX64

extension MachineFunction {
    /// Appends the registers an instruction reads to `uses` and those it writes to `defs`,
    /// leaving out rsp and rbp (never allocated).
    @inline(__always)
    func decode(_ instruction: MInstruction, uses: inout [Reg], defs: inout [Reg]) {
        @inline(__always) func use(_ register: Reg) {
            if register != physical(GPR.rsp) && register != physical(GPR.rbp) { uses.append(register) }
        }
        @inline(__always) func define(_ register: Reg) {
            if register != physical(GPR.rsp) && register != physical(GPR.rbp) { defs.append(register) }
        }
        @inline(__always) func addressUses(_ operand: MOperand) {
            if case .mem(let memory) = operand {
                if case .reg(let base) = memory.base { use(base) }
                if memory.index >= 0 { use(memory.index) }
            }
        }
        @inline(__always) func read(_ operand: MOperand) {
            if case .reg(let register) = operand { use(register) } else { addressUses(operand) }
        }
        @inline(__always) func write(_ operand: MOperand) {
            if case .reg(let register) = operand { define(register) } else { addressUses(operand) }
        }
        @inline(__always) func readWrite(_ operand: MOperand) {
            if case .reg(let register) = operand {
                use(register)
                define(register)
            } else {
                addressUses(operand)
            }
        }
        switch instruction.op {
        case .mov, .lea, .movsx, .movzx, .imul3, .fmov, .intToFloat, .floatToInt, .floatToFloat, .moveBetweenFiles:
            read(instruction.b)
            write(instruction.a)
        case .alu(let operation):
            if operation == .xor, instruction.a == instruction.b, case .reg(let register) = instruction.a {
                define(register)
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
        case .imul, .fop, .flogic, .cmov, .shift:
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
                use(physical(GPR.rax))
                use(physical(GPR.rdx))
                define(physical(GPR.rax))
                define(physical(GPR.rdx))
            }
        case .signExtendRAX:
            use(physical(GPR.rax))
            define(physical(GPR.rdx))
        case .call(let index):
            // What a call clobbers is not listed: the allocator keeps caller-saved registers
            // out of every interval that spans a call (`OperandTable.calls`). Its results are.
            read(instruction.a)
            for register in calls[Int(index)].uses { use(register) }
            for register in calls[Int(index)].results { define(register) }
        case .ret:
            if case .imm(let index) = instruction.a { for register in calls[Int(index)].uses { use(register) } }
        case .parallelMove(let index):
            for (destination, source) in moves[Int(index)] {
                read(source)
                define(destination)
            }
        case .copyBytes:
            read(instruction.a)
            read(instruction.b)
            write(instruction.c)
        case .jcc, .jmp, .ud2:
            break
        }
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
    /// The calls, by instruction index, ascending. A call clobbers every caller-saved register.
    var calls: [Int32] = []

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
        var defs: [Reg] = []
        for block in machine.blocks {
            for instruction in block {
                start.append(Int32(registers.count))
                defs.removeAll(keepingCapacity: true)
                machine.decode(instruction, uses: &registers, defs: &defs)
                split.append(Int32(registers.count))
                registers.append(contentsOf: defs)
                if case .call = instruction.op { calls.append(Int32(start.count - 1)) }
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
