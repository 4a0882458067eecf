// The printer: a module back to IL text.
//
// The output parses to the same module (locations aside): every definition in
// file order, blocks that fell through still fall through, floats printed with
// the shortest text that reads back to the same bits, strings re-escaped.
// Structural opcodes print as the syntax they came from (`call`, `blit`, the
// parameter list). `kiln` uses it to dump the IR after any pass.

extension Module {
    /// The module as IL text.
    public func printed() -> String {
        var printer = ILPrinter(module: self)
        for definition in definitions {
            switch definition {
            case .type(let id): printer.printType(types[Int(id.index)])
            case .data(let index): printer.printData(data[index])
            case .function(let index): printer.printFunction(functions[index])
            case .debugFile(let index): printer.out += "dbgfile \"\(debugFiles[index])\"\n"
            }
        }
        return printer.out
    }

    /// One function as IL text.
    public func printed(function index: Int) -> String {
        var printer = ILPrinter(module: self)
        printer.printFunction(functions[index])
        return printer.out
    }
}

struct ILPrinter {
    let module: Module
    var out = ""

    init(module: Module) {
        self.module = module
        out.reserveCapacity(4096)
    }

    func name(_ name: Name) -> String { module.text(name) }

    mutating func printLinkage(_ linkage: Linkage) {
        if linkage.isExport { out += "export " }
        if linkage.isThread { out += "thread " }
        if linkage.isCommon { out += "common " }
        if let section = linkage.section {
            out += "section \"\(section)\" "
            if let flags = linkage.sectionFlags { out += "\"\(flags)\" " }
        }
    }

    // MARK: Types and data

    func fields(_ fields: [Field]) -> String {
        fields.map { field in
            let kind = switch field.kind {
            case .scalar(let type): type.letter
            case .aggregate(let id): ":" + name(module.type(id).name)
            }
            return field.count == 1 ? kind : "\(kind) \(field.count)"
        }.joined(separator: ", ")
    }

    mutating func printType(_ type: AggregateType) {
        out += "type :\(name(type.name)) = "
        if let alignment = type.declaredAlignment { out += "align \(alignment) " }
        if type.isOpaque {
            out += "{ \(type.size) }\n"
        } else if type.isUnion {
            out += "{ " + type.variants.map { "{ \(fields($0)) }" }.joined(separator: " ") + " }\n"
        } else {
            out += "{ \(fields(type.variants.first ?? [])) }\n"
        }
    }

    mutating func printData(_ data: DataDefinition) {
        printLinkage(data.linkage)
        out += "data $\(name(data.name)) = "
        if let alignment = data.declaredAlignment { out += "align \(alignment) " }
        out += "{ "
        var first = true
        for item in data.items {
            if !first { out += ", " }
            first = false
            if case .zero(let count) = item.kind {
                out += "z \(count)"
                continue
            }
            out += item.isManaged ? "r " : item.type.letter + " "
            switch item.kind {
            case .bits(let bits): out += literal(bits, item.floatKind)
            case .address(let symbol, let offset):
                out += "$" + name(symbol)
                if offset != 0 { out += " + \(UInt64(bitPattern: offset))" }
            case .string(let start, let count): out += escaped(module.bytes(start: start, count: count))
            case .zero: break
            }
        }
        out += " }\n"
    }

