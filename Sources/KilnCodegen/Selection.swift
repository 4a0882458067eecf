// Instruction selection: an SSA IL function to a machine function.
//
// Requires: a verified module whose functions went through the pass pipeline
// (SSA form, no unreachable blocks).
// Provides: a `MachineFunction` over virtual registers, one machine block per
// IL block plus blocks that split critical edges carrying phi copies.
//
// Choices that pay for themselves: immediates folded into ALU forms, `lea` for
// three-address adds, addressing modes folded from `add`/`mul`/`shl` chains,
// static `alloc`s and data symbols as rip/rbp-relative operands, and a
// comparison that feeds only its block's `jnz` fused into `cmp` + `jcc`.

import KilnCode
import KilnIL
import KilnPasses
import KilnX64

/// A construct the code generator does not handle, with where it is.
public struct CodegenError: Error, CustomStringConvertible {
    public var message: String
    public var location: SourceLocation
    public var description: String { message }
}

struct Selector {
    let module: Module
    let function: Function
    let symbols: SymbolTable
    var machine: MachineFunction
    var code: [MInstruction] = []
    var registerOfTemp: [Reg]
    /// How many times each temporary is read.
    var uses: [Int32]
    /// The instruction defining each temporary (-1: a phi or nothing).
    var definition: [Int32]
    /// Temporaries whose comparison is emitted at the block's jump instead of at its definition.
    var fused: TempSet
    /// The number of predecessors of each IL block.
    var predecessorCounts: [Int] = []
    /// The machine block of each IL block (split edges get blocks of their own in between).
    var machineBlock: [Int32] = []
    /// Temporaries computed only to be folded into addressing modes: not emitted.
    var foldedAway: TempSet
    /// Temporaries that name a static stack object.
    var frameObjectOfTemp: TempMap
    var location = SourceLocation.none
    /// The instructions of the IL block being selected.
    var currentBlockRange = 0..<0
    /// Managed accesses are checked by the runtime (`CodegenOptions.checksReferences`).
    var checksReferences = false
    /// The hidden return pointer of a function returning a MEMORY aggregate.
    var returnPointer: Reg = -1
    /// Classification of the incoming arguments, for `vastart`.
    var incomingIntegerCount = 0
    var incomingSSECount = 0
    /// The phi arguments by the predecessor they come from; the phi of each argument and
    /// the block of that phi. An edge's copies are found without searching the phis' arguments.
    let phiArgumentsFrom: Adjacency
    var phiOfArgument: [Int32]
    var phiBlockOfArgument: [Int32]

    init(module: Module, function: Function, symbols: SymbolTable) {
        self.module = module
        self.function = function
        self.symbols = symbols
        machine = MachineFunction(name: unquoted(module.text(function.name)), isExported: function.linkage.isExport,
                                  blocks: [], location: function.location)
        registerOfTemp = Array(repeating: -1, count: function.temps.count)
        fused = TempSet(count: function.temps.count)
        foldedAway = TempSet(count: function.temps.count)
        frameObjectOfTemp = TempMap(count: function.temps.count)
        uses = Array(repeating: 0, count: function.temps.count)
        definition = Array(repeating: -1, count: function.temps.count)
        for (index, instruction) in function.instructions.enumerated() {
            if instruction.arg0.isTemp { uses[Int(instruction.arg0.index)] += 1 }
            if instruction.arg1.isTemp { uses[Int(instruction.arg1.index)] += 1 }
            if instruction.to.isTemp { definition[Int(instruction.to.index)] = Int32(index) }
        }
        for argument in function.phiArguments where argument.value.isTemp { uses[Int(argument.value.index)] += 1 }
        phiOfArgument = [Int32](repeating: 0, count: function.phiArguments.count)
        phiBlockOfArgument = [Int32](repeating: 0, count: function.phiArguments.count)
        for (blockIndex, block) in function.blocks.enumerated() {
            for phiIndex in block.phiRange {
                let phi = function.phis[phiIndex]
                for argument in Int(phi.argumentStart)..<Int(phi.argumentStart + phi.argumentCount) {
                    phiOfArgument[argument] = Int32(phiIndex)
                    phiBlockOfArgument[argument] = Int32(blockIndex)
                }
            }
        }
        phiArgumentsFrom = Adjacency(count: function.blocks.count,
                                     nodes: function.phiArguments.map { Int32($0.block.index) },
                                     items: (0..<function.phiArguments.count).map { Int32($0) })
        for block in function.blocks where block.jump.arg.isTemp { uses[Int(block.jump.arg.index)] += 1 }
        findAddressOnlyTemps()
        findLoadsExtendedAtOnce()
    }

