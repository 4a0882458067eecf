// Selection of the SysV calling convention: parameters, calls, returns and
// variadic arguments.
//
// Integer arguments go in rdi rsi rdx rcx r8 r9, floating ones in xmm0-7, the
// rest on the stack in order; an aggregate goes in registers only when
// registers remain for all its eightbytes. A MEMORY-class result is returned
// through a hidden pointer in rdi. The environment travels in rax, and a
// variadic call puts the number of vector registers used in al.

import KilnCode
import KilnIL
import KilnX64

/// Where one argument travels.
enum ArgumentPlace {
    case integer(GPR)
    case sse(XMM)
    /// Eightbytes of an aggregate in registers.
    case aggregate([(EightbyteClass, Reg)])
    /// On the stack at this offset from the start of the argument area (size bytes).
    case stack(Int, size: Int)
    case environment
}

struct ArgumentLayout {
    var places: [ArgumentPlace] = []
    var integerCount = 0
    var sseCount = 0
    var stackBytes = 0

    /// Lays out arguments given as (class, aggregate type) pairs.
    init(_ arguments: [(cls: Class, aggregate: TypeID?, isEnvironment: Bool)], hiddenPointer: Bool, module: Module) {
        if hiddenPointer { integerCount = 1 }
        places.reserveCapacity(arguments.count)
        for argument in arguments {
            if argument.isEnvironment {
                places.append(.environment)
                continue
            }
            if let id = argument.aggregate {
                let shape = classify(id, in: module)
                if !shape.isMemory, integerCount + shape.integerCount <= 6, sseCount + shape.sseCount <= 8 {
                    var parts: [(EightbyteClass, Reg)] = []
                    for eightbyte in shape.eightbytes! {
                        if eightbyte == .integer {
                            parts.append((.integer, physical(integerArgumentRegisters[integerCount])))
                            integerCount += 1
                        } else {
                            parts.append((.sse, physical(XMM(rawValue: UInt8(sseCount))!)))
                            sseCount += 1
                        }
                    }
                    places.append(.aggregate(parts))
                } else {
                    let alignment = max(8, shape.alignment)
                    stackBytes = (stackBytes + alignment - 1) & ~(alignment - 1)
                    let size = (shape.size + 7) & ~7
                    places.append(.stack(stackBytes, size: size))
                    stackBytes += size
                }
            } else if argument.cls.isFloat {
                if sseCount < 8 {
                    places.append(.sse(XMM(rawValue: UInt8(sseCount))!))
                    sseCount += 1
                } else {
                    places.append(.stack(stackBytes, size: 8))
                    stackBytes += 8
                }
            } else if integerCount < 6 {
                places.append(.integer(integerArgumentRegisters[integerCount]))
                integerCount += 1
            } else {
                places.append(.stack(stackBytes, size: 8))
                stackBytes += 8
            }
        }
    }
}

extension Selector {
    func returnsInMemory() -> Bool {
        if case .aggregate(let id)? = function.returnType { return classify(id, in: module).isMemory }
        return false
    }

    // MARK: Parameters

