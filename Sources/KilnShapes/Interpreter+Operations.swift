// What each instruction computes, for the reference interpreter: integer
// arithmetic at the class's width, comparisons, extensions, conversions,
// loads, stores, `alloc` and `blit`. Division by zero and the most negative
// value divided by -1 are reported as traps, not computed.

import KilnIL

extension Interpreter {
    mutating func execute(_ instruction: Instruction, at position: Int, _ frame: inout Frame, _ function: Function) throws {
        let a = value(instruction.arg0, frame)
        let b = value(instruction.arg1, frame)
        let cls = instruction.cls
        var result: UInt64 = 0
        let op = instruction.op
        switch op {
        case .add, .sub, .mul, .div, .rem, .udiv, .urem, .and, .or, .xor, .sar, .shr, .shl, .neg:
            result = cls.isFloat ? try float(op, cls, a, b) : try integer(op, cls, a, b)
        case .copy:
            result = a
        case .storeb, .storeh, .storew, .storel, .stores, .stored:
            let size = [Opcode.storeb: 1, .storeh: 2, .storew: 4, .storel: 8, .stores: 4, .stored: 8][op]!
            try write(a, to: b, size: size)
            return
        case .load:
            result = try read(a, size: cls == .w || cls == .s ? 4 : 8)
        case .loadsb: result = UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: try read(a, size: 1))))
        case .loadub: result = try read(a, size: 1)
        case .loadsh: result = UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: try read(a, size: 2))))
        case .loaduh: result = try read(a, size: 2)
        case .loadsw: result = UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: try read(a, size: 4))))
        case .loaduw: result = try read(a, size: 4)
        case .extsb: result = UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: a)))
        case .extub: result = a & 0xFF
        case .extsh: result = UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: a)))
        case .extuh: result = a & 0xFFFF
        case .extsw: result = UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: a)))
        case .extuw: result = a & 0xFFFF_FFFF
        case .exts: result = Double(Float(bitPattern: UInt32(truncatingIfNeeded: a))).bitPattern
        case .truncd: result = UInt64(Float(Double(bitPattern: a)).bitPattern)
        case .stosi, .dtosi, .stoui, .dtoui:
            let source = op == .stosi || op == .stoui ? Double(Float(bitPattern: UInt32(truncatingIfNeeded: a)))
                : Double(bitPattern: a)
            result = try toInteger(source, cls, isUnsigned: op == .stoui || op == .dtoui)
        case .swtof: result = fromDouble(Double(Int32(truncatingIfNeeded: a)), cls, exact: Float(Int32(truncatingIfNeeded: a)))
        case .uwtof: result = fromDouble(Double(UInt32(truncatingIfNeeded: a)), cls, exact: Float(UInt32(truncatingIfNeeded: a)))
        case .sltof: result = fromDouble(Double(Int64(bitPattern: a)), cls, exact: Float(Int64(bitPattern: a)))
        case .ultof: result = fromDouble(Double(a), cls, exact: Float(a))
        case .cast:
            result = a
        case .alloc4, .alloc8, .alloc16:
            let alignment = op == .alloc4 ? 4 : op == .alloc8 ? 8 : 16
            stackTop = (stackTop + alignment - 1) / alignment * alignment
            result = Interpreter.base + UInt64(stackTop)
            stackTop += Int(a)
            guard stackTop <= memory.count else { throw InterpreterError(description: "out of stack") }
        case .blit0:
            // `blit0 source, destination` is followed by `blit1 size`.
            let size = Int(function.constants[Int(function.instructions[position + 1].arg0.index)].bits)
            let bytes = try (0..<size).map { try read(a + UInt64($0), size: 1) }
            for (index, byte) in bytes.enumerated() { try write(byte, to: b + UInt64(index), size: 1) }
            return
        case .blit1, .dbgloc:
            return
        default:
            if op.isComparison {
                result = try compare(op, a, b) ? 1 : 0
            } else {
                throw InterpreterError(description: "\(op.name) is not interpreted")
            }
        }
        if instruction.to.isTemp { frame.values[Int(instruction.to.index)] = normalize(result, cls) }
    }

    func integer(_ op: Opcode, _ cls: Class, _ a: UInt64, _ b: UInt64) throws -> UInt64 {
        let isWord = cls == .w
        let mask: UInt64 = isWord ? 0xFFFF_FFFF : .max
        let x = a & mask, y = b & mask
        func signed(_ value: UInt64) -> Int64 { isWord ? Int64(Int32(truncatingIfNeeded: value)) : Int64(bitPattern: value) }
        let count = y & (isWord ? 31 : 63)
        switch op {
        case .add: return (x &+ y) & mask
        case .sub: return (x &- y) & mask
        case .mul: return (x &* y) & mask
        case .and: return x & y
        case .or: return x | y
        case .xor: return x ^ y
        case .neg: return (0 &- x) & mask
        case .shl: return (x << count) & mask
        case .shr: return x >> count
        case .sar: return UInt64(bitPattern: signed(x) >> Int64(count)) & mask
        case .udiv, .urem:
            guard y != 0 else { throw InterpreterError(description: "division by zero") }
            return op == .udiv ? x / y : x % y
        default:
            let (n, d) = (signed(x), signed(y))
            guard d != 0, !(d == -1 && n == (isWord ? Int64(Int32.min) : Int64.min)) else {
                throw InterpreterError(description: "division trap")
            }
            return UInt64(bitPattern: op == .div ? n / d : n % d) & mask
        }
    }

    func float(_ op: Opcode, _ cls: Class, _ a: UInt64, _ b: UInt64) throws -> UInt64 {
        if cls == .s {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: a)), y = Float(bitPattern: UInt32(truncatingIfNeeded: b))
            let r: Float = switch op {
            case .add: x + y
            case .sub: x - y
            case .mul: x * y
            case .div: x / y
            default: -x
            }
            return UInt64(r.bitPattern)
        }
        let x = Double(bitPattern: a), y = Double(bitPattern: b)
        let r: Double = switch op {
        case .add: x + y
        case .sub: x - y
        case .mul: x * y
        case .div: x / y
        default: -x
        }
        return r.bitPattern
    }

    func fromDouble(_ value: Double, _ cls: Class, exact single: Float) -> UInt64 {
        cls == .s ? UInt64(single.bitPattern) : value.bitPattern
    }

    /// Truncation toward zero; x86's most negative integer when it does not fit (unsigned
    /// conversions that do not fit are left undefined by the programs, so they are an error).
    func toInteger(_ value: Double, _ cls: Class, isUnsigned: Bool) throws -> UInt64 {
        let isWord = cls == .w
        let truncated = value.rounded(.towardZero)
        if isUnsigned {
            let limit = isWord ? 4294967296.0 : 18446744073709551616.0
            guard truncated >= 0, truncated < limit else {
                throw InterpreterError(description: "unsigned conversion of \(value), which does not fit")
            }
            return isWord ? UInt64(UInt32(truncated)) : UInt64(truncated)
        }
        let low = isWord ? -2147483648.0 : -9223372036854775808.0
        guard !value.isNaN, truncated >= low, truncated < -low else {
            return isWord ? 0x8000_0000 : 0x8000_0000_0000_0000
        }
        return isWord ? UInt64(UInt32(bitPattern: Int32(truncated))) : UInt64(bitPattern: Int64(truncated))
    }

    func compare(_ op: Opcode, _ a: UInt64, _ b: UInt64) throws -> Bool {
        let name = op.name
        let operandClass = name.last!
        switch operandClass {
        case "w", "l":
            let isWord = operandClass == "w"
            let mask: UInt64 = isWord ? 0xFFFF_FFFF : .max
            let x = a & mask, y = b & mask
            let sx = isWord ? Int64(Int32(truncatingIfNeeded: x)) : Int64(bitPattern: x)
            let sy = isWord ? Int64(Int32(truncatingIfNeeded: y)) : Int64(bitPattern: y)
            switch String(name.dropLast()) {
            case "ceq": return x == y
            case "cne": return x != y
            case "cslt": return sx < sy
            case "csle": return sx <= sy
            case "csgt": return sx > sy
            case "csge": return sx >= sy
            case "cult": return x < y
            case "cule": return x <= y
            case "cugt": return x > y
            case "cuge": return x >= y
            default: break
            }
        case "s", "d":
            let x = operandClass == "s" ? Double(Float(bitPattern: UInt32(truncatingIfNeeded: a))) : Double(bitPattern: a)
            let y = operandClass == "s" ? Double(Float(bitPattern: UInt32(truncatingIfNeeded: b))) : Double(bitPattern: b)
            switch String(name.dropLast()) {
            case "ceq": return x == y
            case "cne": return x != y
            case "clt": return x < y
            case "cle": return x <= y
            case "cgt": return x > y
            case "cge": return x >= y
            case "co": return !x.isNaN && !y.isNaN
            case "cuo": return x.isNaN || y.isNaN
            default: break
            }
        default: break
        }
        throw InterpreterError(description: "comparison \(name) is not interpreted")
    }
}
