// Selection of Kiln's managed-reference instructions (docs/IL-EXTENSIONS.md):
// allocation, field and byte access, tags, managed globals.
//
// A reference is a tagged word: the object's header address plus one. Field i
// of object o is at o - 1 + 8 + 8i = o + 7 + 8i, byte i of a raw object at
// o + 7 + i, the header at o - 1 (ObjectHeader.swift in KilnManagedHeap).
//
// Allocation is selected as a call, so that the register allocator treats it
// as one: every caller-saved register is clobbered there and every reference
// live across it sits in a spill slot that the stack map lists. Emission
// (Emission+References.swift) expands that call into the inline bump of the
// thread's allocation record with the real call on an out-of-line slow path;
// the fast path touches only r10, r11 and rax.
//
// Requires: temporaries of class `r` are marked as references (`register`
// adds their virtual registers to `MachineFunction.references`).

import KilnCode
import KilnIL
import KilnX64

/// One `rnew`/`rnewb`/`rclosure`, as emission needs it.
struct AllocationSite {
    /// A raw object (bytes) rather than tagged fields.
    var isRaw: Bool
    /// The field or byte count when it is a constant; otherwise it is in rdi.
    var count: Int64?
    /// A closure: the header has the code bit, field 0 the function's address.
    var isClosure = false
}

/// The runtime symbols generated code reaches for the managed heap (bound by the loader).
enum ManagedSymbols {
    /// The allocation slow path: header in rdi, the new reference in rax (C ABI).
    static let allocate = "kiln.heap.allocate"
    /// The checked access of `kiln run --checked`: object in rdi, index in rsi, the kind of
    /// access in edx (0 field, 1 byte, 2 header), the address in rax (C ABI); a wrong access
    /// ends the program with a message.
    static let check = "kiln.heap.check"
    /// Bound to the offset of the thread's allocation record pointer from the thread pointer
    /// (fs:0), not to an address: `mov r11, [rip + slot]; mov r11, fs:[r11]` is the record.
    static let recordOffset = "kiln.heap.record.offset"
}

extension Selector {
    /// Selects an instruction of the managed-reference family.
    mutating func selectReference(_ index: Int, _ to: Reg) throws {
        let instruction = function.instructions[index]
        switch instruction.op {
        case .rnew, .rnewb:
            try selectAllocation(instruction, to)
        case .rclosure:
            try selectClosure(instruction, to)
        case .rcode:
            let closure = try integerRegister(instruction.arg0, .b64)
            emit(.mov, .b64, .reg(to), .mem(MMem(base: .reg(closure), displacement: 7)))
        case .rload:
            emit(.mov, .b64, .reg(to), .mem(try elementAddress(instruction.arg0, instruction.arg1, scale: .x8)))
        case .rloadb:
            emit(.movzx(.b8), .b32, .reg(to), .mem(try elementAddress(instruction.arg0, instruction.arg1, scale: .x1)))
        case .rlen where checksReferences:
            let header = try checkedAddress(instruction.arg0, nil, access: 2)
            emit(.mov, .b64, .reg(to), .mem(MMem(base: .reg(header))))
            emit(.shift(.shl), .b64, .reg(to), .imm(16))
            emit(.shift(.shr), .b64, .reg(to), .imm(16))
        case .rstore0, .rstoreb0:
            // The index is the operand of the paired `rstore1`/`rstoreb1` that follows.
            let indexValue = function.instructions[index + 1].arg0
            let isByte = instruction.op == .rstoreb0
            let value = try integerOperand(instruction.arg0, isByte ? .b32 : .b64)
            let address = try elementAddress(instruction.arg1, indexValue, scale: isByte ? .x1 : .x8)
            emit(.mov, isByte ? .b8 : .b64, .mem(address), value)
        case .rstore1, .rstoreb1:
            break
        case .rlen:
            // The count is the header's low 48 bits (the kind bits are above them).
            let object = try integerRegister(instruction.arg0, .b64)
            emit(.mov, .b64, .reg(to), .mem(MMem(base: .reg(object), displacement: -1)))
            emit(.shift(.shl), .b64, .reg(to), .imm(16))
            emit(.shift(.shr), .b64, .reg(to), .imm(16))
        case .rtag:
            if let constant = constant(instruction.arg0), constant.kind == .bits {
                emit(.mov, .b64, .reg(to), .imm(Int64(bitPattern: constant.bits << 1)))
            } else {
                let value = try integerRegister(instruction.arg0, .b64)
                emit(.lea, .b64, .reg(to), .mem(MMem(base: .reg(value), index: value)))
            }
        case .runtag:
            emit(.mov, .b64, .reg(to), try integerOperand(instruction.arg0, .b64))
            emit(.shift(.sar), .b64, .reg(to), .imm(1))
        case .risref:
            emit(.mov, .b64, .reg(to), try integerOperand(instruction.arg0, .b64))
            emit(.alu(.and), .b64, .reg(to), .imm(1))
        case .loadr:
            emit(.mov, .b64, .reg(to), .mem(try address(instruction.arg0)))
        case .storer:
            let value = try integerOperand(instruction.arg0, .b64)
            emit(.mov, .b64, .mem(try address(instruction.arg1)), value)
        default:
            throw fail("unexpected managed-reference instruction \(instruction.op.name)")
        }
    }

