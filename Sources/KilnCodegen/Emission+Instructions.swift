// Encoding each machine instruction, with spilled operands taken from their
// stack slots through the scratch registers.

import KilnCode
import KilnX64

extension Emitter {
    mutating func emit(_ instruction: MInstruction) throws {
        let width = instruction.width
        switch instruction.op {
        case .mov: try emitMove(instruction)
        case .lea:
            let address = try memory(mem(instruction.b))
            try writeGPR(instruction.a, width) { buffer, register in buffer.lea(width, register, address) }
        case .alu(let operation): try emitALU(operation, instruction)
        case .test:
            let first = try place(instruction.a), second = try place(instruction.b)
            switch (first, second) {
            case (.gpr(let a), .gpr(let b)): buffer.test(width, a, b)
            case (.memory(let m), .gpr(let b)), (.gpr(let b), .memory(let m)): buffer.test(width, m, b)
            case (.gpr(let a), .immediate(let value)): buffer.test(width, a, imm: Int32(truncatingIfNeeded: value))
            case (.memory(let m), .immediate(let value)): buffer.test(width, m, imm: Int32(truncatingIfNeeded: value))
            case (.memory(let m), .memory(let n)):
                let scratch = try takeScratch()
                buffer.mov(width, scratch, n)
                buffer.test(width, m, scratch)
            default: throw EmissionError(message: "internal error: test operands")
            }
        case .imul:
            let source = try place(instruction.b)
            try modifyGPR(instruction.a, width) { buffer, register in
                switch source {
                case .gpr(let other): buffer.imul(width, register, other)
                case .memory(let memory): buffer.imul(width, register, memory)
                case .immediate(let value): buffer.imul(width, register, register, imm: Int32(truncatingIfNeeded: value))
                case .xmm: break
                }
            }
        case .imul3:
            let source = try place(instruction.b)
            guard case .imm(let value) = instruction.c else { throw EmissionError(message: "internal error: imul3") }
            try writeGPR(instruction.a, width) { buffer, register in
                switch source {
                case .gpr(let other): buffer.imul(width, register, other, imm: Int32(truncatingIfNeeded: value))
                case .memory(let memory): buffer.imul(width, register, memory, imm: Int32(truncatingIfNeeded: value))
                default: break
                }
            }
        case .unary(let operation):
            let operand = try place(operation == .neg || operation == .not ? instruction.a : instruction.b)
            switch operand {
            case .gpr(let register): buffer.unary(operation, width, register)
            case .memory(let memory): buffer.unary(operation, width, memory)
            default: throw EmissionError(message: "internal error: unary operand")
            }
        case .shift(let operation):
            let target = try place(instruction.a)
            if case .imm(let count) = instruction.b {
                switch target {
                case .gpr(let register): buffer.shift(operation, width, register, count: UInt8(count & 63))
                case .memory(let memory): buffer.shift(operation, width, memory, count: UInt8(count & 63))
                default: throw EmissionError(message: "internal error: shift operand")
                }
            } else {
                switch target {
                case .gpr(let register): buffer.shiftByCL(operation, width, register)
                case .memory(let memory): buffer.shiftByCL(operation, width, memory)
                default: throw EmissionError(message: "internal error: shift operand")
                }
            }
        case .movsx(let from), .movzx(let from):
            let isSigned = if case .movsx = instruction.op { true } else { false }
            let source = try place(instruction.b)
            try writeGPR(instruction.a, width) { buffer, register in
                switch source {
                case .gpr(let other) where !isSigned && from == .b32:
                    buffer.mov(.b32, register, other)
                case .gpr(let other):
                    if isSigned { buffer.movsx(width, register, from, other) } else { buffer.movzx(width, register, from, other) }
                case .memory(let memory) where !isSigned && from == .b32:
                    buffer.mov(.b32, register, memory)
                case .memory(let memory):
                    if isSigned { buffer.movsx(width, register, from, memory) } else { buffer.movzx(width, register, from, memory) }
                default: break
                }
            }
        case .signExtendRAX:
            if width == .b64 { buffer.cqo() } else { buffer.cdq() }
        case .setcc(let condition):
            switch try place(instruction.a) {
            case .gpr(let register): buffer.setcc(condition, register)
            case .memory(let memory): buffer.setcc(condition, memory)
            default: throw EmissionError(message: "internal error: setcc operand")
            }
        case .cmov(let condition):
            let source = try place(instruction.b)
            try modifyGPR(instruction.a, width) { buffer, register in
                switch source {
                case .gpr(let other): buffer.cmov(condition, width, register, other)
                case .memory(let memory): buffer.cmov(condition, width, register, memory)
                default: break
                }
            }
        case .jcc(let condition, let target):
            buffer.jcc(condition, to: blockLabels[resolved[Int(target)]])
        case .jmp(let target):
            buffer.jmp(to: blockLabels[resolved[Int(target)]])
        case .call:
            try emitCall(instruction)
        case .ret:
            epilogue()
        case .ud2:
            buffer.ud2()
        case .fmov, .fop, .flogic, .ucomis, .intToFloat, .floatToInt, .floatToFloat, .moveBetweenFiles:
            try emitFloat(instruction)
        case .parallelMove(let index):
            try emitParallelMove(machine.moves[Int(index)])
        case .copyBytes(let count):
            try emitCopy(instruction, count: Int(count))
        }
        recordTarget()
    }

