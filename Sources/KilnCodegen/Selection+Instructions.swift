// Selection of ordinary IL instructions: arithmetic, comparisons, memory,
// conversions, stack allocation and block copies.

import KilnCode
import KilnIL
import KilnX64

extension Selector {
    mutating func select(_ index: Int) throws {
        let instruction = function.instructions[index]
        location = instruction.location
        let cls = instruction.cls
        let width = Selector.width(cls)
        let op = instruction.op
        if instruction.to.isTemp, foldedAway.contains(instruction.to.index) { return }
        let to: Reg = instruction.to.isTemp ? register(instruction.to.index) : -1
        switch op {
        case .add, .sub, .and, .or, .xor, .mul, .div, .rem, .udiv, .urem, .neg, .sar, .shr, .shl:
            if cls.isFloat { try selectFloatArithmetic(instruction, to) } else { try selectIntegerArithmetic(instruction, to) }
        case _ where op.isComparison:
            if fused.contains(instruction.to.index) { return }
            try selectComparisonValue(instruction, to)
        case .copy:
            if cls.isFloat {
                emit(.fmov, width, .reg(to), try floatOperand(instruction.arg0, cls))
            } else {
                emit(.mov, width, .reg(to), try integerOperand(instruction.arg0, width))
            }
        case .storeb, .storeh, .storew, .storel:
            let storeWidth: Width = switch op {
            case .storeb: .b8
            case .storeh: .b16
            case .storew: .b32
            default: .b64
            }
            let value = try integerOperand(instruction.arg0, storeWidth == .b64 ? .b64 : .b32)
            emit(.mov, storeWidth, .mem(try address(instruction.arg1)), value)
        case .stores, .stored:
            let value = try floatRegister(instruction.arg0, op == .stores ? .s : .d)
            emit(.fmov, op == .stores ? .b32 : .b64, .mem(try address(instruction.arg1)), .reg(value))
        case .load:
            if cls.isFloat {
                emit(.fmov, width, .reg(to), .mem(try address(instruction.arg0)))
            } else {
                emit(.mov, width, .reg(to), .mem(try address(instruction.arg0)))
            }
        case .loadsw, .loaduw:
            if cls == .w || op == .loaduw {
                emit(.mov, .b32, .reg(to), .mem(try address(instruction.arg0)))
            } else {
                emit(.movsx(.b32), .b64, .reg(to), .mem(try address(instruction.arg0)))
            }
        case .loadsb, .loadub, .loadsh, .loaduh:
            let from: Width = (op == .loadsb || op == .loadub) ? .b8 : .b16
            let signed = op == .loadsb || op == .loadsh
            emit(signed ? .movsx(from) : .movzx(from), signed ? width : .b32, .reg(to), .mem(try address(instruction.arg0)))
        case .extsb, .extub, .extsh, .extuh, .extsw, .extuw:
            if instruction.arg0.isTemp, foldedAway.contains(instruction.arg0.index), index > 0,
               let (load, loadWidth) = Selector.extendedLoad(function.instructions[index - 1], instruction) {
                emit(load, loadWidth, .reg(to), .mem(try address(function.instructions[index - 1].arg0)))
            } else {
                try selectExtension(instruction, to)
            }
        case .exts, .truncd:
            emit(.floatToFloat, op == .exts ? .b64 : .b32, .reg(to), try floatOperand(instruction.arg0, op == .exts ? .s : .d))
        case .stosi, .dtosi:
            let precision: Precision = op == .stosi ? .single : .double
            emit(.floatToInt(precision), width, .reg(to), try floatOperand(instruction.arg0, op == .stosi ? .s : .d))
        case .stoui, .dtoui:
            try selectFloatToUnsigned(instruction, to)
        case .swtof, .sltof:
            let source = try integerRegister(instruction.arg0, op == .swtof ? .b32 : .b64)
            emit(.intToFloat(op == .swtof ? .b32 : .b64), width, .reg(to), .reg(source))
        case .uwtof:
            let source = try integerRegister(instruction.arg0, .b32)
            let widened = machine.newVirtual(.gpr)
            emit(.movzx(.b32), .b64, .reg(widened), .reg(source))
            emit(.intToFloat(.b64), width, .reg(to), .reg(widened))
        case .ultof:
            try selectUnsignedToFloat(instruction, to)
        case .cast:
            if cls.isFloat {
                emit(.moveBetweenFiles, width, .reg(to), .reg(try integerRegister(instruction.arg0, width)))
            } else {
                emit(.moveBetweenFiles, width, .reg(to), .reg(try floatRegister(instruction.arg0, cls == .w ? .s : .d)))
            }
        case .alloc4, .alloc8, .alloc16:
            try selectAlloc(instruction, to, inStartBlock: currentBlock == 0)
        case .blit0:
            let size = Int(function.constants[Int(function.instructions[index + 1].arg0.index)].bits)
            let source = try integerRegister(instruction.arg0, .b64)
            let destination = try integerRegister(instruction.arg1, .b64)
            emit(.copyBytes(Int32(size)), .b64, .reg(destination), .reg(source), .reg(machine.newVirtual(.gpr)))
        case .blit1, .dbgloc, .par, .parsb, .parub, .parsh, .paruh, .parc, .pare:
            break
        case .arg, .argsb, .argub, .argsh, .arguh, .argc, .arge, .argv:
            break
        case .call:
            try selectCall(index)
        case .vastart:
            try selectVaStart(instruction)
        case .vaarg:
            try selectVaArg(instruction, to)
        case .rnew, .rnewb, .rload, .rloadb, .rlen, .rtag, .runtag, .risref, .loadr, .storer, .rclosure, .rcode,
             .rstore0, .rstore1, .rstoreb0, .rstoreb1:
            try selectReference(index, to)
        default:
            throw fail("the code generator does not handle \(op.name)")
        }
    }

