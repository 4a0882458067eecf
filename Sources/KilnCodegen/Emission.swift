// Emission: a register-allocated machine function to bytes and relocations.
//
// Requires: a machine function and its allocation.
// Provides: a `CodeObject` whose bytes reference nothing outside themselves
// except through its relocation records, and whose constant pool follows the
// code (read rip-relative, so it moves with the code).
//
// The frame is rbp-based so every stack can be walked:
//
//     [rbp + 16 ...]   incoming stack arguments
//     [rbp + 8]        return address
//     [rbp]            caller's rbp
//     [rbp - 8 ...]    callee-saved registers this function uses
//     below            spill slots, then frame objects (allocs, aggregates)
//     [rsp ...]        outgoing stack arguments, pushed per call
//
// Spilled operands are handled here: r11 and r10 (and xmm15, xmm14) are never
// allocated, so each instruction may load up to two spilled values into them.

import KilnCode
import KilnIL
import KilnX64

struct Emitter: ~Copyable {
    let machine: MachineFunction
    let allocation: Allocation
    var buffer = CodeBuffer(capacity: 4096)
    var relocations: [Relocation] = []
    var lineTable: [(codeOffset: UInt32, sourceOffset: UInt32)] = []
    var blockLabels: [Label] = []
    var poolLabels: [Label] = []
    var savedBytes: Int32 = 0
    var frameSize: Int32 = 0
    var spillBase: Int32 = 0
    var objectOffsets: [Int32] = []
    /// Scratch registers still free for the instruction being emitted.
    var freeScratch = ScratchRegisters()
    /// For each block, the block a jump to it really goes to: blocks left empty after
    /// allocation (phi copies that became no-ops, then a jump) are skipped.
    var resolved: [Int] = []
    /// Position (2 x global instruction index) of the instruction being emitted: where a
    /// virtual register lives depends on it once intervals are split.
    var currentPosition: Int32 = 0
    /// A rip-relative relocation waiting for the instruction that uses it.
    var pendingTarget: (RelocationTarget, Int64)?
    /// Stack maps recorded so far (Emission+References.swift).
    var stackMaps: [StackMap] = []
    /// Allocation slow paths waiting to be emitted after the last block.
    var slowAllocationPaths: [SlowAllocationPath] = []

    init(machine: MachineFunction, allocation: Allocation) {
        self.machine = machine
        self.allocation = allocation
    }

    struct EmissionError: Error { var message: String }

    // MARK: Frame

    mutating func layOutFrame() {
        savedBytes = Int32(allocation.usedCalleeSaved.count * 8)
        spillBase = savedBytes
        var cursor = Int(savedBytes) + Int(allocation.spillSlotCount) * 8
        objectOffsets = []
        for object in machine.frameObjects {
            cursor += object.size
            cursor = (cursor + object.alignment - 1) & ~(object.alignment - 1)
            objectOffsets.append(Int32(cursor))
        }
        frameSize = Int32((cursor + 15) & ~15)
    }

    /// The stack check's slow path, bound after the function's code (nil: no check).
    var growLabel: Label?
    /// Where the function goes on after its stack check.
    var bodyLabel: Label?

    /// Bytes below the entry stack pointer a leaf function may use without a stack check:
    /// a proc segment keeps more than that in reserve below its limit (Procs/ProcStacks.swift
    /// in the loader), and a leaf calls nothing that could use the reserve meanwhile.
    static let uncheckedLeafBytes: Int32 = 128

    /// Bytes of dynamic `alloc` a function may make on a proc's stack (its check asks for them).
    static let dynamicAllocationBytes: Int32 = 64 << 10

    /// Variadic functions may be passed more stack arguments than they name; this many more
    /// bytes are copied when such a function's frame moves to a new proc segment.
    static let variadicExtraBytes = 512

