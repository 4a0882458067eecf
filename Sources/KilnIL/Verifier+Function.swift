// Function-level rules: classes of temporaries, operands, calls, phis, jumps.

extension Verifier {
    func checkFunction(_ function: inout Function) {
        assignClasses(&function)
        // Predecessors matter only for phis; most functions have none.
        var marks = (predecessor: [Int32](), seen: [Int32](), phi: Int32(-1))
        var predecessors = (start: [Int32](), blocks: [BlockID]())
        if !function.phis.isEmpty {
            predecessors = function.predecessorTable()
            marks.predecessor = [Int32](repeating: -1, count: function.blocks.count)
            marks.seen = marks.predecessor
        }
        for (blockIndex, block) in function.blocks.enumerated() {
            if block.phiCount > 0 {
                let list = predecessors.blocks[Int(predecessors.start[blockIndex])..<Int(predecessors.start[blockIndex + 1])]
                checkPhis(function, block: blockIndex, predecessors: list, marks: &marks)
            }
            checkInstructions(function, block)
            checkJump(function, block)
        }
    }

    /// Gives every temporary the class of its definitions; reports conflicts and temporaries never defined.
    func assignClasses(_ function: inout Function) {
        var definedAt = [SourceLocation](repeating: .none, count: function.temps.count)
        var conflicts: [(Int, Class, SourceLocation)] = []
        func define(_ value: Value, _ cls: Class, _ location: SourceLocation) {
            guard value.isTemp else { return }
            let index = Int(value.index)
            if let existing = function.temps[index].cls {
                if existing != cls { conflicts.append((index, cls, location)) }
            } else {
                function.temps[index].cls = cls
                definedAt[index] = location
            }
        }
        for block in function.blocks {
            for phi in function.phis[block.phiRange] { define(phi.to, phi.cls, phi.location) }
            for instruction in function.instructions[block.instructionRange] where !instruction.to.isNone {
                define(instruction.to, instruction.cls, instruction.location)
            }
        }
        for (index, cls, location) in conflicts {
            let temp = function.temps[index]
            diagnostics.error("temporary %\(text(temp.name)) is assigned with class \(cls.letter) here and \(temp.cls!.letter) at \(position(definedAt[index]))", at: location)
        }
        for temp in function.temps where temp.cls == nil {
            diagnostics.error("temporary %\(text(temp.name)) is used but never defined", at: temp.location)
        }
    }

    /// Checks that `value` may be used where `expected` is required.
    func checkUse(_ function: Function, _ value: Value, _ expected: Class, _ what: @autoclosure () -> String,
                           at location: SourceLocation) {
        switch value.kind {
        case .temp:
            guard let cls = function.temps[Int(value.index)].cls else { return }
            if !cls.canBeUsed(as: expected) {
                diagnostics.error("\(what()) must be of class \(expected.letter), but %\(text(function.temps[Int(value.index)].name)) is \(cls.letter)", at: location)
            }
        case .constant:
            let constant = function.constants[Int(value.index)]
            if expected == .r {
                if constant.kind != .bits || constant.floatKind != .none || constant.bits & 1 != 0 {
                    diagnostics.error("\(what()) is a managed reference: a constant there must be an even integer (a tagged integer)", at: location)
                }
            } else if constant.kind == .address {
                checkAddress(constant, at: location)
                if !expected.isInteger || (constant.isThreadLocal && expected == .w) {
                    diagnostics.error("\(what()) must be of class \(expected.letter), but an address is an l", at: location)
                }
            }
        case .type:
            diagnostics.error("\(what()) cannot be a type", at: location)
        case .none:
            diagnostics.error("\(what()) is missing", at: location)
        }
    }

    /// `thread $x` must name thread-local data, and thread-local data must be reached with `thread`.
    func checkAddress(_ constant: Constant, at location: SourceLocation) {
        guard let target = symbols[constant.symbol] else {
            if text(constant.symbol).hasPrefix("kiln.") {
                diagnostics.error("$\(text(constant.symbol)) is a runtime service: call it, do not take its address", at: location)
            }
            return
        }
        if target.isThread && !constant.isThreadLocal {
            diagnostics.error("thread-local $\(text(constant.symbol)) must be referenced as thread $\(text(constant.symbol))", at: location)
        } else if !target.isThread && constant.isThreadLocal {
            diagnostics.error("$\(text(constant.symbol)) is not thread-local data; remove 'thread'", at: location)
        }
    }

    func checkInstructions(_ function: Function, _ block: Block) {
        var index = block.instructionStart
        let end = block.instructionStart + block.instructionCount
        var callStart: UInt32?
        while index < end {
            let instruction = function.instructions[Int(index)]
            let op = instruction.op
            switch op {
            case .par, .parsb, .parub, .parsh, .paruh, .parc, .pare:
                break
            case .arg, .argsb, .argub, .argsh, .arguh, .argc, .arge, .argv:
                if callStart == nil { callStart = index }
            case .call:
                checkCall(function, arguments: (callStart ?? index)..<index, call: instruction)
                callStart = nil
            case .blit0:
                checkUse(function, instruction.arg0, .l, "the blit source", at: instruction.location)
                checkUse(function, instruction.arg1, .l, "the blit destination", at: instruction.location)
                index += 1
            case .rstore0, .rstoreb0:
                let isByte = op == .rstoreb0
                checkUse(function, instruction.arg0, isByte ? .w : .r, "the stored value", at: instruction.location)
                checkUse(function, instruction.arg1, .r, "the object", at: instruction.location)
                if index + 1 < end {
                    checkUse(function, function.instructions[Int(index) + 1].arg0, .l, "the index", at: instruction.location)
                }
                index += 1
            case .blit1, .rstore1, .rstoreb1:
                break
            case .dbgloc:
                // The parser makes both operands from integer literals; the column is optional.
                break
            default:
                checkOrdinary(function, instruction)
            }
            index += 1
        }
    }

