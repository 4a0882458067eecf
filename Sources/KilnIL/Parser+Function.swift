// Function definitions: signature, blocks, phis, instructions, jumps.
//
// Temporaries and labels are found by name through arrays indexed by
// `Name.index` and stamped with a per-function generation, so a lookup is two
// loads and the maps need no clearing between functions. Blocks get an id at
// their first mention; when the function ends they are renumbered into text
// order, so block 0 is the start block and "the next block" is id + 1.

extension Parser {
    // MARK: Function state

    func beginFunction(_ name: Name, at location: SourceLocation) {
        generation &+= 1
        if generation == 0 {
            generation = 1
            for index in tempStamp.indices { tempStamp[index] = 0 }
            for index in blockStamp.indices { blockStamp[index] = 0 }
        }
        function = Function(name: name, location: location)
        for slot in usedConstantSlots { constantSlots[slot] = 0 }
        usedConstantSlots.removeAll(keepingCapacity: true)
        blockOrder.removeAll(keepingCapacity: true)
        blockFirstUse.removeAll(keepingCapacity: true)
        currentBlock = nil
    }

    func growNameMaps() {
        let count = module.names.count
        if tempStamp.count < count {
            let newCount = max(count, tempStamp.count * 2)
            tempStamp.append(contentsOf: repeatElement(0, count: newCount - tempStamp.count))
            tempSlot.append(contentsOf: repeatElement(0, count: newCount - tempSlot.count))
            blockStamp.append(contentsOf: repeatElement(0, count: newCount - blockStamp.count))
            blockSlot.append(contentsOf: repeatElement(0, count: newCount - blockSlot.count))
        }
    }

    /// The temporary with this name, created at its first mention.
    @inline(__always) func temp(_ token: Token) -> Value {
        let index = Int(token.name.index)
        if index >= tempStamp.count { growNameMaps() }
        if tempStamp[index] == generation { return .temp(tempSlot[index]) }
        let temp = UInt32(function.temps.count)
        function.temps.append(Temp(name: token.name, cls: nil, location: token.location))
        tempStamp[index] = generation
        tempSlot[index] = temp
        return .temp(temp)
    }

    /// The block with this label, created (undefined) at its first mention.
    func block(_ token: Token) -> BlockID {
        let index = Int(token.name.index)
        if index >= blockStamp.count { growNameMaps() }
        if blockStamp[index] == generation { return BlockID(index: blockSlot[index]) }
        let id = UInt32(function.blocks.count)
        function.blocks.append(Block(name: token.name, phiStart: 0, phiCount: 0, instructionStart: 0,
                                     instructionCount: 0, jump: Jump(kind: .none, at: token.location),
                                     isDefined: false, fallsThrough: false, location: token.location))
        blockFirstUse.append(token.location)
        blockStamp[index] = generation
        blockSlot[index] = id
        return BlockID(index: id)
    }

    func constant(_ constant: Constant) -> Value {
        let mask = constantSlots.count - 1
        var slot = Parser.hash(constant) & mask
        while constantSlots[slot] != 0 {
            let index = constantSlots[slot] - 1
            if function.constants[Int(index)] == constant { return .constant(index) }
            slot = (slot + 1) & mask
        }
        let index = UInt32(function.constants.count)
        function.constants.append(constant)
        constantSlots[slot] = index + 1
        usedConstantSlots.append(slot)
        if function.constants.count * 2 > constantSlots.count { growConstantSlots() }
        return .constant(index)
    }

    @inline(__always) static func hash(_ constant: Constant) -> Int {
        var value = constant.bits &* 0x9E37_79B9_7F4A_7C15
        value ^= UInt64(constant.symbol.index) &* 0xC2B2_AE3D_27D4_EB4F
        value ^= UInt64(constant.kind.rawValue) | UInt64(constant.floatKind.rawValue) << 2
            | (constant.isThreadLocal ? 16 : 0) | (constant.isExtern ? 32 : 0)
        return Int(truncatingIfNeeded: value ^ (value >> 31))
    }