    mutating func selectParameters() throws {
        let parameters = function.instructions.prefix(while: \.op.isParameter)
        let hidden = returnsInMemory()
        let layout = ArgumentLayout(parameters.map { ($0.cls, $0.op == .parc ? $0.arg0.typeID : nil, $0.op == .pare) },
                                    hiddenPointer: hidden, module: module)
        incomingIntegerCount = layout.integerCount
        incomingSSECount = layout.sseCount
        machine.incomingStackBytes = layout.stackBytes
        machine.isVariadic = function.isVariadic
        if function.isVariadic {
            // Save every argument register before anything can clobber them: vaarg reads them.
            let area = machine.newFrameObject(size: 176, alignment: 16)
            machine.registerSaveArea = area
            for (index, register) in integerArgumentRegisters.enumerated() {
                emit(.mov, .b64, .mem(MMem(base: .frame(area), displacement: Int32(8 * index))), .reg(physical(register)))
            }
            for index in 0..<8 {
                emit(.fmov, .b64, .mem(MMem(base: .frame(area), displacement: Int32(48 + 16 * index))),
                     .reg(physical(XMM(rawValue: UInt8(index))!)))
            }
        }
        if hidden {
            returnPointer = machine.newVirtual(.gpr)
            emit(.mov, .b64, .reg(returnPointer), .reg(physical(GPR.rdi)))
        }
        for (parameter, place) in zip(parameters, layout.places) {
            location = parameter.location
            let to = register(parameter.to.index)
            let width = Selector.width(parameter.cls)
            switch place {
            case .environment:
                emit(.mov, .b64, .reg(to), .reg(physical(GPR.rax)))
            case .integer(let source):
                switch parameter.op {
                case .parsb: emit(.movsx(.b8), .b32, .reg(to), .reg(physical(source)))
                case .parub: emit(.movzx(.b8), .b32, .reg(to), .reg(physical(source)))
                case .parsh: emit(.movsx(.b16), .b32, .reg(to), .reg(physical(source)))
                case .paruh: emit(.movzx(.b16), .b32, .reg(to), .reg(physical(source)))
                default: emit(.mov, width, .reg(to), .reg(physical(source)))
                }
            case .sse(let source):
                emit(.fmov, width, .reg(to), .reg(physical(source)))
            case .aggregate(let parts):
                let shape = classify(parameter.arg0.typeID, in: module)
                let object = machine.newFrameObject(size: (shape.size + 7) & ~7, alignment: max(8, shape.alignment))
                for (index, (kind, source)) in parts.enumerated() {
                    let slot = MOperand.mem(MMem(base: .frame(object), displacement: Int32(8 * index)))
                    emit(kind == .integer ? .mov : .fmov, .b64, slot, .reg(source))
                }
                frameObjectOfTemp[parameter.to.index] = object
                emit(.lea, .b64, .reg(to), .mem(MMem(base: .frame(object))))
            case .stack(let offset, _):
                let slot = MOperand.mem(MMem(base: .incoming, displacement: Int32(offset)))
                if parameter.op == .parc {
                    emit(.lea, .b64, .reg(to), slot)
                } else if parameter.cls.isFloat {
                    emit(.fmov, width, .reg(to), slot)
                } else {
                    switch parameter.op {
                    case .parsb: emit(.movsx(.b8), .b32, .reg(to), slot)
                    case .parub: emit(.movzx(.b8), .b32, .reg(to), slot)
                    case .parsh: emit(.movsx(.b16), .b32, .reg(to), slot)
                    case .paruh: emit(.movzx(.b16), .b32, .reg(to), slot)
                    default: emit(.mov, width, .reg(to), slot)
                    }
                }
            }
        }
    }

    // MARK: Calls