    func checkOrdinary(_ function: Function, _ instruction: Instruction) {
        let op = instruction.op
        guard let (first, second) = op.operandClasses(result: instruction.cls) else {
            diagnostics.error("\(op.name) cannot produce a result of class \(instruction.cls.letter)", at: instruction.location)
            return
        }
        checkOperand(function, instruction, slot: 0, expected: first, value: instruction.arg0)
        checkOperand(function, instruction, slot: 1, expected: second, value: instruction.arg1)
        if (op == .alloc4 || op == .alloc8 || op == .alloc16), instruction.arg0.isConstant {
            let constant = function.constants[Int(instruction.arg0.index)]
            if constant.kind == .bits && Int64(bitPattern: constant.bits) < 0 {
                diagnostics.error("negative allocation size \(Int64(bitPattern: constant.bits))", at: instruction.location)
            } else if constant.kind == .bits && constant.bits > 1 << 31 {
                diagnostics.error("allocation of \(constant.bits) bytes is too large for the stack", at: instruction.location)
            }
        }
    }

    func checkOperand(_ function: Function, _ instruction: Instruction, slot: Int, expected: OperandClass,
                               value: Value) {
        let op = instruction.op
        let ordinal = slot == 0 ? "first" : "second"
        if expected == .none {
            if !value.isNone { diagnostics.error("\(op.name) takes no \(ordinal) operand", at: instruction.location) }
            return
        }
        guard let cls = expected.valueClass else { return }
        if value.isNone {
            diagnostics.error("\(op.name) is missing its \(ordinal) operand", at: instruction.location)
            return
        }
        checkUse(function, value, cls, "the \(ordinal) operand of \(op.name)", at: instruction.location)
    }

    func checkCall(_ function: Function, arguments: Range<UInt32>, call: Instruction) {
        // A runtime service is called by name, which is not taking its address.
        let isServiceCall = call.arg0.isConstant && {
            let callee = function.constants[Int(call.arg0.index)]
            return callee.kind == .address && !callee.isThreadLocal && text(callee.symbol).hasPrefix("kiln.")
        }()
        if !isServiceCall {
            checkUse(function, call.arg0, .l, "the callee", at: call.location)
        }
        var sawEllipsis = false
        var sawEnv = false
        for index in arguments {
            let argument = function.instructions[Int(index)]
            switch argument.op {
            case .argv:
                sawEllipsis = true
            case .arge:
                if index != arguments.lowerBound {
                    diagnostics.error("the environment argument must come first", at: argument.location)
                }
                sawEnv = true
                checkUse(function, argument.arg0, argument.cls == .r ? .r : .l, "the environment argument", at: argument.location)
            case .argc:
                checkUse(function, argument.arg1, .l, "an aggregate argument (a pointer)", at: argument.location)
            default:
                checkUse(function, argument.arg0, argument.cls, "the argument", at: argument.location)
            }
        }
        if sawEllipsis && sawEnv {
            diagnostics.error("a variadic call cannot pass an environment (the SysV ABI uses %al and %rax for both)", at: call.location)
        }
        if call.arg0.isConstant {
            let callee = function.constants[Int(call.arg0.index)]
            if callee.kind == .address && !callee.isThreadLocal && text(callee.symbol).hasPrefix("kiln.") {
                checkRuntimeService(function, callee.symbol, arguments: arguments, call: call)
            }
        }
    }

    /// Checks each phi of `block` against the block's predecessors. Marks stamped with the
    /// block and the phi keep this linear in the number of arguments (a phi may have a hundred
    /// thousand).
    func checkPhis(_ function: Function, block: Int, predecessors: ArraySlice<BlockID>,
                   marks: inout (predecessor: [Int32], seen: [Int32], phi: Int32)) {
        let phis = function.blocks[block].phiRange
        guard !phis.isEmpty else { return }
        for predecessor in predecessors { marks.predecessor[Int(predecessor.index)] = Int32(block) }
        for phi in function.phis[phis] {
            marks.phi += 1
            let name = text(function.temps[Int(phi.to.index)].name)
            for argument in function.arguments(of: phi) {
                let source = Int(argument.block.index)
                if marks.seen[source] == marks.phi {
                    diagnostics.error("phi %\(name) has two entries for @\(text(function.blocks[source].name))", at: argument.location)
                } else if marks.predecessor[source] != Int32(block) {
                    marks.seen[source] = marks.phi
                    diagnostics.error("phi %\(name) has an entry for @\(text(function.blocks[source].name)), which is not a predecessor of @\(text(function.blocks[block].name))", at: argument.location)
                } else {
                    marks.seen[source] = marks.phi
                }
                checkUse(function, argument.value, phi.cls, "a phi argument", at: argument.location)
            }
            for predecessor in predecessors where marks.seen[Int(predecessor.index)] != marks.phi {
                diagnostics.error("phi %\(name) has no entry for predecessor @\(text(function.blocks[Int(predecessor.index)].name))", at: phi.location)
            }
        }
    }

    func checkJump(_ function: Function, _ block: Block) {
        let jump = block.jump
        switch jump.kind {
        case .jnz:
            checkUse(function, jump.arg, .w, "the jnz condition", at: jump.location)
        case .retValue:
            guard let returnType = function.returnType else { return }
            checkUse(function, jump.arg, returnType.temporaryClass, "the returned value", at: jump.location)
        default:
            break
        }
    }
}