    mutating func selectIntegerArithmetic(_ instruction: Instruction, _ to: Reg) throws {
        let width = Selector.width(instruction.cls)
        let op = instruction.op
        switch op {
        case .add, .sub, .and, .or, .xor:
            let alu: ALUOperation = switch op {
            case .add: .add
            case .sub: .sub
            case .and: .and
            case .or: .or
            default: .xor
            }
            let right = try integerOperand(instruction.arg1, width)
            if (op == .add || op == .sub), case .imm(let value) = right, instruction.arg0.isTemp {
                let displacement = op == .add ? value : -value
                if displacement >= Int64(Int32.min) && displacement <= Int64(Int32.max) {
                    emit(.lea, width, .reg(to), .mem(MMem(base: .reg(register(instruction.arg0.index)), displacement: Int32(displacement))))
                    return
                }
            }
            if op == .add, case .reg(let rightRegister) = right, instruction.arg0.isTemp {
                emit(.lea, width, .reg(to), .mem(MMem(base: .reg(register(instruction.arg0.index)), index: rightRegister)))
                return
            }
            if op != .sub, diesHere(instruction.arg1), !diesHere(instruction.arg0) {
                // Commutative: the operand that dies here goes first (see selectFloatArithmetic).
                emit(.mov, width, .reg(to), right)
                emit(.alu(alu), width, .reg(to), try integerOperand(instruction.arg0, width))
                return
            }
            emit(.mov, width, .reg(to), try integerOperand(instruction.arg0, width))
            emit(.alu(alu), width, .reg(to), right)
        case .mul:
            let right = try integerOperand(instruction.arg1, width)
            if case .imm = right {
                emit(.imul3, width, .reg(to), .reg(try integerRegister(instruction.arg0, width)), right)
            } else if diesHere(instruction.arg1), !diesHere(instruction.arg0) {
                emit(.mov, width, .reg(to), right)
                emit(.imul, width, .reg(to), try integerOperand(instruction.arg0, width))
            } else {
                emit(.mov, width, .reg(to), try integerOperand(instruction.arg0, width))
                emit(.imul, width, .reg(to), right)
            }
        case .neg:
            emit(.mov, width, .reg(to), try integerOperand(instruction.arg0, width))
            emit(.unary(.neg), width, .reg(to))
        case .div, .rem, .udiv, .urem:
            let rax = physical(GPR.rax), rdx = physical(GPR.rdx)
            emit(.mov, width, .reg(rax), try integerOperand(instruction.arg0, width))
            let divisor = try integerRegister(instruction.arg1, width)
            let signed = op == .div || op == .rem
            if signed {
                emit(.signExtendRAX, width)
            } else {
                emit(.alu(.xor), .b32, .reg(rdx), .reg(rdx))
            }
            emit(.unary(signed ? .idiv : .div), width, .none, .reg(divisor))
            emit(.mov, width, .reg(to), .reg(op == .div || op == .udiv ? rax : rdx))
        case .sar, .shr, .shl:
            let shift: ShiftOperation = op == .sar ? .sar : op == .shr ? .shr : .shl
            emit(.mov, width, .reg(to), try integerOperand(instruction.arg0, width))
            if let constant = constant(instruction.arg1), constant.kind == .bits {
                emit(.shift(shift), width, .reg(to), .imm(Int64(constant.bits & UInt64(width.bits - 1))))
            } else {
                emit(.mov, .b32, .reg(physical(GPR.rcx)), try integerOperand(instruction.arg1, .b32))
                emit(.shift(shift), width, .reg(to), .reg(physical(GPR.rcx)))
            }
        default:
            throw fail("unexpected integer operation \(op.name)")
        }
    }