    func growConstantSlots() {
        constantSlots = Array(repeating: 0, count: constantSlots.count * 2)
        usedConstantSlots.removeAll(keepingCapacity: true)
        let mask = constantSlots.count - 1
        for (index, constant) in function.constants.enumerated() {
            var slot = Parser.hash(constant) & mask
            while constantSlots[slot] != 0 { slot = (slot + 1) & mask }
            constantSlots[slot] = UInt32(index + 1)
            usedConstantSlots.append(slot)
        }
    }

    @inline(__always) func emit(_ instruction: Instruction) {
        function.instructions.append(instruction)
    }

    // MARK: Signature

    func parseFunction(linkage: Linkage, at location: SourceLocation) throws {
        var token = nextSkippingNewlines()
        var returnType: ABIType?
        if token.kind != .global {
            returnType = try abiType(token)
            token = nextSkippingNewlines()
        }
        guard token.kind == .global else { throw fail("function name ($name) expected", at: token) }
        beginFunction(token.name, at: token.location)
        function.linkage = linkage
        function.returnType = returnType
        function.isVariadic = try parseParameters()
        let brace = nextSkippingNewlines()
        guard brace.kind == .leftBrace else { throw fail("function body must start with '{'", at: brace) }
        try parseBody()
        try finishFunction(at: token)
        module.functions.append(function)
        module.definitions.append(.function(module.functions.count - 1))
    }

    /// An ABI type: a base class, a sub-word type or an aggregate.
    func abiType(_ token: Token) throws -> ABIType {
        switch (token.kind, keyword(token)) {
        case (.word, .w): return .base(.w)
        case (.word, .l): return .base(.l)
        case (.word, .s): return .base(.s)
        case (.word, .d): return .base(.d)
        case (.word, .r): return .base(.r)
        case (.word, .sb): return .subWord(.sb)
        case (.word, .ub): return .subWord(.ub)
        case (.word, .sh): return .subWord(.sh)
        case (.word, .uh): return .subWord(.uh)
        case (.typeName, _):
            guard let id = typeByName[token.name] else {
                throw fail("undefined type :\(module.text(token.name))", at: token)
            }
            return .aggregate(id)
        default:
            throw fail("type (w, l, s, d, sb, ub, sh, uh or :aggregate) expected, found \(describe(token))", at: token)
        }
    }

    /// `( param, ... )` of a definition; returns whether it ends with `...`.
    func parseParameters() throws -> Bool {
        _ = try expect(.leftParen, "'(' to open the parameter list")
        var isVariadic = false
        var hasEnv = false
        var seen: Set<Name> = []
        var first = true
        while peek().kind != .rightParen {
            if !first { _ = try expect(.comma, "',' or ')' in the parameter list") }
            first = false
            let token = next()
            if isVariadic { throw fail("no parameters allowed after '...'", at: token) }
            switch (token.kind, keyword(token)) {
            case (.ellipsis, _):
                isVariadic = true
                continue
            case (.word, .env):
                if hasEnv { throw fail("only one environment parameter allowed", at: token) }
                if !function.instructions.isEmpty { throw fail("the environment parameter must come first", at: token) }
                hasEnv = true
                // `env r %c`: the environment is a managed reference (a closure, IL-EXTENSIONS.md).
                let isReference = peekIsReferenceClass()
                let name = try expect(.temp, "parameter name (%name)")
                try checkUnique(name, &seen)
                emit(Instruction(.pare, isReference ? .r : .l, to: temp(name), at: token.location))
            default:
                let type = try abiType(token)
                let name = try expect(.temp, "parameter name (%name)")
                try checkUnique(name, &seen)
                let to = temp(name)
                switch type {
                case .base(let cls): emit(Instruction(.par, cls, to: to, at: token.location))
                case .subWord(let sub):
                    let op: Opcode = [.parsb, .parub, .parsh, .paruh][Int(sub.rawValue) - 1]
                    emit(Instruction(op, .w, to: to, subWord: sub, at: token.location))
                case .aggregate(let id): emit(Instruction(.parc, .l, to: to, .type(id), at: token.location))
                }
            }
        }
        _ = next()
        return isVariadic
    }