    mutating func selectCall(_ index: Int) throws {
        let call = function.instructions[index]
        var first = index
        while first > 0, function.instructions[first - 1].op.isArgument { first -= 1 }
        let arguments = function.instructions[first..<index]
        let isVariadicCall = arguments.contains { $0.op == .argv }
        let real = arguments.filter { $0.op != .argv }
        var resultShape: AggregateClass?
        if !call.arg1.isNone { resultShape = classify(call.arg1.typeID, in: module) }
        let hidden = resultShape?.isMemory ?? false
        let layout = ArgumentLayout(real.map { ($0.cls, $0.op == .argc ? $0.arg0.typeID : nil, $0.op == .arge) },
                                    hiddenPointer: hidden, module: module)
        machine.makesCalls = true
        location = call.location

        // Values first (they may need registers and even calls of their own, for thread-locals),
        // then the stack area, then the argument registers right before the call.
        var registerMoves: [(Reg, MOperand, isFloat: Bool)] = []
        registerMoves.reserveCapacity(real.count + 1)
        var stackStores: [(offset: Int, size: Int, value: MOperand, isFloat: Bool, isAggregate: Bool)] = []
        var aggregateLoads: [(pointer: Reg, parts: [(EightbyteClass, Reg)])] = []
        for (argument, place) in zip(real, layout.places) {
            switch place {
            case .environment:
                registerMoves.append((physical(GPR.rax), .reg(try integerRegister(argument.arg0, .b64)), false))
            case .integer(let register):
                registerMoves.append((physical(register), try integerOperand(argument.arg0, Selector.width(argument.cls)), false))
            case .sse(let register):
                registerMoves.append((physical(register), .reg(try floatRegister(argument.arg0, argument.cls)), true))
            case .aggregate(let parts):
                aggregateLoads.append((try integerRegister(argument.arg1, .b64), parts))
            case .stack(let offset, let size):
                if argument.op == .argc {
                    stackStores.append((offset, size, .reg(try integerRegister(argument.arg1, .b64)), false, true))
                } else if argument.cls.isFloat {
                    stackStores.append((offset, 8, .reg(try floatRegister(argument.arg0, argument.cls)), true, false))
                } else {
                    stackStores.append((offset, 8, .reg(try integerRegister(argument.arg0, .b64)), false, false))
                }
            }
        }
        var callee: MOperand
        if let constant = constant(call.arg0), constant.kind == .address, !constant.isThreadLocal, constant.bits == 0 {
            switch symbols.target(constant.symbol, in: module) {
            case .function(let target): callee = .target(machine.target(.function(target)), 0)
            case .external(let name): callee = .mem(MMem(base: .target(machine.target(.callSlot(name)))))
            default: callee = .reg(try integerRegister(call.arg0, .b64))
            }
        } else {
            callee = .reg(try integerRegister(call.arg0, .b64))
        }
        var resultObject: Int32 = -1
        if let shape = resultShape {
            resultObject = machine.newFrameObject(size: (shape.size + 15) & ~15, alignment: max(16, shape.alignment))
        }
        let area = (layout.stackBytes + 15) & ~15
        machine.outgoingStackBytes = max(machine.outgoingStackBytes, area)
        if area > 0 {
            emit(.alu(.sub), .b64, .reg(physical(GPR.rsp)), .imm(Int64(area)))
            for store in stackStores {
                if store.isAggregate {
                    let destination = machine.newVirtual(.gpr)
                    emit(.lea, .b64, .reg(destination), .mem(MMem(base: .outgoing, displacement: Int32(store.offset))))
                    emit(.copyBytes(Int32(store.size)), .b64, .reg(destination), store.value, .reg(machine.newVirtual(.gpr)))
                } else {
                    emit(store.isFloat ? .fmov : .mov, .b64, .mem(MMem(base: .outgoing, displacement: Int32(store.offset))), store.value)
                }
            }
        }
        var used: [Reg] = []
        used.reserveCapacity(real.count + 2)
        for (pointer, parts) in aggregateLoads {
            for (part, (kind, register)) in parts.enumerated() {
                emit(kind == .integer ? .mov : .fmov, .b64, .reg(register), .mem(MMem(base: .reg(pointer), displacement: Int32(8 * part))))
                used.append(register)
            }
        }
        for (register, value, isFloat) in registerMoves {
            emit(isFloat ? .fmov : .mov, .b64, .reg(register), value)
            used.append(register)
        }
        if hidden {
            emit(.lea, .b64, .reg(physical(GPR.rdi)), .mem(MMem(base: .frame(resultObject))))
            used.append(physical(GPR.rdi))
        }
        if isVariadicCall {
            emit(.mov, .b32, .reg(physical(GPR.rax)), .imm(Int64(layout.sseCount)))
            used.append(physical(GPR.rax))
        }
        var results: [Reg] = []
        if let shape = resultShape, let eightbytes = shape.eightbytes {
            var integer = [physical(GPR.rax), physical(GPR.rdx)].makeIterator()
            var sse = [physical(XMM.xmm0), physical(XMM.xmm1)].makeIterator()
            for eightbyte in eightbytes { results.append(eightbyte == .integer ? integer.next()! : sse.next()!) }
        } else if !call.to.isNone && resultShape == nil {
            results.append(call.cls.isFloat ? physical(XMM.xmm0) : physical(GPR.rax))
        }
        machine.calls.append(CallInfo(uses: used, results: results))
        emit(.call(Int32(machine.calls.count - 1)), .b64, callee)
        if area > 0 { emit(.alu(.add), .b64, .reg(physical(GPR.rsp)), .imm(Int64(area))) }
        guard call.to.isTemp else { return }
        let to = register(call.to.index)
        if let shape = resultShape {
            if let eightbytes = shape.eightbytes {
                for (part, kind) in eightbytes.enumerated() {
                    emit(kind == .integer ? .mov : .fmov, .b64, .mem(MMem(base: .frame(resultObject), displacement: Int32(8 * part))),
                         .reg(results[part]))
                }
            }
            frameObjectOfTemp[call.to.index] = resultObject
            emit(.lea, .b64, .reg(to), .mem(MMem(base: .frame(resultObject))))
        } else if call.cls.isFloat {
            emit(.fmov, Selector.width(call.cls), .reg(to), .reg(physical(XMM.xmm0)))
        } else {
            emit(.mov, Selector.width(call.cls), .reg(to), .reg(physical(GPR.rax)))
        }
    }

    // MARK: Returns