    /// A string literal whose GNU-as reading is exactly `bytes`.
    func escaped(_ bytes: ArraySlice<UInt8>) -> String {
        var text = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): text += "\\\""
            case UInt8(ascii: "\\"): text += "\\\\"
            case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let octal = String(byte, radix: 8)
                text += "\\" + String(repeating: "0", count: 3 - octal.count) + octal
            }
        }
        return text + "\""
    }

    func literal(_ bits: UInt64, _ kind: Constant.FloatKind) -> String {
        switch kind {
        case .none: return "\(Int64(bitPattern: bits))"
        case .single: return "s_" + floatText(Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits))), single: true)
        case .double: return "d_" + floatText(Double(bitPattern: bits), single: false)
        }
    }

    func floatText(_ value: Double, single: Bool) -> String {
        if value.isNaN { return value.sign == .minus ? "-nan" : "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        return single ? "\(Float(value))" : "\(value)"
    }

    // MARK: Functions

    mutating func printFunction(_ function: Function) {
        printLinkage(function.linkage)
        out += "function "
        if let type = function.returnType { out += abiType(type) + " " }
        out += "$\(name(function.name))("
        var parameters: [String] = []
        for instruction in function.instructions.prefix(while: \.op.isParameter) {
            let temp = value(function, instruction.to)
            switch instruction.op {
            case .pare: parameters.append(instruction.cls == .r ? "env r \(temp)" : "env \(temp)")
            case .parc: parameters.append(":\(name(module.type(instruction.arg0.typeID).name)) \(temp)")
            case .par: parameters.append("\(instruction.cls.letter) \(temp)")
            default: parameters.append("\(instruction.subWord?.letters ?? "w") \(temp)")
            }
        }
        if function.isVariadic { parameters.append("...") }
        out += parameters.joined(separator: ", ") + ") {\n"
        for block in function.blocks {
            out += "@\(name(block.name))\n"
            for phi in function.phis[block.phiRange] {
                let arguments = function.arguments(of: phi).map {
                    "@\(name(function.blocks[Int($0.block.index)].name)) \(value(function, $0.value))"
                }
                out += "\t\(value(function, phi.to)) =\(phi.cls.letter) phi \(arguments.joined(separator: ", "))\n"
            }
            printInstructions(function, block)
            printJump(function, block)
        }
        out += "}\n"
    }

    func abiType(_ type: ABIType) -> String {
        switch type {
        case .base(let cls): cls.letter
        case .subWord(let sub): sub.letters
        case .aggregate(let id): ":" + name(module.type(id).name)
        }
    }

    func value(_ function: Function, _ value: Value) -> String {
        switch value.kind {
        case .none: return ""
        case .temp: return "%" + name(function.temps[Int(value.index)].name)
        case .type: return ":" + name(module.type(value.typeID).name)
        case .constant:
            let constant = function.constants[Int(value.index)]
            switch constant.kind {
            case .bits: return literal(constant.bits, constant.floatKind)
            case .address:
                var text = constant.isThreadLocal ? "thread " : ""
                if constant.isExtern { text += "extern " }
                text += "$" + name(constant.symbol)
                return text
            }
        }
    }

    mutating func printInstructions(_ function: Function, _ block: Block) {
        var arguments: [String] = []
        var index = block.instructionRange.lowerBound
        let instructions = function.instructions
        while index < block.instructionRange.upperBound {
            let instruction = instructions[index]
            let a = value(function, instruction.arg0), b = value(function, instruction.arg1)
            switch instruction.op {
            case .par, .parsb, .parub, .parsh, .paruh, .parc, .pare:
                break
            case .arg: arguments.append("\(instruction.cls.letter) \(a)")
            case .argsb, .argub, .argsh, .arguh: arguments.append("\(instruction.subWord?.letters ?? "w") \(a)")
            case .argc: arguments.append("\(a) \(b)")
            case .arge: arguments.append(instruction.cls == .r ? "env r \(a)" : "env \(a)")
            case .argv: arguments.append("...")
            case .call:
                out += "\t"
                if !instruction.to.isNone {
                    let type: String = if !instruction.arg1.isNone { b }
                        else if let sub = instruction.subWord { sub.letters }
                        else { instruction.cls.letter }
                    out += "\(value(function, instruction.to)) =\(type) "
                }
                out += "call \(a)(\(arguments.joined(separator: ", ")))\n"
                arguments.removeAll()
            case .blit0, .rstore0, .rstoreb0:
                let next = index + 1 < instructions.count ? value(function, instructions[index + 1].arg0) : ""
                let mnemonic = instruction.op == .blit0 ? "blit" : instruction.op == .rstore0 ? "rstore" : "rstoreb"
                out += "\t\(mnemonic) \(a), \(b), \(next)\n"
                index += 1
            case .blit1, .rstore1, .rstoreb1:
                break
            default:
                out += "\t"
                if !instruction.to.isNone { out += "\(value(function, instruction.to)) =\(instruction.cls.letter) " }
                out += instruction.op.name
                if !instruction.arg0.isNone { out += " " + a }
                if !instruction.arg1.isNone { out += ", " + b }
                out += "\n"
            }
            index += 1
        }
    }

    mutating func printJump(_ function: Function, _ block: Block) {
        let jump = block.jump
        func label(_ id: BlockID) -> String { "@" + module.text(function.blocks[Int(id.index)].name) }
        switch jump.kind {
        case .none: break
        case .jmp: if !block.fallsThrough { out += "\tjmp \(label(jump.target))\n" }
        case .jnz: out += "\tjnz \(value(function, jump.arg)), \(label(jump.target)), \(label(jump.otherTarget))\n"
        case .ret: out += "\tret\n"
        case .retValue: out += "\tret \(value(function, jump.arg))\n"
        case .hlt: out += "\thlt\n"
        }
    }
}