    func checkUnique(_ name: Token, _ seen: inout Set<Name>) throws {
        if !seen.insert(name.name).inserted {
            throw fail("parameter %\(module.text(name.name)) is declared twice", at: name)
        }
    }

    // MARK: Body

    func parseBody() throws {
        while true {
            let token = nextSkippingNewlines()
            if token.kind == .rightBrace { return }
            if token.kind == .eof { throw fail("'}' expected to end the function body", at: token) }
            do {
                try parseLine(token)
            } catch let error as ParseError {
                diagnostics.error(error.message, at: error.location)
                // Resynchronise at the start of the next line; a '}' met on the way ends the body.
                while previousKind != .newline {
                    let skipped = peek()
                    if skipped.kind == .eof { throw fail("'}' expected to end the function body", at: skipped) }
                    if skipped.kind == .rightBrace { break }
                    _ = next()
                }
            }
        }
    }

    /// Closes the current block with the implicit jump to the block that follows it.
    func openBlock(_ token: Token) throws {
        let id = block(token)
        if let current = currentBlock, function.blocks[current].jump.kind == .none {
            closeBlock(current)
            function.blocks[current].jump = Jump(kind: .jmp, target: id, at: token.location)
            function.blocks[current].fallsThrough = true
        }
        let index = Int(id.index)
        if function.blocks[index].isDefined {
            throw fail("block @\(module.text(token.name)) is defined twice (first at \(position(function.blocks[index].location)))", at: token)
        }
        function.blocks[index].isDefined = true
        function.blocks[index].location = token.location
        function.blocks[index].instructionStart = blockOrder.isEmpty ? 0 : UInt32(function.instructions.count)
        function.blocks[index].phiStart = UInt32(function.phis.count)
        blockOrder.append(id.index)
        currentBlock = index
        blockHasInstructions = false
        let end = next()
        guard end.kind == .newline || end.kind == .eof else { throw fail("end of line expected after the label", at: end) }
    }

    func closeBlock(_ index: Int) {
        let start = function.blocks[index].instructionStart
        function.blocks[index].instructionCount = UInt32(function.instructions.count) - start
        function.blocks[index].phiCount = UInt32(function.phis.count) - function.blocks[index].phiStart
    }

    /// The block that instructions go to; an error if the last one was closed by a jump.
    func requireOpenBlock(_ token: Token) throws -> Int {
        guard let current = currentBlock else { throw fail("a label (@name) must start the function body", at: token) }
        if function.blocks[current].jump.kind != .none {
            throw fail("label or '}' expected after a jump, found \(describe(token))", at: token)
        }
        return current
    }

