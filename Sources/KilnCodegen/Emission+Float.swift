// Encoding SSE instructions and parallel copies.

import KilnCode
import KilnX64

extension Emitter {
    func precision(_ width: Width) -> Precision { width == .b32 ? .single : .double }

    /// Runs `body` with an SSE register for the destination, storing it if spilled.
    mutating func writeXMM(_ operand: MOperand, _ width: Width, reads: Bool, _ body: (inout CodeBuffer, XMM) -> Void) throws {
        guard case .reg(let register) = operand else { throw EmissionError(message: "internal error: SSE destination") }
        if let xmm = xmm(register) {
            body(&buffer, xmm)
            return
        }
        guard case .spill(let slot) = location(register) else { return }
        if reads { buffer.movsd(scratchXMM1, spillMemory(slot)) }
        body(&buffer, scratchXMM1)
        buffer.movsd(spillMemory(slot), scratchXMM1)
    }

    mutating func emitFloat(_ instruction: MInstruction) throws {
        let width = instruction.width
        let p = precision(width)
        switch instruction.op {
        case .fmov:
            let destination = try place(instruction.a)
            let source = try place(instruction.b)
            switch (destination, source) {
            case (.xmm(let to), .xmm(let from)): if to != from { buffer.movaps(to, from) }
            case (.xmm(let to), .memory(let memory)): p == .single ? buffer.movss(to, memory) : buffer.movsd(to, memory)
            case (.memory(let memory), .xmm(let from)): p == .single ? buffer.movss(memory, from) : buffer.movsd(memory, from)
            case (.memory(let memory), .memory(let from)):
                buffer.movsd(scratchXMM1, from)
                buffer.movsd(memory, scratchXMM1)
            default: throw EmissionError(message: "internal error: fmov operands")
            }
        case .fop(let operation):
            let source = try place(instruction.b)
            try writeXMM(instruction.a, width, reads: true) { buffer, register in
                switch source {
                case .xmm(let other): buffer.scalar(operation, p, register, other)
                case .memory(let memory): buffer.scalar(operation, p, register, memory)
                default: break
                }
            }
        case .flogic(let operation):
            var source = try place(instruction.b)
            if case .memory(let memory) = source, !memory.isRIPRelative {
                // Packed logic needs an aligned 16-byte operand: spill slots are 8 bytes.
                buffer.movsd(scratchXMM2, memory)
                source = .xmm(scratchXMM2)
            }
            try writeXMM(instruction.a, width, reads: true) { buffer, register in
                switch source {
                case .xmm(let other): buffer.packedLogic(operation, p, register, other)
                case .memory(let memory): buffer.packedLogic(operation, p, register, memory)
                default: break
                }
            }
        case .ucomis:
            var first = try place(instruction.a)
            if case .memory(let memory) = first {
                buffer.movsd(scratchXMM1, memory)
                first = .xmm(scratchXMM1)
            }
            guard case .xmm(let register) = first else { throw EmissionError(message: "internal error: ucomis") }
            switch try place(instruction.b) {
            case .xmm(let other): buffer.ucomis(p, register, other)
            case .memory(let memory): buffer.ucomis(p, register, memory)
            default: throw EmissionError(message: "internal error: ucomis operand")
            }
        case .intToFloat(let sourceWidth):
            let source = try place(instruction.b)
            try writeXMM(instruction.a, width, reads: false) { buffer, register in
                switch source {
                case .gpr(let other): buffer.cvtsi2s(p, register, sourceWidth, other)
                case .memory(let memory): buffer.cvtsi2s(p, register, sourceWidth, memory)
                default: break
                }
            }
        case .floatToInt(let sourcePrecision):
            let source = try place(instruction.b)
            try writeGPR(instruction.a, width) { buffer, register in
                switch source {
                case .xmm(let other): buffer.cvtts2si(sourcePrecision, width, register, other)
                case .memory(let memory): buffer.cvtts2si(sourcePrecision, width, register, memory)
                default: break
                }
            }
        case .floatToFloat:
            let source = try place(instruction.b)
            try writeXMM(instruction.a, width, reads: false) { buffer, register in
                switch source {
                case .xmm(let other): p == .double ? buffer.cvtss2sd(register, other) : buffer.cvtsd2ss(register, other)
                case .memory(let memory): p == .double ? buffer.cvtss2sd(register, memory) : buffer.cvtsd2ss(register, memory)
                default: break
                }
            }
        case .moveBetweenFiles:
            let destination = try place(instruction.a)
            let source = try place(instruction.b)
            switch (destination, source) {
            case (.xmm(let to), .gpr(let from)): width == .b32 ? buffer.movd(to, from) : buffer.movq(to, from)
            case (.gpr(let to), .xmm(let from)): width == .b32 ? buffer.movd(to, from) : buffer.movq(to, from)
            case (.xmm(let to), .memory(let memory)): width == .b32 ? buffer.movss(to, memory) : buffer.movsd(to, memory)
            case (.gpr(let to), .memory(let memory)): buffer.mov(width, to, memory)
            case (.memory(let memory), .gpr(let from)): buffer.mov(width, memory, from)
            case (.memory(let memory), .xmm(let from)): width == .b32 ? buffer.movss(memory, from) : buffer.movsd(memory, from)
            case (.memory(let memory), .memory(let from)):
                let scratch = try takeScratch()
                buffer.mov(.b64, scratch, from)
                buffer.mov(.b64, memory, scratch)
            default: throw EmissionError(message: "internal error: register-file move")
            }
        default:
            throw EmissionError(message: "internal error: not an SSE instruction")
        }
    }