    /// The stack check every function starts with: `lea r10, [rsp - need]; mov r11,
    /// [rip + slot($kiln.stack_limit)]; cmp r10, [r11]; jb grow`. The limit is the bottom of
    /// the running proc segment (plus its reserve), or 0 on a thread that runs no proc.
    mutating func stackCheck() {
        var need = Int32(8) + frameSize + Int32(machine.outgoingStackBytes)
        // Room for dynamic `alloc`s too: they are not checked one by one.
        if machine.hasDynamicAllocation { need += Self.dynamicAllocationBytes }
        if !machine.makesCalls && !machine.hasDynamicAllocation && need <= Self.uncheckedLeafBytes { return }
        let grow = buffer.makeLabel(), body = buffer.makeLabel()
        buffer.lea(.b64, .r10, Memory(base: .rsp, displacement: -need))
        emitSlotLoad(.r11, "kiln.stack_limit")
        buffer.alu(.cmp, .b64, .r10, Memory(base: .r11))
        buffer.jcc(.b, to: grow)
        try! buffer.bind(body)
        growLabel = grow
        bodyLabel = body
    }

    /// The stack check's slow path: `mov r11d, stack argument bytes; call [rip + slot($kiln.grow)];
    /// jmp body`. The grow routine runs the rest of the function on a new segment and
    /// returns to its caller itself, so the `jmp` only runs when no segment was needed.
    mutating func stackCheckSlowPath() throws {
        guard let grow = growLabel, let body = bodyLabel else { return }
        try bind(grow)
        let argumentBytes = machine.incomingStackBytes + (machine.isVariadic ? Self.variadicExtraBytes : 0)
        buffer.mov(.b32, .r11, imm: Int64(argumentBytes))
        buffer.call(Memory.rip(0))
        recordSlot("kiln.grow")
        buffer.jmp(to: body)
    }

    /// `mov register, [rip + slot(name)]`: the address an address slot holds.
    mutating func emitSlotLoad(_ register: GPR, _ name: String) {
        buffer.mov(.b64, register, Memory.rip(0))
        recordSlot(name)
    }

    /// A relocation of the last rip-relative operand to the address slot of `name`.
    mutating func recordSlot(_ name: String) {
        let site = buffer.lastRIPRelativeSite!
        relocations.append(Relocation(offset: UInt32(site.offset), kind: .pcRelative32, target: .addressSlot(name),
                                      addend: Int64(site.pcRelativeAddend)))
    }

    mutating func prologue() {
        stackCheck()
        buffer.push(.rbp)
        buffer.mov(.b64, .rbp, .rsp)
        for register in allocation.usedCalleeSaved { buffer.push(register) }
        let rest = frameSize - savedBytes
        if rest > 0 { buffer.alu(.sub, .b64, .rsp, imm: rest) }
    }

    mutating func epilogue() {
        if frameSize - savedBytes > 0 || machine.hasDynamicAllocation {
            buffer.lea(.b64, .rsp, Memory(base: .rbp, displacement: -savedBytes))
        }
        for register in allocation.usedCalleeSaved.reversed() { buffer.pop(register) }
        buffer.pop(.rbp)
        buffer.ret()
    }

    // MARK: Driver