    /// A narrow load read only by the extension right after it in the same block (C's
    /// `(unsigned char)*p` becomes `loadsb` then `extub`) is not emitted: the extension loads
    /// from memory itself with the combined width and signedness (`extendedLoad`). Nothing
    /// can write memory between the two, since they are neighbours.
    mutating func findLoadsExtendedAtOnce() {
        for block in function.blocks {
            let range = block.instructionRange
            guard range.count >= 2 else { continue }
            for index in (range.lowerBound + 1)..<range.upperBound {
                let widening = function.instructions[index]
                switch widening.op {
                case .extsb, .extub, .extsh, .extuh, .extsw, .extuw: break
                default: continue
                }
                guard widening.arg0.isTemp else { continue }
                let temp = Int(widening.arg0.index)
                guard uses[temp] == 1, definition[temp] == Int32(index - 1) else { continue }
                let load = function.instructions[index - 1]
                if Selector.extendedLoad(load, widening) != nil { foldedAway.insert(temp) }
            }
        }
    }

    /// The one x86 load that gives `widening` applied to the value of `load`, as the
    /// instruction, its destination width and the width it reads; nil when none does.
    static func extendedLoad(_ load: Instruction, _ widening: Instruction) -> (op: MOp, width: Width)? {
        let loaded: (bits: Int, signed: Bool)
        switch load.op {
        case .loadsb: loaded = (8, true)
        case .loadub: loaded = (8, false)
        case .loadsh: loaded = (16, true)
        case .loaduh: loaded = (16, false)
        case .loadsw: loaded = (32, true)
        case .loaduw: loaded = (32, false)
        case .load where load.cls == .w: loaded = (32, true)
        default: return nil
        }
        let extended: (bits: Int, signed: Bool)
        switch widening.op {
        case .extsb: extended = (8, true)
        case .extub: extended = (8, false)
        case .extsh: extended = (16, true)
        case .extuh: extended = (16, false)
        case .extsw: extended = (32, true)
        case .extuw: extended = (32, false)
        default: return nil
        }
        let result = Selector.width(widening.cls)
        // The extension keeps the low `extended.bits` of what was loaded; when those are no more
        // than the load read, they are the first bytes in memory (little-endian).
        var read = extended
        if extended.bits > loaded.bits {
            if !loaded.signed {
                read = loaded
            } else if extended.signed {
                read = loaded
            } else if extended.bits == 32 {
                // Sign-extended to 32 bits, then those zero-extended: a 32-bit movsx does both.
                return (loaded.bits == 8 ? .movsx(.b8) : .movsx(.b16), .b32)
            } else {
                return nil
            }
        }
        switch (read.bits, read.signed) {
        case (8, true): return (.movsx(.b8), result)
        case (8, false): return (.movzx(.b8), .b32)
        case (16, true): return (.movsx(.b16), result)
        case (16, false): return (.movzx(.b16), .b32)
        case (32, true): return result == .b64 ? (.movsx(.b32), .b64) : (.mov, .b32)
        default: return (.mov, .b32)
        }
    }