    mutating func selectFloatArithmetic(_ instruction: Instruction, _ to: Reg) throws {
        let cls = instruction.cls
        let width = Selector.width(cls)
        if instruction.op == .neg {
            emit(.fmov, width, .reg(to), try floatOperand(instruction.arg0, cls))
            let sign: UInt64 = cls == .s ? 0x8000_0000 : 0x8000_0000_0000_0000
            var mask = (0..<8).map { UInt8(truncatingIfNeeded: sign >> (8 * UInt64($0))) }
            mask.append(contentsOf: repeatElement(0, count: 8))
            emit(.flogic(.xor), width, .reg(to), .mem(MMem(base: .pool(machine.poolEntry(mask)))))
            return
        }
        let scalar: ScalarOperation = switch instruction.op {
        case .add: .add
        case .sub: .sub
        case .mul: .mul
        default: .div
        }
        // The result overwrites its first operand, so for `add` and `mul` the operand that dies
        // here goes first: its register can then become the result's, with no copy.
        var (first, second) = (instruction.arg0, instruction.arg1)
        if scalar == .add || scalar == .mul, diesHere(second), !diesHere(first) { swap(&first, &second) }
        emit(.fmov, width, .reg(to), try floatOperand(first, cls))
        emit(.fop(scalar), width, .reg(to), try floatOperand(second, cls))
    }

    /// Whether a temporary certainly dies at its one use in the block being selected: it is
    /// defined in that block (so before the use: SSA), and read once.
    func diesHere(_ value: Value) -> Bool {
        guard value.isTemp, uses[Int(value.index)] == 1 else { return false }
        let defining = Int(definition[Int(value.index)])
        return currentBlockRange.contains(defining)
    }

    mutating func selectExtension(_ instruction: Instruction, _ to: Reg) throws {
        let width = Selector.width(instruction.cls)
        let op = instruction.op
        if let constant = constant(instruction.arg0), constant.kind == .bits {
            let bits = constant.bits
            let value: Int64 = switch op {
            case .extsb: Int64(Int8(truncatingIfNeeded: bits))
            case .extub: Int64(UInt8(truncatingIfNeeded: bits))
            case .extsh: Int64(Int16(truncatingIfNeeded: bits))
            case .extuh: Int64(UInt16(truncatingIfNeeded: bits))
            case .extsw: Int64(Int32(truncatingIfNeeded: bits))
            default: Int64(UInt32(truncatingIfNeeded: bits))
            }
            emit(.mov, width, .reg(to), .imm(value))
            return
        }
        let source = try integerRegister(instruction.arg0, .b64)
        switch op {
        case .extsb: emit(.movsx(.b8), width, .reg(to), .reg(source))
        case .extub: emit(.movzx(.b8), .b32, .reg(to), .reg(source))
        case .extsh: emit(.movsx(.b16), width, .reg(to), .reg(source))
        case .extuh: emit(.movzx(.b16), .b32, .reg(to), .reg(source))
        case .extsw: emit(.movsx(.b32), .b64, .reg(to), .reg(source))
        default: emit(.movzx(.b32), .b64, .reg(to), .reg(source))
        }
    }

