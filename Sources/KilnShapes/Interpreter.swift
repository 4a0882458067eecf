// A reference interpreter for the IL that RandomProgram writes: a third
// opinion when Kiln and QBE disagree, and an oracle where QBE is not
// installed.
//
// It runs a verified module as the IL reference describes it, with no
// compiler in between: temporaries are variables (so non-SSA input needs no
// construction), a block's phis all read their arguments before any is
// written, `w` operations see the low 32 bits of their operands, shifts take
// their count modulo the width, floats follow IEEE 754 with round-to-nearest
// (as SSE does), and a float-to-integer conversion that does not fit gives the
// most negative integer (x86's "integer indefinite"). Memory is one flat
// little-endian byte array holding the data definitions and a stack for
// `alloc`. Calls go to the module's functions; the one outside function it
// knows is `printf` with `%lx`, `%ld`, `%x`, `%d` and `%s`.
//
// What it does not model (aggregates passed by value, `vastart`/`vaarg`,
// thread-local data, the managed superset) is reported as an error, never
// guessed.

import KilnIL

/// A failure of interpretation: an unsupported construct, a trap, or a runaway program.
public struct InterpreterError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Runs one module's `main`.
public struct Interpreter {
    let module: Module
    var memory: [UInt8]
    var stackTop: Int
    /// Where each data definition starts, by name.
    var dataAddress: [Name: UInt64] = [:]
    var functionIndex: [Name: Int] = [:]
    /// What `printf` printed.
    public private(set) var output: [UInt8] = []
    var steps = 0
    let stepLimit: Int
    static let base: UInt64 = 0x10000

    public init(_ module: Module, memorySize: Int = 1 << 20, stepLimit: Int = 50_000_000) throws {
        self.module = module
        self.stepLimit = stepLimit
        memory = [UInt8](repeating: 0, count: memorySize)
        var cursor = 0
        for definition in module.data {
            let alignment = Int(definition.alignment)
            cursor = (cursor + alignment - 1) / alignment * alignment
            dataAddress[definition.name] = Interpreter.base + UInt64(cursor)
            cursor += Int(definition.size)
        }
        stackTop = cursor + 4096
        for (index, function) in module.functions.enumerated() { functionIndex[function.name] = index }
        for definition in module.data {
            var at = Int(dataAddress[definition.name]! - Interpreter.base)
            for item in definition.items {
                switch item.kind {
                case .bits(let bits): store(bits, at: at, size: Int(item.type.size))
                case .address(let name, let offset):
                    guard let target = dataAddress[name] else {
                        throw InterpreterError(description: "data refers to $\(module.text(name)), which is not data")
                    }
                    store(target &+ UInt64(bitPattern: offset), at: at, size: Int(item.type.size))
                case .string(let start, let count):
                    for (offset, byte) in module.bytes(start: start, count: count).enumerated() { memory[at + offset] = byte }
                case .zero:
                    break
                }
                at += Int(item.size)
            }
        }
    }

    /// Runs `main` with no arguments; returns its result.
    public mutating func runMain() throws -> UInt64 {
        guard let main = module.functions.firstIndex(where: { module.text($0.name) == "main" }) else {
            throw InterpreterError(description: "no $main")
        }
        return try call(main, arguments: [])
    }