    mutating func run() throws -> CodeObject {
        layOutFrame()
        buffer.reserveLabels(machine.blocks.count + machine.pool.count)
        blockLabels = machine.blocks.map { _ in buffer.makeLabel() }
        poolLabels = machine.pool.map { _ in buffer.makeLabel() }
        prologue()
        resolveEmptyBlocks()
        let emitted = machine.blocks.indices.filter { resolved[$0] == $0 }
        var firstIndex: [Int] = []
        var total = 0
        for block in machine.blocks {
            firstIndex.append(total)
            total += block.count
        }
        var lastLocation = SourceLocation.none
        for (order, index) in emitted.enumerated() {
            let block = machine.blocks[index]
            let next = order + 1 < emitted.count ? emitted[order + 1] : -1
            try bind(blockLabels[index])
            for (position, instruction) in block.enumerated() {
                let global = firstIndex[index] + position
                currentPosition = Int32(2 * global)
                freeScratch = ScratchRegisters()
                if position == 0 {
                    let moves = allocation.movesAtEntry(global)
                    if !moves.isEmpty { try emitLocationMoves(moves) }
                }
                let moves = allocation.movesBefore(global)
                if !moves.isEmpty { try emitLocationMoves(moves) }
                if instruction.location != lastLocation, instruction.location != .none {
                    lastLocation = instruction.location
                    lineTable.append((UInt32(buffer.count), instruction.location.offset))
                }
                if case .jmp(let target) = instruction.op, resolved[Int(target)] == next, position == block.count - 1 {
                    continue
                }
                // `jcc T; jmp F` where T comes next: `jcc !c F` and fall through. (No copies
                // are ever placed between the two.)
                if case .jcc(let condition, let target) = instruction.op, position == block.count - 2,
                   resolved[Int(target)] == next, case .jmp(let other) = block[position + 1].op {
                    buffer.jcc(condition.negated, to: blockLabels[resolved[Int(other)]])
                    break
                }
                try emit(instruction)
            }
        }
        try stackCheckSlowPath()
        emitSlowAllocationPaths()
        if !machine.pool.isEmpty {
            buffer.align(to: 16)
            for (index, entry) in machine.pool.enumerated() {
                try bind(poolLabels[index])
                buffer.emit(entry)
            }
        }
        do {
            try buffer.finish()
        } catch {
            throw EmissionError(message: "internal error: \(error)")
        }
        stackMaps.sort { $0.codeOffset < $1.codeOffset }
        return CodeObject(name: machine.name, isExported: machine.isExported, code: buffer.bytes,
                          relocations: relocations, lineTable: lineTable, stackMaps: stackMaps)
    }

    /// Whether a block does nothing but jump once its copies are allocated; its target if so.
    func isEmpty(_ index: Int, firstIndex: Int) -> Int? {
        let block = machine.blocks[index]
        guard let last = block.last, case .jmp(let target) = last.op, block.count <= 2,
              allocation.movesAtEntry(firstIndex).isEmpty else { return nil }
        for position in 0..<block.count where !allocation.movesBefore(firstIndex + position).isEmpty { return nil }
        if block.count == 2 {
            guard case .parallelMove(let moves) = block[0].op else { return nil }
            let at = Int32(2 * firstIndex)
            for (destination, source) in machine.moves[Int(moves)] where source != .none {
                guard case .reg(let register) = source,
                      location(register, at: at) == location(destination, at: at) else { return nil }
            }
        }
        return Int(target)
    }

    mutating func resolveEmptyBlocks() {
        var firstIndex: [Int] = []
        var total = 0
        for block in machine.blocks {
            firstIndex.append(total)
            total += block.count
        }
        // Each block's chain of empty blocks is followed once: every block on it is resolved to
        // the chain's end, so later chains stop where they meet a resolved block. A chain that
        // closes on itself (an empty infinite loop) keeps the block where it closed.
        let unresolved = -1
        resolved = [Int](repeating: unresolved, count: machine.blocks.count)
        var onPath = [Bool](repeating: false, count: machine.blocks.count)
        var path: [Int] = []
        for index in machine.blocks.indices where resolved[index] == unresolved {
            var current = index
            while resolved[current] == unresolved, !onPath[current] {
                guard current != 0, let next = isEmpty(current, firstIndex: firstIndex[current]), next != current
                else { resolved[current] = current; break }
                onPath[current] = true
                path.append(current)
                current = next
            }
            if resolved[current] == unresolved { resolved[current] = current }
            let end = resolved[current]
            for block in path {
                resolved[block] = end
                onPath[block] = false
            }
            path.removeAll(keepingCapacity: true)
        }
    }

    mutating func bind(_ label: Label) throws {
        do {
            try buffer.bind(label)
        } catch {
            throw EmissionError(message: "internal error: \(error)")
        }
    }

    // MARK: Operands

    func location(_ register: Reg) -> Location { location(register, at: currentPosition) }

    func location(_ register: Reg, at position: Int32) -> Location {
        isVirtual(register) ? allocation.location(register, at: position) : .register(register)
    }