    mutating func selectReturn(_ jump: Jump) throws {
        var used: [Reg] = []
        if jump.kind == .retValue, let type = function.returnType {
            switch type {
            case .base(let cls) where cls.isFloat:
                emit(.fmov, Selector.width(cls), .reg(physical(XMM.xmm0)), try floatOperand(jump.arg, cls))
                used.append(physical(XMM.xmm0))
            case .base, .subWord:
                let width = Selector.width(type.temporaryClass)
                emit(.mov, width, .reg(physical(GPR.rax)), try integerOperand(jump.arg, width))
                used.append(physical(GPR.rax))
            case .aggregate(let id):
                let shape = classify(id, in: module)
                let pointer = try integerRegister(jump.arg, .b64)
                if let eightbytes = shape.eightbytes {
                    var integer = [physical(GPR.rax), physical(GPR.rdx)].makeIterator()
                    var sse = [physical(XMM.xmm0), physical(XMM.xmm1)].makeIterator()
                    for (part, kind) in eightbytes.enumerated() {
                        let register = kind == .integer ? integer.next()! : sse.next()!
                        emit(kind == .integer ? .mov : .fmov, .b64, .reg(register),
                             .mem(MMem(base: .reg(pointer), displacement: Int32(8 * part))))
                        used.append(register)
                    }
                } else {
                    emit(.copyBytes(Int32(shape.size)), .b64, .reg(returnPointer), .reg(pointer), .reg(machine.newVirtual(.gpr)))
                    emit(.mov, .b64, .reg(physical(GPR.rax)), .reg(returnPointer))
                    used.append(physical(GPR.rax))
                }
            }
        }
        machine.calls.append(CallInfo(uses: used, results: []))
        emit(.ret, .b64, .imm(Int64(machine.calls.count - 1)))
    }

    // MARK: Variadic functions

    mutating func selectVaStart(_ instruction: Instruction) throws {
        guard let area = machine.registerSaveArea else { throw fail("vastart outside a variadic function") }
        let list = try address(instruction.arg0)
        func field(_ offset: Int32) -> MOperand {
            var memory = list
            memory.displacement &+= offset
            return .mem(memory)
        }
        emit(.mov, .b32, field(0), .imm(Int64(incomingIntegerCount * 8)))
        emit(.mov, .b32, field(4), .imm(Int64(48 + incomingSSECount * 16)))
        let overflow = machine.newVirtual(.gpr)
        emit(.lea, .b64, .reg(overflow), .mem(MMem(base: .incoming, displacement: Int32(machine.incomingStackBytes))))
        emit(.mov, .b64, field(8), .reg(overflow))
        let save = machine.newVirtual(.gpr)
        emit(.lea, .b64, .reg(save), .mem(MMem(base: .frame(area))))
        emit(.mov, .b64, field(16), .reg(save))
    }

    /// `vaarg` without branches: both candidate addresses are computed and cmov picks one.
    mutating func selectVaArg(_ instruction: Instruction, _ to: Reg) throws {
        let list = try integerRegister(instruction.arg0, .b64)
        let isFloat = instruction.cls.isFloat
        let offsetField: Int32 = isFloat ? 4 : 0
        let limit: Int64 = isFloat ? 176 : 48
        let step: Int32 = isFloat ? 16 : 8
        let offset = machine.newVirtual(.gpr), inRegisters = machine.newVirtual(.gpr)
        let onStack = machine.newVirtual(.gpr), chosen = machine.newVirtual(.gpr)
        let nextOffset = machine.newVirtual(.gpr), nextStack = machine.newVirtual(.gpr)
        emit(.mov, .b32, .reg(offset), .mem(MMem(base: .reg(list), displacement: offsetField)))
        emit(.mov, .b64, .reg(inRegisters), .mem(MMem(base: .reg(list), displacement: 16)))
        emit(.alu(.add), .b64, .reg(inRegisters), .reg(offset))
        emit(.mov, .b64, .reg(onStack), .mem(MMem(base: .reg(list), displacement: 8)))
        emit(.lea, .b32, .reg(nextOffset), .mem(MMem(base: .reg(offset), displacement: step)))
        emit(.lea, .b64, .reg(nextStack), .mem(MMem(base: .reg(onStack), displacement: 8)))
        emit(.mov, .b64, .reg(chosen), .reg(onStack))
        emit(.alu(.cmp), .b32, .reg(offset), .imm(limit))
        emit(.cmov(.b), .b64, .reg(chosen), .reg(inRegisters))
        emit(.cmov(.ae), .b32, .reg(nextOffset), .reg(offset))
        emit(.cmov(.b), .b64, .reg(nextStack), .reg(onStack))
        emit(.mov, .b32, .mem(MMem(base: .reg(list), displacement: offsetField)), .reg(nextOffset))
        emit(.mov, .b64, .mem(MMem(base: .reg(list), displacement: 8)), .reg(nextStack))
        let width = Selector.width(instruction.cls)
        emit(isFloat ? .fmov : .mov, width, .reg(to), .mem(MMem(base: .reg(chosen))))
    }
}