    func mem(_ operand: MOperand) throws -> MMem {
        guard case .mem(let memory) = operand else { throw EmissionError(message: "internal error: expected memory") }
        return memory
    }

    /// Runs `body` with a register that receives the result, storing it to the slot if spilled.
    mutating func writeGPR(_ operand: MOperand, _ width: Width, _ body: (inout CodeBuffer, GPR) -> Void) throws {
        guard case .reg(let register) = operand else { throw EmissionError(message: "internal error: destination") }
        switch location(register) {
        case .register(let physicalRegister):
            body(&buffer, GPR(rawValue: UInt8(physicalRegister))!)
        case .spill(let slot):
            // The whole slot is written: a 32-bit operation cleared the upper half of the
            // register, and an `l` value read back later must see those zeros.
            let scratch = try takeScratch()
            body(&buffer, scratch)
            buffer.mov(.b64, spillMemory(slot), scratch)
        }
    }

    /// Like `writeGPR`, for an operand that is also read (two-address forms).
    mutating func modifyGPR(_ operand: MOperand, _ width: Width, _ body: (inout CodeBuffer, GPR) -> Void) throws {
        guard case .reg(let register) = operand else { throw EmissionError(message: "internal error: destination") }
        switch location(register) {
        case .register(let physicalRegister):
            body(&buffer, GPR(rawValue: UInt8(physicalRegister))!)
        case .spill(let slot):
            let scratch = try takeScratch()
            buffer.mov(.b64, scratch, spillMemory(slot))
            body(&buffer, scratch)
            buffer.mov(.b64, spillMemory(slot), scratch)
        }
    }

    mutating func emitMove(_ instruction: MInstruction) throws {
        let width = instruction.width
        if case .target(let target, let addend) = instruction.b {
            // The 32-bit offset of thread-local data: an off32 relocation on the immediate.
            try writeGPR(instruction.a, .b32) { buffer, register in buffer.mov(.b32, register, imm: 0x7fff_fff0) }
            relocations.append(Relocation(offset: UInt32(buffer.count - 4), kind: .offset32, target: machine.targets[Int(target)],
                                          addend: addend))
            return
        }
        let destination = try place(instruction.a)
        let source = try place(instruction.b)
        switch (destination, source) {
        case (.gpr(let to), .gpr(let from)):
            // A `w` value's upper half is never read, so a move to itself is nothing; `extuw`,
            // which must clear it, is a movzx from .b32 and always emitted.
            if to != from { buffer.mov(width == .b8 || width == .b16 ? .b32 : width, to, from) }
        case (.gpr(let to), .immediate(let value)):
            buffer.mov(width == .b8 || width == .b16 ? .b32 : width, to, imm: truncated(value, width == .b64 ? .b64 : .b32))
        case (.gpr(let to), .memory(let memory)):
            if width == .b8 || width == .b16 {
                buffer.movzx(.b32, to, width, memory)
            } else {
                buffer.mov(width, to, memory)
            }
        case (.memory(let memory), .gpr(let from)):
            buffer.mov(width, memory, from)
        case (.memory(let memory), .immediate(let value)):
            let value = truncated(value, width)
            if value >= Int64(Int32.min) && value <= Int64(Int32.max) {
                buffer.mov(width, memory, imm: Int32(value))
            } else {
                let scratch = try takeScratch()
                buffer.mov(.b64, scratch, imm: value)
                buffer.mov(width, memory, scratch)
            }
        case (.memory(let memory), .memory(let from)):
            let scratch = try takeScratch()
            buffer.mov(width == .b8 || width == .b16 ? .b64 : width, scratch, from)
            buffer.mov(width, memory, scratch)
        default:
            throw EmissionError(message: "internal error: move operands")
        }
    }

