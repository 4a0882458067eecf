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

public func promoteStackSlots(_ function: inout Function, names: inout NameTable) {
    guard let start = function.blocks.first else { return }
    var candidate: [UInt32: SlotUse] = [:]
    for index in start.instructionRange {
        let instruction = function.instructions[index]
        guard [.alloc4, .alloc8, .alloc16].contains(instruction.op), instruction.to.isTemp,
              instruction.arg0.isConstant,
              function.constants[Int(instruction.arg0.index)].kind == .bits,
              function.constants[Int(instruction.arg0.index)].bits <= 8 else { continue }
        candidate[instruction.to.index] = SlotUse()
    }
    guard !candidate.isEmpty else { return }
    // Any use other than as the address of a load or store disqualifies a slot.
    func disqualify(_ value: Value) {
        if value.isTemp, candidate[value.index] != nil { candidate[value.index]!.ok = false }
    }
    for argument in function.phiArguments { disqualify(argument.value) }
    for block in function.blocks { disqualify(block.jump.arg) }
    for instruction in function.instructions {
        switch instruction.op {
        case .storeb, .storeh, .storew, .storel, .stores, .stored:
            disqualify(instruction.arg0)
            guard instruction.arg1.isTemp, var use = candidate[instruction.arg1.index] else { continue }
            let (width, cls): (Int, Class) = switch instruction.op {
            case .storeb: (1, .w)
            case .storeh: (2, .w)
            case .storew: (4, .w)
            case .storel: (8, .l)
            case .stores: (4, .s)
            default: (8, .d)
            }
            if use.storeClass == nil {
                use.storeWidth = width
                use.storeClass = cls
            } else if use.storeWidth != width || use.storeClass != cls {
                use.ok = false
            }
            candidate[instruction.arg1.index] = use
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
        guard instruction.arg0.isTemp, let use = candidate[instruction.arg0.index], use.ok else { continue }
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
        if !matches { candidate[instruction.arg0.index]!.ok = false }
    }
    var temporary: [UInt32: Value] = [:]
    var namer = TempNamer(function)
    // In slot order: the new temporaries' numbers decide register choices later, so they must
    // not follow the dictionary's per-process order.
    for slot in candidate.keys.sorted() where candidate[slot]!.ok {
        let use = candidate[slot]!
        let cls = use.storeClass ?? .l
        let name = namer.fresh(function.temps[Int(slot)].name, separator: ".v", first: 0, names: &names)
        function.temps.append(Temp(name: name, cls: cls, location: function.temps[Int(slot)].location))
        temporary[slot] = .temp(UInt32(function.temps.count - 1))
    }
    guard !temporary.isEmpty else { return }
    let zero = constantIndex(&function, Constant(bits: 0))
    for index in function.instructions.indices {
        var instruction = function.instructions[index]
        if instruction.op.isStore, instruction.arg1.isTemp, let to = temporary[instruction.arg1.index] {
            let cls = function.temps[Int(to.index)].cls ?? .l
            instruction = Instruction(.copy, cls, to: to, instruction.arg0, at: instruction.location)
        } else if instruction.op.isLoad, instruction.arg0.isTemp, let from = temporary[instruction.arg0.index] {
            let op: Opcode = switch instruction.op {
            case .loadsb: .extsb
            case .loadub: .extub
            case .loadsh: .extsh
            case .loaduh: .extuh
            case .loadsw: instruction.cls == .l ? .extsw : .copy
            case .loaduw: instruction.cls == .l ? .extuw : .copy
            default: .copy
            }
            instruction = Instruction(op, instruction.cls, to: instruction.to, from, at: instruction.location)
        } else if [.alloc4, .alloc8, .alloc16].contains(instruction.op), instruction.to.isTemp,
                  temporary[instruction.to.index] != nil {
            instruction = Instruction(.copy, .l, to: instruction.to, .constant(zero), at: instruction.location)
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