    // MARK: Parallel copies

    /// A place a parallel copy writes or reads, comparable so cycles can be found.
    enum Cell: Equatable {
        case gpr(GPR), xmm(XMM), slot(Int32)
    }

    struct PendingMove {
        var destination: Cell
        var source: MOperand
        var sourceCell: Cell?
        var isFloat: Bool
    }

    func cell(_ location: Location) -> Cell {
        switch location {
        case .register(let physicalRegister):
            physicalRegister < 16 ? .gpr(GPR(rawValue: UInt8(physicalRegister))!) : .xmm(XMM(rawValue: UInt8(physicalRegister - 16))!)
        case .spill(let slot): .slot(slot)
        }
    }

    /// The phi copies of an edge, from virtual registers and constants; a copy of an undefined
    /// value (source `.none`) is left out.
    mutating func emitParallelMove(_ moves: [(destination: Reg, source: MOperand)]) throws {
        var pending: [PendingMove] = []
        for (destination, source) in moves where source != .none {
            var sourceCell: Cell?
            if case .reg(let register) = source { sourceCell = cell(location(register)) }
            pending.append(PendingMove(destination: cell(location(destination)), source: source, sourceCell: sourceCell,
                                       isFloat: machine.bank(destination) == .xmm))
        }
        try emitPending(pending)
    }

    /// The copies the allocator asks for between pieces of split intervals.
    mutating func emitLocationMoves(_ moves: ArraySlice<LocationMove>) throws {
        try emitPending(moves.map {
            PendingMove(destination: cell($0.to), source: .none, sourceCell: cell($0.from), isFloat: $0.isFloat)
        })
    }

    /// Emits copies that all read before any writes, breaking cycles through a scratch register.
    mutating func emitPending(_ moves: [PendingMove]) throws {
        var pending = moves.filter { $0.sourceCell != $0.destination }
        while !pending.isEmpty {
            if let ready = pending.firstIndex(where: { move in !pending.contains { $0.sourceCell == move.destination } }) {
                let move = pending.remove(at: ready)
                try copy(move.source, sourceCell: move.sourceCell, to: move.destination, isFloat: move.isFloat)
                continue
            }
            // Every destination is still read by another copy: a cycle. Park the first
            // destination's value in a scratch register and read it from there.
            let parked = pending[0].destination
            let isFloat = pending[0].isFloat
            let scratch: Cell = isFloat ? .xmm(scratchXMM1) : .gpr(scratchGPR1)
            try copy(.none, sourceCell: parked, to: scratch, isFloat: isFloat)
            for index in pending.indices where pending[index].sourceCell == parked {
                pending[index].sourceCell = scratch
            }
        }
    }

    /// One copy of a parallel move; memory-to-memory goes through r10 or xmm14.
    mutating func copy(_ source: MOperand, sourceCell: Cell?, to destination: Cell, isFloat: Bool) throws {
        func memory(_ cell: Cell) -> Memory? { if case .slot(let slot) = cell { spillMemory(slot) } else { nil } }
        if let sourceCell {
            switch (destination, sourceCell) {
            case (.gpr(let to), .gpr(let from)): buffer.mov(.b64, to, from)
            case (.xmm(let to), .xmm(let from)): buffer.movaps(to, from)
            case (.gpr(let to), .slot): buffer.mov(.b64, to, memory(sourceCell)!)
            case (.xmm(let to), .slot): buffer.movsd(to, memory(sourceCell)!)
            case (.slot, .gpr(let from)): buffer.mov(.b64, memory(destination)!, from)
            case (.slot, .xmm(let from)): buffer.movsd(memory(destination)!, from)
            case (.slot, .slot):
                buffer.mov(.b64, scratchGPR2, memory(sourceCell)!)
                buffer.mov(.b64, memory(destination)!, scratchGPR2)
            default: throw EmissionError(message: "internal error: copy between register files")
            }
            return
        }
        switch (destination, source) {
        case (.gpr(let to), .imm(let value)): buffer.mov(.b64, to, imm: value)
        case (.slot, .imm(let value)):
            if value >= Int64(Int32.min) && value <= Int64(Int32.max) {
                buffer.mov(.b64, memory(destination)!, imm: Int32(value))
            } else {
                buffer.mov(.b64, scratchGPR2, imm: value)
                buffer.mov(.b64, memory(destination)!, scratchGPR2)
            }
        case (.xmm(let to), .mem(let operand)):
            buffer.movsd(to, try self.memory(operand))
        case (.slot, .mem(let operand)):
            buffer.movsd(scratchXMM2, try self.memory(operand))
            buffer.movsd(memory(destination)!, scratchXMM2)
        default:
            throw EmissionError(message: "internal error: copy source \(source)")
        }
        recordTarget()
    }
}