    mutating func emitALU(_ operation: ALUOperation, _ instruction: MInstruction) throws {
        let width = instruction.width
        let destination = try place(instruction.a)
        let source = try place(instruction.b)
        switch (destination, source) {
        case (.gpr(let to), .gpr(let from)) where operation == .xor && to == from:
            buffer.alu(.xor, .b32, to, from)
        case (.gpr(let to), .gpr(let from)): buffer.alu(operation, width, to, from)
        case (.gpr(let to), .memory(let memory)): buffer.alu(operation, width, to, memory)
        case (.gpr(let to), .immediate(let value)): buffer.alu(operation, width, to, imm: Int32(truncatingIfNeeded: value))
        case (.memory(let memory), .gpr(let from)): buffer.alu(operation, width, memory, from)
        case (.memory(let memory), .immediate(let value)): buffer.alu(operation, width, memory, imm: Int32(truncatingIfNeeded: value))
        case (.memory(let memory), .memory(let from)):
            let scratch = try takeScratch()
            buffer.mov(width, scratch, from)
            buffer.alu(operation, width, memory, scratch)
        default:
            throw EmissionError(message: "internal error: ALU operands")
        }
    }

    mutating func emitCall(_ instruction: MInstruction) throws {
        if case .call(let index) = instruction.op, let site = machine.calls[Int(index)].allocation {
            emitAllocation(site)
            return
        }
        defer { recordSafepoint(instruction: currentPosition / 2) }
        switch instruction.a {
        case .target(let target, _):
            let site = buffer.call(rel32: 0)
            relocations.append(Relocation(offset: UInt32(site.offset), kind: .pcRelative32,
                                          target: machine.targets[Int(target)], addend: Int64(site.pcRelativeAddend)))
        default:
            switch try place(instruction.a) {
            case .gpr(let register): buffer.call(register)
            case .memory(let memory): buffer.call(memory)
            default: throw EmissionError(message: "internal error: call target")
            }
        }
    }

    mutating func emitCopy(_ instruction: MInstruction, count: Int) throws {
        let destination = try gpr(instruction.a.register!)
        let source = try gpr(instruction.b.register!)
        func chunk(_ offset: Int, _ size: Int) {
            let from = Memory(base: source, displacement: Int32(offset))
            let to = Memory(base: destination, displacement: Int32(offset))
            if size == 8 {
                buffer.movsd(scratchXMM1, from)
                buffer.movsd(to, scratchXMM1)
            } else {
                buffer.movss(scratchXMM1, from)
                buffer.movss(to, scratchXMM1)
            }
        }
        // Eight bytes at a time through xmm15, the tail as one more chunk that overlaps
        // the previous one (the spans are disjoint or identical, so that is harmless).
        if count >= 8 {
            var offset = 0
            while offset + 8 < count {
                chunk(offset, 8)
                offset += 8
            }
            chunk(count - 8, 8)
        } else if count >= 4 {
            chunk(0, 4)
            if count > 4 { chunk(count - 4, 4) }
        } else if count > 0 {
            // One to three bytes, through a free scratch register or the temporary.
            let temporary: GPR
            if let scratch = freeScratch.popLast() {
                temporary = scratch
            } else if case .register(let register) = location(instruction.c.register!) {
                temporary = GPR(rawValue: UInt8(register))!
            } else {
                throw EmissionError(message: "internal error: no register for a byte copy")
            }
            for offset in 0..<count {
                buffer.movzx(.b32, temporary, .b8, Memory(base: source, displacement: Int32(offset)))
                buffer.mov(.b8, Memory(base: destination, displacement: Int32(offset)), temporary)
            }
        }
    }
}