    mutating func store(_ value: UInt64, at offset: Int, size: Int) {
        for byte in 0..<size { memory[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte))) }
    }

    /// The offset in `memory` of `size` bytes at `address`; an error when outside it.
    func offset(_ address: UInt64, _ size: Int) throws -> Int {
        guard address >= Interpreter.base, address - Interpreter.base + UInt64(size) <= UInt64(memory.count) else {
            throw InterpreterError(description: "access of \(size) bytes at 0x\(String(address, radix: 16)) is outside memory")
        }
        return Int(address - Interpreter.base)
    }

    mutating func write(_ value: UInt64, to address: UInt64, size: Int) throws {
        store(value, at: try offset(address, size), size: size)
    }

    func read(_ address: UInt64, size: Int) throws -> UInt64 {
        let at = try offset(address, size)
        var value: UInt64 = 0
        for byte in 0..<size { value |= UInt64(memory[at + byte]) << (8 * UInt64(byte)) }
        return value
    }

    /// One activation of a function: its temporaries and where its stack allocations began.
    struct Frame {
        var values: [UInt64]
        var constants: [Constant]
    }

    /// Calls function `index` with the bits of its arguments.
    mutating func call(_ index: Int, arguments: [UInt64]) throws -> UInt64 {
        let function = module.functions[index]
        var frame = Frame(values: [UInt64](repeating: 0, count: function.temps.count), constants: function.constants)
        let savedStack = stackTop
        defer { stackTop = savedStack }
        var block = 0
        var previous = -1
        var pendingArguments: [UInt64] = []
        var parameter = 0
        while true {
            let current = function.blocks[block]
            if previous >= 0 {
                // Every phi reads before any is written.
                var incoming: [(Int, UInt64)] = []
                for phi in function.phis[current.phiRange] {
                    guard let argument = function.arguments(of: phi).first(where: { Int($0.block.index) == previous }) else {
                        throw InterpreterError(description: "phi without an argument for its predecessor")
                    }
                    incoming.append((Int(phi.to.index), normalize(value(argument.value, frame), phi.cls)))
                }
                for (temp, bits) in incoming { frame.values[temp] = bits }
            }
            for position in current.instructionRange {
                steps += 1
                if steps > stepLimit { throw InterpreterError(description: "more than \(stepLimit) steps") }
                let instruction = function.instructions[position]
                switch instruction.op {
                case .par, .parsb, .parub, .parsh, .paruh:
                    guard parameter < arguments.count else { throw InterpreterError(description: "too few arguments") }
                    frame.values[Int(instruction.to.index)] = parameterValue(instruction.op, arguments[parameter])
                    parameter += 1
                case .arg, .argsb, .argub, .argsh, .arguh:
                    pendingArguments.append(value(instruction.arg0, frame))
                case .argv:
                    break
                case .call:
                    let result = try callee(instruction, pendingArguments, frame)
                    pendingArguments = []
                    if instruction.to.isTemp { frame.values[Int(instruction.to.index)] = normalize(result, instruction.cls) }
                default:
                    try execute(instruction, at: position, &frame, function)
                }
            }
            let jump = current.jump
            switch jump.kind {
            case .jmp:
                previous = block
                block = Int(jump.target.index)
            case .jnz:
                previous = block
                let condition = UInt32(truncatingIfNeeded: value(jump.arg, frame))
                block = Int((condition != 0 ? jump.target : jump.otherTarget).index)
            case .ret:
                return 0
            case .retValue:
                return value(jump.arg, frame)
            case .hlt, .none:
                throw InterpreterError(description: "hlt reached")
            }
        }
    }

    func parameterValue(_ op: Opcode, _ bits: UInt64) -> UInt64 {
        switch op {
        case .parsb: UInt64(UInt32(bitPattern: Int32(Int8(truncatingIfNeeded: bits))))
        case .parub: UInt64(UInt8(truncatingIfNeeded: bits))
        case .parsh: UInt64(UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: bits))))
        case .paruh: UInt64(UInt16(truncatingIfNeeded: bits))
        default: bits
        }
    }

    /// Runs a call: a function of the module, or `printf`.
    mutating func callee(_ instruction: Instruction, _ arguments: [UInt64], _ frame: Frame) throws -> UInt64 {
        guard instruction.arg0.isConstant, frame.constants[Int(instruction.arg0.index)].kind == .address else {
            throw InterpreterError(description: "indirect calls are not interpreted")
        }
        let name = frame.constants[Int(instruction.arg0.index)].symbol
        if let index = functionIndex[name] { return try call(index, arguments: arguments) }
        guard module.text(name) == "printf", let format = arguments.first else {
            throw InterpreterError(description: "call to $\(module.text(name)), which the interpreter does not know")
        }
        try printf(format, Array(arguments.dropFirst()))
        return 0
    }

    func string(at address: UInt64) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var at = address
        while true {
            let byte = UInt8(try read(at, size: 1))
            if byte == 0 { return bytes }
            bytes.append(byte)
            at += 1
        }
    }

    mutating func printf(_ format: UInt64, _ arguments: [UInt64]) throws {
        let text = try string(at: format)
        var next = 0
        var index = 0
        while index < text.count {
            guard text[index] == UInt8(ascii: "%") else {
                output.append(text[index])
                index += 1
                continue
            }
            var end = index + 1
            while end < text.count, text[end] == UInt8(ascii: "l") { end += 1 }
            guard end < text.count else { throw InterpreterError(description: "bad printf format") }
            let isLong = end > index + 1
            guard next < arguments.count else { throw InterpreterError(description: "printf without enough arguments") }
            let argument = arguments[next]
            next += 1
            switch text[end] {
            case UInt8(ascii: "x"): output += Array(String(isLong ? argument : argument & 0xFFFF_FFFF, radix: 16).utf8)
            case UInt8(ascii: "d"):
                let number = isLong ? Int64(bitPattern: argument) : Int64(Int32(truncatingIfNeeded: argument))
                output += Array(String(number).utf8)
            case UInt8(ascii: "s"): output += try string(at: argument)
            default: throw InterpreterError(description: "printf conversion %\(Character(UnicodeScalar(text[end]))) is not interpreted")
            }
            index = end + 1
        }
    }

    /// The bits of an operand.
    func value(_ operand: Value, _ frame: Frame) -> UInt64 {
        switch operand.kind {
        case .temp: return frame.values[Int(operand.index)]
        case .constant:
            let constant = frame.constants[Int(operand.index)]
            if constant.kind == .address {
                let base = dataAddress[constant.symbol] ?? 0
                return base &+ constant.bits
            }
            return constant.bits
        default: return 0
        }
    }

    /// A result as the class keeps it: `w` and `s` in the low 32 bits.
    func normalize(_ bits: UInt64, _ cls: Class) -> UInt64 {
        cls == .w || cls == .s ? bits & 0xFFFF_FFFF : bits
    }
}