    func parseLine(_ token: Token) throws {
        if token.kind == .label {
            try openBlock(token)
            return
        }
        let current = try requireOpenBlock(token)
        switch (token.kind, keyword(token)) {
        case (.temp, _):
            try parseDefinitionLine(token, current)
        case (.word, .jmp):
            let target = try expect(.label, "label after jmp")
            try endBlock(current, Jump(kind: .jmp, target: block(target), at: token.location))
        case (.word, .jnz):
            let condition = try value(next())
            _ = try expect(.comma, "',' after the jnz condition")
            let yes = try expect(.label, "label after jnz")
            _ = try expect(.comma, "',' between the jnz labels")
            let no = try expect(.label, "second label after jnz")
            try endBlock(current, Jump(kind: .jnz, arg: condition, target: block(yes), otherTarget: block(no), at: token.location))
        case (.word, .ret):
            if peek().kind == .newline || peek().kind == .eof || peek().kind == .rightBrace {
                try endBlock(current, Jump(kind: .ret, at: token.location))
            } else {
                let result = try value(next())
                if function.returnType == nil {
                    // Still a jump: reporting it as missing too would be a second, false error.
                    diagnostics.error("ret with a value in a function that returns nothing", at: token.location)
                    try endBlock(current, Jump(kind: .ret, at: token.location))
                } else {
                    try endBlock(current, Jump(kind: .retValue, arg: result, at: token.location))
                }
            }
        case (.word, .hlt):
            try endBlock(current, Jump(kind: .hlt, at: token.location))
        case (.word, .call):
            try parseCall(to: .none, type: nil, at: token)
        case (.word, .blit):
            let source = try value(next())
            _ = try expect(.comma, "',' after the blit source")
            let destination = try value(next())
            _ = try expect(.comma, "',' after the blit destination")
            let sizeToken = next()
            guard sizeToken.kind == .integer else { throw fail("blit size must be an integer constant", at: sizeToken) }
            integer(sizeToken)
            guard Int64(bitPattern: sizeToken.bits) >= 0, sizeToken.bits <= UInt64(Int32.max) else {
                throw fail("invalid blit size \(Int64(bitPattern: sizeToken.bits))", at: sizeToken)
            }
            emit(Instruction(.blit0, .l, source, destination, at: token.location))
            emit(Instruction(.blit1, .w, constant(Constant(bits: sizeToken.bits)), at: sizeToken.location))
            try endOfLine()
        case (.word, .rstore), (.word, .rstoreb):
            let stored = try value(next())
            _ = try expect(.comma, "',' after the stored value")
            let object = try value(next())
            _ = try expect(.comma, "',' after the object")
            let index = try value(next())
            let isByte = keyword(token) == .rstoreb
            emit(Instruction(isByte ? .rstoreb0 : .rstore0, isByte ? .w : .r, stored, object, at: token.location))
            emit(Instruction(isByte ? .rstoreb1 : .rstore1, .l, index, at: token.location))
            try endOfLine()
        case (.word, _):
            guard let op = module.names.opcode(token.name) else {
                throw fail("label, instruction or jump expected, found \(describe(token))", at: token)
            }
            if op == .dbgloc {
                try parseDebugLocation(token)
            } else if op.isStore || op == .vastart {
                // QBE's convention: stores have class w; the table gives the stored value's class.
                let cls: Class = .w
                if op == .vastart && !function.isVariadic {
                    throw fail("vastart used in a function that is not variadic", at: token)
                }
                try parseOperands(op, cls, to: .none, at: token)
            } else {
                throw fail("instruction \(op.name) needs a result (%x =class \(op.name) ...)", at: token)
            }
        default:
            throw fail("label, instruction or jump expected, found \(describe(token))", at: token)
        }
    }

    func endBlock(_ current: Int, _ jump: Jump) throws {
        closeBlock(current)
        function.blocks[current].jump = jump
        try endOfLine()
    }

    func endOfLine() throws {
        let end = peek()
        if end.kind == .newline || end.kind == .eof { _ = next(); return }
        if end.kind == .rightBrace { return }
        throw fail("end of line expected, found \(describe(end))", at: end)
    }

    /// `%x =CLS op args`, `%x =CLS phi ...` or `%x =TYPE call ...`.
    func parseDefinitionLine(_ target: Token, _ current: Int) throws {
        _ = try expect(.equals, "'=' after the temporary")
        let typeToken = next()
        let type = try abiType(typeToken)
        let opToken = next()
        let to = temp(target)
        if keyword(opToken) == .call {
            try parseCall(to: to, type: type, at: opToken)
            return
        }
        guard case .base(let cls) = type else {
            throw fail("the class of an instruction's result must be w, l, s, d or r", at: typeToken)
        }
        if keyword(opToken) == .phi {
            try parsePhi(to: to, cls: cls, current: current, at: opToken)
            return
        }
        guard opToken.kind == .word, let op = module.names.opcode(opToken.name) ?? alias(opToken) else {
            throw fail("instruction expected after '=\(cls.letter)', found \(describe(opToken))", at: opToken)
        }
        if op.isStore || op == .vastart || op == .dbgloc {
            throw fail("\(op.name) has no result", at: opToken)
        }
        try parseOperands(op, cls, to: to, at: opToken)
    }