    mutating func selectFloatToUnsigned(_ instruction: Instruction, _ to: Reg) throws {
        let sourceClass: Class = instruction.op == .stoui ? .s : .d
        let precision: Precision = sourceClass == .s ? .single : .double
        let source = try floatRegister(instruction.arg0, sourceClass)
        if instruction.cls == .w {
            // Every value that fits in 32 unsigned bits fits in the signed 64-bit conversion.
            emit(.floatToInt(precision), .b64, .reg(to), .reg(source))
            return
        }
        // Values below 2^63 convert directly; larger ones are reduced by 2^63 first and the
        // top bit is put back. Branch-free: both are computed and cmov picks one.
        let twoTo63: UInt64 = sourceClass == .s ? UInt64(Float(9.223372036854775808e18).bitPattern)
            : (9.223372036854775808e18 as Double).bitPattern
        let size = sourceClass == .s ? 4 : 8
        var bytes = (0..<size).map { UInt8(truncatingIfNeeded: twoTo63 >> (8 * UInt64($0))) }
        bytes.append(contentsOf: repeatElement(0, count: 16 - size))
        let limit = MOperand.mem(MMem(base: .pool(machine.poolEntry(bytes))))
        let width = Selector.width(sourceClass)
        let reduced = machine.newVirtual(.xmm)
        let high = machine.newVirtual(.gpr)
        let bit = machine.newVirtual(.gpr)
        emit(.floatToInt(precision), .b64, .reg(to), .reg(source))
        emit(.fmov, width, .reg(reduced), .reg(source))
        emit(.fop(.sub), width, .reg(reduced), limit)
        emit(.floatToInt(precision), .b64, .reg(high), .reg(reduced))
        emit(.mov, .b64, .reg(bit), .imm(Int64.min))
        emit(.alu(.xor), .b64, .reg(high), .reg(bit))
        emit(.ucomis, width, .reg(source), limit)
        emit(.cmov(.ae), .b64, .reg(to), .reg(high))
    }

    mutating func selectUnsignedToFloat(_ instruction: Instruction, _ to: Reg) throws {
        // Small values (top bit clear) convert directly. Large ones are halved with the low
        // bit kept sticky, converted, and doubled; cmov on the sign picks the right one.
        let width = Selector.width(instruction.cls)
        let source = try integerRegister(instruction.arg0, .b64)
        let halved = machine.newVirtual(.gpr), low = machine.newVirtual(.gpr)
        let big = machine.newVirtual(.xmm)
        let smallBits = machine.newVirtual(.gpr), bigBits = machine.newVirtual(.gpr)
        emit(.mov, .b64, .reg(halved), .reg(source))
        emit(.shift(.shr), .b64, .reg(halved), .imm(1))
        emit(.mov, .b64, .reg(low), .reg(source))
        emit(.alu(.and), .b64, .reg(low), .imm(1))
        emit(.alu(.or), .b64, .reg(halved), .reg(low))
        emit(.intToFloat(.b64), width, .reg(big), .reg(halved))
        emit(.fop(.add), width, .reg(big), .reg(big))
        emit(.intToFloat(.b64), width, .reg(to), .reg(source))
        emit(.moveBetweenFiles, width, .reg(smallBits), .reg(to))
        emit(.moveBetweenFiles, width, .reg(bigBits), .reg(big))
        emit(.test, .b64, .reg(source), .reg(source))
        emit(.cmov(.s), .b64, .reg(smallBits), .reg(bigBits))
        emit(.moveBetweenFiles, width, .reg(to), .reg(smallBits))
    }

    mutating func selectAlloc(_ instruction: Instruction, _ to: Reg, inStartBlock: Bool) throws {
        let alignment = instruction.op == .alloc4 ? 4 : instruction.op == .alloc8 ? 8 : 16
        if inStartBlock, let constant = constant(instruction.arg0), constant.kind == .bits {
            let object = machine.newFrameObject(size: Int(constant.bits), alignment: alignment)
            frameObjectOfTemp[instruction.to.index] = object
            emit(.lea, .b64, .reg(to), .mem(MMem(base: .frame(object))))
            return
        }
        // Dynamic: round the size up to 16 and move rsp down.
        machine.hasDynamicAllocation = true
        let size = machine.newVirtual(.gpr)
        emit(.mov, .b64, .reg(size), try integerOperand(instruction.arg0, .b64))
        emit(.alu(.add), .b64, .reg(size), .imm(15))
        emit(.alu(.and), .b64, .reg(size), .imm(-16))
        emit(.alu(.sub), .b64, .reg(physical(GPR.rsp)), .reg(size))
        emit(.mov, .b64, .reg(to), .reg(physical(GPR.rsp)))
    }
}