    /// An `add` used only as the address of loads and stores is folded into each of them,
    /// and so is a scaling `mul`/`shl` used only inside such adds: neither is emitted.
    mutating func findAddressOnlyTemps() {
        var addressUses = [Int32](repeating: 0, count: function.temps.count)
        for instruction in function.instructions {
            if instruction.op.isLoad, instruction.arg0.isTemp { addressUses[Int(instruction.arg0.index)] += 1 }
            if instruction.op.isStore, instruction.arg1.isTemp { addressUses[Int(instruction.arg1.index)] += 1 }
        }
        var indexUses = [Int32](repeating: 0, count: function.temps.count)
        for instruction in function.instructions where instruction.op == .add && instruction.cls == .l && instruction.to.isTemp {
            let temp = Int(instruction.to.index)
            guard uses[temp] > 0, uses[temp] == addressUses[temp], isFoldable(instruction) else { continue }
            foldedAway.insert(temp)
            let hasConstant = [instruction.arg0, instruction.arg1].contains { constant($0) != nil }
            if !hasConstant, let (_, index) = scaledOperands(of: instruction) { indexUses[Int(index.index)] += 1 }
        }
        for (temp, count) in indexUses.enumerated() where count > 0 && count == uses[temp] {
            foldedAway.insert(temp)
        }
    }

    /// Whether `foldAddress` turns this add into an addressing mode.
    func isFoldable(_ add: Instruction) -> Bool {
        guard add.arg0.isTemp || add.arg1.isTemp else { return false }
        for (base, other) in [(add.arg0, add.arg1), (add.arg1, add.arg0)] where base.isTemp {
            if let constant = constant(other), constant.kind == .bits {
                let offset = Int64(bitPattern: constant.bits)
                if offset >= Int64(Int32.min) && offset <= Int64(Int32.max) { return true }
            }
        }
        return add.arg0.isTemp && add.arg1.isTemp
    }

    func fail(_ message: String) -> CodegenError {
        CodegenError(message: message, location: location)
    }

    mutating func emit(_ op: MOp, _ width: Width, _ a: MOperand = .none, _ b: MOperand = .none, _ c: MOperand = .none) {
        code.append(MInstruction(op, width, a, b, c, at: location))
    }

    // MARK: Registers and operands

    static func width(_ cls: Class) -> Width { cls == .w || cls == .s ? .b32 : .b64 }

    func bank(_ cls: Class) -> Bank { cls.isFloat ? .xmm : .gpr }

    /// The virtual register of a temporary.
    mutating func register(_ temp: UInt32) -> Reg {
        let index = Int(temp)
        if registerOfTemp[index] < 0 {
            registerOfTemp[index] = machine.newVirtual(bank(function.temps[index].cls ?? .l))
            if function.temps[index].cls == .r { machine.references.insert(registerOfTemp[index]) }
        }
        return registerOfTemp[index]
    }

    func constant(_ value: Value) -> Constant? {
        value.isConstant ? function.constants[Int(value.index)] : nil
    }

    /// An integer operand: a register, or an immediate when it fits the instruction
    /// (`imm32` sign-extended for 64-bit forms).
    mutating func integerOperand(_ value: Value, _ width: Width, allowImmediate: Bool = true) throws -> MOperand {
        if value.isTemp { return .reg(register(value.index)) }
        guard let constant = constant(value) else { throw fail("missing operand") }
        if constant.kind == .bits {
            let bits = width == .b64 ? Int64(bitPattern: constant.bits) : Int64(Int32(truncatingIfNeeded: constant.bits))
            if allowImmediate && bits >= Int64(Int32.min) && bits <= Int64(Int32.max) { return .imm(bits) }
            let temporary = machine.newVirtual(.gpr)
            emit(.mov, width, .reg(temporary), .imm(bits))
            return .reg(temporary)
        }
        return .reg(try materializeAddress(constant))
    }

    /// An integer value in a register.
    mutating func integerRegister(_ value: Value, _ width: Width) throws -> Reg {
        let operand = try integerOperand(value, width, allowImmediate: false)
        return operand.register!
    }

