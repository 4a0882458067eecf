// Promotion of stack slots to temporaries.
//
// Front ends like cproc give every local variable an `alloc` and read and
// write it with loads and stores; nothing can be kept in a register until
// those slots become temporaries. A slot qualifies when it is allocated in
// the start block with a constant size, and its address is used only as the
// address operand of loads and stores of one width, never stored, passed,
// compared or offset. Each store becomes a `copy` into one new temporary;
// each load becomes a `copy` or an extension of it. The temporary is assigned
// many times, so SSA construction, which runs next, gives it phis.
//
// Requires: a verified function, not yet in SSA form.
// Provides: fewer `alloc`s, loads and stores; the promoted `alloc`s become
// dead copies of 0 (dead code elimination removes them).
// Invalidates: nothing else (instructions are rewritten in place).

import KilnIL

/// How the accesses to one slot read and write it.
private struct SlotUse {
    var storeWidth: Int = 0
    var storeClass: Class?
    var ok = true
}

extension Opcode {
    var isAlloc: Bool { self == .alloc4 || self == .alloc8 || self == .alloc16 }
}

public func promoteStackSlots(_ function: inout Function, names: inout NameTable) {
    promoteStackSlots(&function, names: &names, marks: NameMarks())
}

/// The same, with the pipeline's name marks.
func promoteStackSlots(_ function: inout Function, names: inout NameTable, marks: NameMarks) {
    guard let start = function.blocks.first else { return }
    // Each candidate slot's temporary indexes `uses` through `slotOf` (-1: not a candidate).
    var slotOf: [Int32] = []
    var uses: [SlotUse] = []
    for index in start.instructionRange {
        let instruction = function.instructions[index]
        guard instruction.op.isAlloc, instruction.to.isTemp, instruction.arg0.isConstant,
              function.constants[Int(instruction.arg0.index)].kind == .bits,
              function.constants[Int(instruction.arg0.index)].bits <= 8 else { continue }
        if slotOf.isEmpty { slotOf = [Int32](repeating: -1, count: function.temps.count) }
        slotOf[Int(instruction.to.index)] = Int32(uses.count)
        uses.append(SlotUse())
    }
    guard !uses.isEmpty else { return }
    @inline(__always) func slot(_ value: Value) -> Int? {
        guard value.isTemp else { return nil }
        let slot = slotOf[Int(value.index)]
        return slot >= 0 ? Int(slot) : nil
    }
    // Any use other than as the address of a load or store disqualifies a slot.
    func disqualify(_ value: Value) {
        if let slot = slot(value) { uses[slot].ok = false }
    }
    for argument in function.phiArguments { disqualify(argument.value) }
    for block in function.blocks { disqualify(block.jump.arg) }
    for instruction in function.instructions {
        switch instruction.op {
        case .storeb, .storeh, .storew, .storel, .stores, .stored:
            disqualify(instruction.arg0)
            guard let slot = slot(instruction.arg1) else { continue }
            let (width, cls): (Int, Class) = switch instruction.op {
            case .storeb: (1, .w)
            case .storeh: (2, .w)
            case .storew: (4, .w)
            case .storel: (8, .l)
            case .stores: (4, .s)
            default: (8, .d)
            }
            if uses[slot].storeClass == nil {
                uses[slot].storeWidth = width
                uses[slot].storeClass = cls
            } else if uses[slot].storeWidth != width || uses[slot].storeClass != cls {
                uses[slot].ok = false
            }
        case .loadsb, .loadub, .loadsh, .loaduh, .loadsw, .loaduw, .load:
            disqualify(instruction.arg1)
        case .alloc4, .alloc8, .alloc16:
            break
        default:
            disqualify(instruction.arg0)
            disqualify(instruction.arg1)
        }
    }
    // Loads must read exactly what the stores wrote.
    for instruction in function.instructions where instruction.op.isLoad {
        guard let slot = slot(instruction.arg0), uses[slot].ok else { continue }
        let use = uses[slot]
        let matches: Bool = switch (instruction.op, use.storeWidth, use.storeClass) {
        case (.loadsb, 1, _), (.loadub, 1, _), (.loadsh, 2, _), (.loaduh, 2, _): true
        case (.loadsw, 4, .w?), (.loaduw, 4, .w?): true
        case (.load, 4, .w?): instruction.cls == .w
        case (.load, 8, .l?): instruction.cls == .l || instruction.cls == .w
        case (.load, 4, .s?): instruction.cls == .s
        case (.load, 8, .d?): instruction.cls == .d
        case (_, 0, nil): true
        default: false
        }
        if !matches { uses[slot].ok = false }
    }
    guard uses.contains(where: \.ok) else { return }
    // The temporary that replaces each promoted slot, in slot order (the new temporaries'
    // numbers decide register choices later, so they must not depend on anything else).
    var temporary = [Value](repeating: .none, count: uses.count)
    var namer = TempNamer(function, marks: marks)
    for index in start.instructionRange {
        let instruction = function.instructions[index]
        guard instruction.op.isAlloc, let slot = slot(instruction.to), uses[slot].ok, temporary[slot].isNone else { continue }
        var counter = 0
        let name = namer.fresh(function.temps[Int(instruction.to.index)].name, separator: ".v", counter: &counter,
                               names: &names)
        function.temps.append(Temp(name: name, cls: uses[slot].storeClass ?? .l,
                                   location: function.temps[Int(instruction.to.index)].location))
        temporary[slot] = .temp(UInt32(function.temps.count - 1))
    }
    let zero = constantIndex(&function, Constant(bits: 0))
    for index in function.instructions.indices {
        var instruction = function.instructions[index]
        if instruction.op.isStore, let slot = slot(instruction.arg1), uses[slot].ok {
            let to = temporary[slot]
            let cls = function.temps[Int(to.index)].cls ?? .l
            instruction = Instruction(.copy, cls, to: to, instruction.arg0, at: instruction.location)
        } else if instruction.op.isLoad, let slot = slot(instruction.arg0), uses[slot].ok {
            let op: Opcode = switch instruction.op {
            case .loadsb: .extsb
            case .loadub: .extub
            case .loadsh: .extsh
            case .loaduh: .extuh
            case .loadsw: instruction.cls == .l ? .extsw : .copy
            case .loaduw: instruction.cls == .l ? .extuw : .copy
            default: .copy
            }
            instruction = Instruction(op, instruction.cls, to: instruction.to, temporary[slot], at: instruction.location)
        } else if instruction.op.isAlloc, let slot = slot(instruction.to), uses[slot].ok {
            instruction = Instruction(.copy, .l, to: instruction.to, .constant(zero), at: instruction.location)
        } else {
            continue
        }
        function.instructions[index] = instruction
    }
}

/// The index of a constant in the function's table, adding it if absent.
func constantIndex(_ function: inout Function, _ constant: Constant) -> UInt32 {
    if let index = function.constants.firstIndex(of: constant) { return UInt32(index) }
    function.constants.append(constant)
    return UInt32(function.constants.count - 1)
}