    /// QBE's alternative spellings of some opcodes.
    func alias(_ token: Token) -> Opcode? {
        switch keyword(token) {
        case .loadw: .loadsw
        case .loadl, .loads, .loadd: .load
        case .alloc1, .alloc2: .alloc4
        default: nil
        }
    }

    func parseOperands(_ op: Opcode, _ cls: Class, to: Value, at token: Token) throws {
        // Two locals rather than an array: this runs for most lines of a file.
        var first: Value = .none, second: Value = .none
        if peek().kind != .newline && peek().kind != .eof {
            first = try value(next())
            if peek().kind == .comma {
                _ = next()
                second = try value(next())
                if peek().kind == .comma {
                    _ = next()
                    throw fail("too many operands for \(op.name)", at: peek())
                }
            }
        }
        try endOfLine()
        emit(Instruction(op, cls, to: to, first, second, at: token.location))
    }

    func parsePhi(to: Value, cls: Class, current: Int, at token: Token) throws {
        if current == Int(blockOrder[0]) { throw fail("phi in the start block", at: token) }
        if function.instructions.count > Int(function.blocks[current].instructionStart) {
            throw fail("phi after an ordinary instruction (phis must come first in a block)", at: token)
        }
        let start = UInt32(function.phiArguments.count)
        repeat {
            let label = try expect(.label, "label in phi")
            let incoming = try value(next())
            function.phiArguments.append(PhiArgument(block: block(label), value: incoming, location: label.location))
            if peek().kind != .comma { break }
            _ = next()
        } while true
        try endOfLine()
        function.phis.append(Phi(to: to, cls: cls, argumentStart: start,
                                 argumentCount: UInt32(function.phiArguments.count) - start, location: token.location))
    }

    func parseDebugLocation(_ token: Token) throws {
        let line = try expect(.integer, "line number after dbgloc")
        integer(line)
        guard line.bits <= UInt64(Int32.max) else { throw fail("line number too big", at: line) }
        var column: Value = .none
        if peek().kind == .comma {
            _ = next()
            let columnToken = try expect(.integer, "column number after ','")
            integer(columnToken)
            guard columnToken.bits <= UInt64(Int32.max) else { throw fail("column number too big", at: columnToken) }
            column = constant(Constant(bits: columnToken.bits))
        }
        try endOfLine()
        emit(Instruction(.dbgloc, .w, constant(Constant(bits: line.bits)), column, at: token.location))
    }

    /// `call VAL(args)` with its result already parsed.
    func parseCall(to: Value, type: ABIType?, at token: Token) throws {
        let callee = try value(next())
        _ = try expect(.leftParen, "'(' after the callee")
        var first = true
        var sawEllipsis = false
        var sawEnv = false
        while peek().kind != .rightParen {
            if !first { _ = try expect(.comma, "',' or ')' in the argument list") }
            first = false
            let argument = next()
            switch (argument.kind, keyword(argument)) {
            case (.ellipsis, _):
                if sawEllipsis { throw fail("only one '...' allowed", at: argument) }
                sawEllipsis = true
                emit(Instruction(.argv, .w, at: argument.location))
            case (.word, .env):
                if sawEnv { throw fail("only one environment argument allowed", at: argument) }
                sawEnv = true
                let isReference = peekIsReferenceClass()
                emit(Instruction(.arge, isReference ? .r : .l, try value(next()), at: argument.location))
            default:
                let argumentType = try abiType(argument)
                let operand = try value(next())
                switch argumentType {
                case .base(let cls): emit(Instruction(.arg, cls, operand, at: argument.location))
                case .subWord(let sub):
                    let op: Opcode = [.argsb, .argub, .argsh, .arguh][Int(sub.rawValue) - 1]
                    emit(Instruction(op, .w, operand, subWord: sub, at: argument.location))
                case .aggregate(let id): emit(Instruction(.argc, .l, .type(id), operand, at: argument.location))
                }
            }
        }
        _ = next()
        try endOfLine()
        switch type {
        case nil: emit(Instruction(.call, .w, callee, at: token.location))
        case .base(let cls)?: emit(Instruction(.call, cls, to: to, callee, at: token.location))
        case .subWord(let sub)?: emit(Instruction(.call, .w, to: to, callee, subWord: sub, at: token.location))
        case .aggregate(let id)?: emit(Instruction(.call, .l, to: to, callee, .type(id), at: token.location))
        }
    }