    /// The address of a symbol constant, in a new register.
    mutating func materializeAddress(_ constant: Constant) throws -> Reg {
        let result = machine.newVirtual(.gpr)
        let offset = Int64(bitPattern: constant.bits)
        let target = symbols.target(constant.symbol, in: module)
        if constant.isThreadLocal {
            guard case .threadLocal = target else {
                throw fail("thread $\(module.text(constant.symbol)): thread-local data defined outside the module is not supported yet")
            }
        }
        switch target {
        case .threadLocal:
            let info = CallInfo(uses: [physical(GPR.rdi)], results: [physical(GPR.rax)])
            machine.calls.append(info)
            machine.makesCalls = true
            emit(.mov, .b32, .reg(physical(GPR.rdi)), .target(machine.target(target), offset))
            emit(.call(Int32(machine.calls.count - 1)), .b64, .mem(MMem(base: .target(machine.target(.callSlot("kiln.tls.address"))))))
            emit(.mov, .b64, .reg(result), .reg(physical(GPR.rax)))
        case .external(let name):
            emit(.mov, .b64, .reg(result), .mem(MMem(base: .target(machine.target(.addressSlot(name))))))
            if offset != 0 { try addOffset(result, offset) }
        default:
            // A function's address as a value is its callback stub, which never moves.
            let target = target.asValue
            if offset >= Int64(Int32.min) && offset <= Int64(Int32.max) {
                emit(.lea, .b64, .reg(result), .mem(MMem(base: .target(machine.target(target)), displacement: Int32(offset))))
            } else {
                emit(.lea, .b64, .reg(result), .mem(MMem(base: .target(machine.target(target)))))
                try addOffset(result, offset)
            }
        }
        return result
    }

    mutating func addOffset(_ register: Reg, _ offset: Int64) throws {
        if offset >= Int64(Int32.min) && offset <= Int64(Int32.max) {
            emit(.alu(.add), .b64, .reg(register), .imm(offset))
        } else {
            let temporary = machine.newVirtual(.gpr)
            emit(.mov, .b64, .reg(temporary), .imm(offset))
            emit(.alu(.add), .b64, .reg(register), .reg(temporary))
        }
    }

    /// A floating operand: a register, or a constant-pool memory operand.
    mutating func floatOperand(_ value: Value, _ cls: Class) throws -> MOperand {
        if value.isTemp { return .reg(register(value.index)) }
        guard let constant = constant(value) else { throw fail("missing operand") }
        if constant.kind == .address { throw fail("a symbol address cannot be a floating-point operand") }
        let size = cls == .s ? 4 : 8
        var bytes = (0..<size).map { UInt8(truncatingIfNeeded: constant.bits >> (8 * UInt64($0))) }
        bytes.append(contentsOf: repeatElement(0, count: 16 - size))
        return .mem(MMem(base: .pool(machine.poolEntry(bytes))))
    }

    mutating func floatRegister(_ value: Value, _ cls: Class) throws -> Reg {
        let operand = try floatOperand(value, cls)
        if let register = operand.register { return register }
        let temporary = machine.newVirtual(.xmm)
        emit(.fmov, Selector.width(cls), .reg(temporary), operand)
        return temporary
    }

    /// The source of a phi's copy: `.none` for an undefined value, which needs no copy.
    mutating func phiSource(_ value: Value, _ cls: Class) throws -> MOperand {
        if let constant = constant(value), constant.isUndefined { return .none }
        return try operand(value, cls)
    }

    /// Any operand for a value of class `cls`, as a move source.
    mutating func operand(_ value: Value, _ cls: Class) throws -> MOperand {
        cls.isFloat ? try floatOperand(value, cls) : try integerOperand(value, Selector.width(cls))
    }