    func spillMemory(_ slot: Int32) -> Memory {
        Memory(base: .rbp, displacement: -(spillBase + 8 * (slot + 1)))
    }

    mutating func takeScratch() throws -> GPR {
        guard let register = freeScratch.popLast() else {
            throw EmissionError(message: "internal error: out of scratch registers in \(machine.name)")
        }
        return register
    }

    /// A general-purpose register holding `register`'s value (loading a spilled one into a scratch).
    mutating func gpr(_ register: Reg) throws -> GPR {
        switch location(register) {
        case .register(let physicalRegister): return GPR(rawValue: UInt8(physicalRegister))!
        case .spill(let slot):
            let scratch = try takeScratch()
            buffer.mov(.b64, scratch, spillMemory(slot))
            return scratch
        }
    }

    func xmm(_ register: Reg) -> XMM? {
        if case .register(let physicalRegister) = location(register) { return XMM(rawValue: UInt8(physicalRegister - 16))! }
        return nil
    }

    /// The x86 memory operand for a machine memory operand.
    mutating func memory(_ operand: MMem) throws -> Memory {
        switch operand.base {
        case .target(let target):
            pendingTarget = (machine.targets[Int(target)], Int64(operand.displacement))
            return .rip(0)
        case .pool(let index):
            return .rip(poolLabels[Int(index)], offset: operand.displacement)
        case .frame(let index):
            return Memory(base: .rbp, displacement: operand.displacement - objectOffsets[Int(index)])
        case .incoming:
            return Memory(base: .rbp, displacement: 16 + operand.displacement)
        case .outgoing:
            return Memory(base: .rsp, displacement: operand.displacement)
        case .reg(let base):
            let baseRegister = try gpr(base)
            guard operand.index >= 0 else { return Memory(base: baseRegister, displacement: operand.displacement) }
            let indexRegister = try gpr(operand.index)
            guard let index = IndexRegister(indexRegister) else {
                throw EmissionError(message: "internal error: rsp as an index")
            }
            return Memory(base: baseRegister, index: index, scale: operand.scale, displacement: operand.displacement)
        }
    }

    /// Turns a pending rip-relative target into a relocation once its instruction is out.
    mutating func recordTarget() {
        guard let (target, displacement) = pendingTarget, let site = buffer.lastRIPRelativeSite else { return }
        pendingTarget = nil
        relocations.append(Relocation(offset: UInt32(site.offset), kind: .pcRelative32, target: target,
                                      addend: displacement + Int64(site.pcRelativeAddend)))
    }

    /// Where an operand lives, as something an instruction can read.
    enum Place {
        case gpr(GPR)
        case xmm(XMM)
        case memory(Memory)
        case immediate(Int64)
    }

    mutating func place(_ operand: MOperand) throws -> Place {
        switch operand {
        case .reg(let register):
            switch location(register) {
            case .register(let physicalRegister):
                return physicalRegister < 16 ? .gpr(GPR(rawValue: UInt8(physicalRegister))!)
                    : .xmm(XMM(rawValue: UInt8(physicalRegister - 16))!)
            case .spill(let slot):
                return .memory(spillMemory(slot))
            }
        case .imm(let value):
            return .immediate(value)
        case .mem(let operand):
            return .memory(try memory(operand))
        case .none, .target:
            throw EmissionError(message: "internal error: operand \(operand) has no place")
        }
    }
}

/// An immediate cut to the width it is used at, as the encoder expects it.
func truncated(_ value: Int64, _ width: Width) -> Int64 {
    switch width {
    case .b8: Int64(Int8(truncatingIfNeeded: value))
    case .b16: Int64(Int16(truncatingIfNeeded: value))
    case .b32: Int64(Int32(truncatingIfNeeded: value))
    case .b64: value
    }
}

/// The scratch registers an instruction has not used yet: r10 first, then r11. A value, not an
/// array, because it is reset before every instruction.
struct ScratchRegisters {
    private var left = 2

    mutating func popLast() -> GPR? {
        guard left > 0 else { return nil }
        left -= 1
        return left == 1 ? scratchGPR2 : scratchGPR1
    }
}