    /// The address of field (scale 8) or byte (scale 1) `index` of `object`; checked by the
    /// runtime when `checksReferences` is on.
    mutating func elementAddress(_ object: Value, _ index: Value, scale: Scale) throws -> MMem {
        if checksReferences {
            return MMem(base: .reg(try checkedAddress(object, index, access: scale == .x8 ? 0 : 1)))
        }
        let base = try integerRegister(object, .b64)
        let size: Int64 = scale == .x8 ? 8 : 1
        if let constant = constant(index), constant.kind == .bits {
            let displacement = Int64(bitPattern: constant.bits).multipliedReportingOverflow(by: size)
            if !displacement.overflow, displacement.partialValue >= -(1 << 30), displacement.partialValue <= 1 << 30 {
                return MMem(base: .reg(base), displacement: Int32(displacement.partialValue + 7))
            }
        }
        return MMem(base: .reg(base), index: try integerRegister(index, .b64), scale: scale, displacement: 7)
    }

    /// A call of the runtime's checked access: the address of the field, byte or header.
    mutating func checkedAddress(_ object: Value, _ index: Value?, access: Int64) throws -> Reg {
        let objectRegister = try integerRegister(object, .b64)
        let indexOperand = try index.map { try integerOperand($0, .b64) } ?? .imm(0)
        let rdi = physical(GPR.rdi), rsi = physical(GPR.rsi), rdx = physical(GPR.rdx)
        emit(.mov, .b64, .reg(rdi), .reg(objectRegister))
        emit(.mov, .b64, .reg(rsi), indexOperand)
        emit(.mov, .b32, .reg(rdx), .imm(access))
        machine.makesCalls = true
        machine.calls.append(CallInfo(uses: [rdi, rsi, rdx], results: [physical(GPR.rax)]))
        emit(.call(Int32(machine.calls.count - 1)), .b64,
             .mem(MMem(base: .target(machine.target(.addressSlot(ManagedSymbols.check))))))
        let address = machine.newVirtual(.gpr)
        emit(.mov, .b64, .reg(address), .reg(physical(GPR.rax)))
        return address
    }

    /// `rclosure $f, n`: an object of n + 1 fields with the code bit, field 0 the address of
    /// $f (its callback stub, which never moves: see IL-EXTENSIONS.md).
    mutating func selectClosure(_ instruction: Instruction, _ to: Reg) throws {
        let code = try integerRegister(instruction.arg0, .b64)
        var site = AllocationSite(isRaw: false, count: nil, isClosure: true)
        var uses: [Reg] = []
        if let constant = constant(instruction.arg1), constant.kind == .bits {
            let (count, overflow) = Int64(bitPattern: constant.bits).addingReportingOverflow(1)
            site.count = overflow ? -1 : count
        } else {
            emit(.mov, .b64, .reg(physical(GPR.rdi)), .reg(try integerRegister(instruction.arg1, .b64)))
            emit(.alu(.add), .b64, .reg(physical(GPR.rdi)), .imm(1))
            uses.append(physical(GPR.rdi))
        }
        machine.makesCalls = true
        machine.calls.append(CallInfo(uses: uses, results: [physical(GPR.rax)], allocation: site))
        emit(.call(Int32(machine.calls.count - 1)), .b64,
             .mem(MMem(base: .target(machine.target(.addressSlot(ManagedSymbols.allocate))))))
        emit(.mov, .b64, .reg(to), .reg(physical(GPR.rax)))
        emit(.mov, .b64, .mem(MMem(base: .reg(to), displacement: 7)), .reg(code))
    }

    /// `rnew`/`rnewb`: a call for the allocator (see the file comment), result in rax.
    mutating func selectAllocation(_ instruction: Instruction, _ to: Reg) throws {
        var site = AllocationSite(isRaw: instruction.op == .rnewb, count: nil)
        var uses: [Reg] = []
        if let constant = constant(instruction.arg0), constant.kind == .bits {
            site.count = Int64(bitPattern: constant.bits)
        } else {
            let count = try integerRegister(instruction.arg0, .b64)
            emit(.mov, .b64, .reg(physical(GPR.rdi)), .reg(count))
            uses.append(physical(GPR.rdi))
        }
        machine.makesCalls = true
        machine.calls.append(CallInfo(uses: uses, results: [physical(GPR.rax)], allocation: site))
        emit(.call(Int32(machine.calls.count - 1)), .b64,
             .mem(MMem(base: .target(machine.target(.addressSlot(ManagedSymbols.allocate))))))
        emit(.mov, .b64, .reg(to), .reg(physical(GPR.rax)))
    }
}