    /// A memory operand for the address held in `value`, folding what it can.
    mutating func address(_ value: Value) throws -> MMem {
        if let constant = constant(value) {
            if constant.kind == .address {
                let target = symbols.target(constant.symbol, in: module)
                let offset = Int64(bitPattern: constant.bits)
                switch target {
                case .function, .data:
                    if offset >= Int64(Int32.min) && offset <= Int64(Int32.max) {
                        return MMem(base: .target(machine.target(target.asValue)), displacement: Int32(offset))
                    }
                default:
                    break
                }
            }
            return MMem(base: .reg(try integerRegister(value, .b64)))
        }
        let temp = value.index
        if let object = frameObjectOfTemp[temp] { return MMem(base: .frame(object)) }
        let defining = definition[Int(temp)]
        if defining >= 0 {
            let instruction = function.instructions[Int(defining)]
            if instruction.op == .add && instruction.cls == .l, let folded = try foldAddress(instruction) {
                return folded
            }
        }
        return MMem(base: .reg(register(temp)))
    }

    /// `add a, b` as an addressing mode, when one operand is a small constant or a scaled index.
    mutating func foldAddress(_ add: Instruction) throws -> MMem? {
        for (base, other) in [(add.arg0, add.arg1), (add.arg1, add.arg0)] where base.isTemp {
            if let constant = constant(other), constant.kind == .bits {
                let offset = Int64(bitPattern: constant.bits)
                guard offset >= Int64(Int32.min), offset <= Int64(Int32.max) else { continue }
                if let object = frameObjectOfTemp[base.index] {
                    return MMem(base: .frame(object), displacement: Int32(offset))
                }
                return MMem(base: .reg(register(base.index)), displacement: Int32(offset))
            }
        }
        if let (base, index) = scaledOperands(of: add), let (indexTemp, scale) = scaledIndex(index) {
            return MMem(base: .reg(register(base.index)), index: register(indexTemp), scale: scale)
        }
        if add.arg0.isTemp && add.arg1.isTemp {
            return MMem(base: .reg(register(add.arg0.index)), index: register(add.arg1.index))
        }
        return nil
    }

    /// For an add of two temporaries where one is a scaled index: (base, the scaled one).
    /// `foldAddress` and `findAddressOnlyTemps` must agree on this choice.
    func scaledOperands(of add: Instruction) -> (Value, Value)? {
        guard add.arg0.isTemp, add.arg1.isTemp else { return nil }
        if scaledIndex(add.arg1) != nil { return (add.arg0, add.arg1) }
        if scaledIndex(add.arg0) != nil { return (add.arg1, add.arg0) }
        return nil
    }

    /// `mul i, 1/2/4/8` or `shl i, 0-3` (class l) as an index and a scale.
    func scaledIndex(_ value: Value) -> (UInt32, Scale)? {
        let defining = definition[Int(value.index)]
        guard defining >= 0 else { return nil }
        let instruction = function.instructions[Int(defining)]
        guard instruction.cls == .l, instruction.arg0.isTemp, let constant = constant(instruction.arg1),
              constant.kind == .bits else { return nil }
        let scale: Scale
        switch (instruction.op, constant.bits) {
        case (.mul, 1), (.shl, 0): scale = .x1
        case (.mul, 2), (.shl, 1): scale = .x2
        case (.mul, 4), (.shl, 2): scale = .x4
        case (.mul, 8), (.shl, 3): scale = .x8
        default: return nil
        }
        return (instruction.arg0.index, scale)
    }
}

/// A set of a function's temporaries: one flag per temporary, no hashing.
struct TempSet {
    private var flags: [Bool]

    init(count: Int) { flags = [Bool](repeating: false, count: count) }

    func contains(_ temp: UInt32) -> Bool { flags[Int(temp)] }
    mutating func insert(_ temp: UInt32) { flags[Int(temp)] = true }
    mutating func insert(_ temp: Int) { flags[temp] = true }
}

/// A map from a function's temporaries to small non-negative numbers, one slot per temporary.
struct TempMap {
    private var values: [Int32]

    init(count: Int) { values = [Int32](repeating: -1, count: count) }

    subscript(temp: UInt32) -> Int32? {
        get { values[Int(temp)] < 0 ? nil : values[Int(temp)] }
        set { values[Int(temp)] = newValue ?? -1 }
    }
}