    /// An operand: temporary, integer, float, or `[thread] [extern] $symbol`.
    func value(_ token: Token) throws -> Value {
        switch token.kind {
        case .temp:
            return temp(token)
        case .integer:
            integer(token)
            return constant(Constant(bits: token.bits))
        case .single:
            return constant(Constant(bits: token.bits, floatKind: .single))
        case .double:
            return constant(Constant(bits: token.bits, floatKind: .double))
        case .global:
            return constant(Constant(symbol: token.name))
        case .word:
            var isThread = false, isExtern = false
            var current = token
            while let word = keyword(current), word == .thread || word == .extern {
                if word == .thread { isThread = true } else { isExtern = true }
                current = next()
            }
            guard current.kind == .global, isThread || isExtern else {
                throw fail("operand expected, found \(describe(current))", at: current)
            }
            return constant(Constant(symbol: current.name, isThreadLocal: isThread, isExtern: isExtern))
        case .invalid:
            throw fail(lexer.message(of: token), at: token)
        default:
            throw fail("operand expected, found \(describe(token))", at: token)
        }
    }

    // MARK: End of function

    /// Checks the block structure and renumbers blocks into text order.
    func finishFunction(at nameToken: Token) throws {
        guard let last = currentBlock else {
            diagnostics.error("function $\(module.text(function.name)) has no blocks", at: nameToken.location)
            return
        }
        if function.blocks[last].jump.kind == .none {
            closeBlock(last)
            diagnostics.error("the last block @\(module.text(function.blocks[last].name)) does not end with a jump",
                              at: function.blocks[last].location)
            function.blocks[last].jump = Jump(kind: .hlt, at: function.blocks[last].location)
        }
        // Labels used but never defined.
        var remap = [UInt32](repeating: UInt32.max, count: function.blocks.count)
        for (position, id) in blockOrder.enumerated() { remap[Int(id)] = UInt32(position) }
        var undefined = false
        for (index, block) in function.blocks.enumerated() where !block.isDefined {
            diagnostics.error("block @\(module.text(block.name)) is used but never defined", at: blockFirstUse[index])
            undefined = true
        }
        if undefined {
            // Keep the IR well formed: undefined targets point at the start block.
            for index in remap.indices where remap[index] == UInt32.max { remap[index] = 0 }
        }
        var ordered: [Block] = []
        ordered.reserveCapacity(blockOrder.count)
        for id in blockOrder {
            var block = function.blocks[Int(id)]
            block.jump.target = BlockID(index: remap[Int(block.jump.target.index)])
            block.jump.otherTarget = BlockID(index: remap[Int(block.jump.otherTarget.index)])
            ordered.append(block)
        }
        function.blocks = ordered
        for index in function.phiArguments.indices {
            function.phiArguments[index].block = BlockID(index: remap[Int(function.phiArguments[index].block.index)])
        }
        // A jump back to the start block is not allowed (QBE: "invalid jump to the start block").
        for block in function.blocks {
            for target in block.jump.successors where target.index == 0 && !undefined {
                diagnostics.error("jump to the start block @\(module.text(function.blocks[0].name)) (start blocks may not be jump targets)",
                                  at: block.jump.location)
            }
        }
    }
}
