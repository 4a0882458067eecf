// The machine IR: x86-64 instructions over virtual registers.
//
// Instruction selection turns each IL function into a `MachineFunction`; the
// register allocator gives every virtual register a place (a physical register
// or a spill slot); emission encodes the result with KilnX64. The operations
// are x86's own (two-address ALU forms, flags, fixed registers for division,
// shifts and calls), so what the allocator sees is what the processor runs.
//
// Registers share one number space (`Reg`): 0-15 are the general-purpose
// registers by hardware number, 16-31 the SSE registers, 32 and up virtual
// registers, each in one bank. Physical registers appear where the ABI or an
// instruction demands one (arguments, results, rax:rdx for division, cl for
// shifts); everything else is virtual.

import KilnCode
import KilnIL
import KilnX64

/// A register: physical (0-31) or virtual (32 and up).
typealias Reg = Int32

/// The two register files.
enum Bank: UInt8 { case gpr, xmm }

let firstVirtual: Reg = 32

@inline(__always) func physical(_ register: GPR) -> Reg { Reg(register.rawValue) }
@inline(__always) func physical(_ register: XMM) -> Reg { Reg(register.rawValue) + 16 }
@inline(__always) func isVirtual(_ reg: Reg) -> Bool { reg >= firstVirtual }
@inline(__always) func bankOfPhysical(_ reg: Reg) -> Bank { reg < 16 ? .gpr : .xmm }

/// Where a memory operand's address starts.
enum MBase: Equatable {
    /// A register (virtual or physical).
    case reg(Reg)
    /// rip-relative to a relocation target (module data, slots): an index of `MachineFunction.targets`.
    case target(Int32)
    /// rip-relative to an entry of the function's constant pool.
    case pool(Int32)
    /// A frame object (a stack slot made by `alloc` or by the ABI), rbp-relative.
    case frame(Int32)
    /// The incoming stack arguments: rbp + 16 + displacement.
    case incoming
    /// The outgoing argument area at the bottom of the frame: rsp + displacement.
    case outgoing
}

/// A memory operand: base + index * scale + displacement.
struct MMem: Equatable {
    var base: MBase
    var index: Reg = -1
    var scale: Scale = .x1
    var displacement: Int32 = 0
}

/// An operand of a machine instruction.
enum MOperand: Equatable {
    case none
    case reg(Reg)
    case imm(Int64)
    case mem(MMem)
    /// A relocation target (an index of `MachineFunction.targets`): a direct call target
    /// (rel32), or as a move source the 32-bit offset of thread-local data (off32).
    case target(Int32, Int64)

    var register: Reg? { if case .reg(let r) = self { r } else { nil } }
}

/// A machine operation. Integer operations carry their width in `MInstruction.width`;
/// floating ones use `.b32` for single and `.b64` for double precision.
enum MOp: Equatable {
    case mov
    case lea
    case alu(ALUOperation)
    case test
    case imul
    /// a = b * c (c an immediate).
    case imul3
    /// neg/not of a; mul/div/idiv of b with rax (and rdx) implied.
    case unary(UnaryOperation)
    case shift(ShiftOperation)
    /// a = sign/zero-extend b, which has the given width.
    case movsx(Width)
    case movzx(Width)
    /// cdq (b32) or cqo (b64): rdx = sign of rax.
    case signExtendRAX
    case setcc(Condition)
    case cmov(Condition)
    case jcc(Condition, Int32)
    case jmp(Int32)
    /// Call through operand a; `calls[index]` lists the registers it reads.
    case call(Int32)
    /// Return through the epilogue.
    case ret
    case ud2
    // Floating point.
    case fmov
    case fop(ScalarOperation)
    case flogic(PackedLogicOperation)
    case ucomis
    /// a (xmm) = convert b (integer of `sourceWidth`).
    case intToFloat(Width)
    /// a (integer of the instruction's width) = truncate b (float of the given precision).
    case floatToInt(Precision)
    /// Single to double (`.b64`) or double to single (`.b32`).
    case floatToFloat
    /// movd/movq between register files: a = b, either direction.
    case moveBetweenFiles
    /// The parallel copy `moves[index]` (phi resolution).
    case parallelMove(Int32)
    /// Copy `count` bytes from the address in b to the address in a, using c as scratch.
    case copyBytes(Int32)
}

/// One machine instruction.
struct MInstruction {
    var op: MOp
    var width: Width
    var a: MOperand
    var b: MOperand
    var c: MOperand = .none
    /// The IL position it came from (for line tables).
    var location: SourceLocation

    init(_ op: MOp, _ width: Width, _ a: MOperand = .none, _ b: MOperand = .none, _ c: MOperand = .none,
         at location: SourceLocation) {
        self.op = op
        self.width = width
        self.a = a
        self.b = b
        self.c = c
        self.location = location
    }
}

/// What a call reads and how it returns.
struct CallInfo {
    /// Physical registers holding arguments (and rax for `al` or env).
    var uses: [Reg]
    /// Physical registers holding results.
    var results: [Reg]
    /// Set when the call is an allocation (`rnew`/`rnewb`): emission expands it into the
    /// inline fast path with the real call out of line (Selection+References.swift).
    var allocation: AllocationSite? = nil
}

/// A stack object: an `alloc`, an aggregate copy, the register save area of a variadic function.
struct FrameObject {
    var size: Int
    var alignment: Int
    /// Offset below rbp, assigned by the frame layout.
    var offset: Int32 = 0
}

/// One function in machine form.
struct MachineFunction {
    var name: String
    var isExported: Bool
    /// Instructions of each block, in layout order: each IL block is followed by the blocks
    /// that split its outgoing critical edges (block 0 is the IL's start block).
    var blocks: [[MInstruction]]
    var bankOfVirtual: [Bank] = []
    /// Virtual registers holding managed references (class `r`): the allocator keeps them out
    /// of callee-saved registers, so across every call they live in spill slots that the
    /// stack maps list.
    var references: Set<Reg> = []
    var calls: [CallInfo] = []
    var moves: [[(destination: Reg, source: MOperand)]] = []
    var frameObjects: [FrameObject] = []
    /// The relocation targets the instructions name, each once. Instructions hold indices, so
    /// a machine instruction is plain data that copies without reference counting.
    var targets: [RelocationTarget] = []
    var targetIndex: [RelocationTarget: Int32] = [:]
    /// Constant pool entries (8 or 16 bytes each, 16-byte aligned) read rip-relative.
    var pool: [[UInt8]] = []
    /// Where each pool entry is (looked up, never iterated: the pool's order is first use).
    var poolIndex: [[UInt8]: Int32] = [:]
    /// Whether the function calls anything (non-leaf functions keep rsp 16-aligned at calls).
    var makesCalls = false
    /// Whether the function changes rsp dynamically (`alloc` of non-constant size).
    var hasDynamicAllocation = false
    /// Bytes of stack arguments the function receives (variadic functions read past them).
    var incomingStackBytes = 0
    /// The most bytes of stack arguments one of its calls passes (below the frame).
    var outgoingStackBytes = 0
    /// Whether the function takes a variable number of arguments.
    var isVariadic = false
    /// Frame object holding the register save area of a variadic function, if any.
    var registerSaveArea: Int32?
    /// Source location of each IL block's label, for line tables.
    var location: SourceLocation

    mutating func newVirtual(_ bank: Bank) -> Reg {
        bankOfVirtual.append(bank)
        return firstVirtual + Reg(bankOfVirtual.count - 1)
    }

    func bank(_ reg: Reg) -> Bank {
        isVirtual(reg) ? bankOfVirtual[Int(reg - firstVirtual)] : bankOfPhysical(reg)
    }

    mutating func newFrameObject(size: Int, alignment: Int) -> Int32 {
        frameObjects.append(FrameObject(size: max(size, 1), alignment: max(alignment, 1)))
        return Int32(frameObjects.count - 1)
    }

    /// The index of a relocation target in `targets`, adding it if new.
    mutating func target(_ target: RelocationTarget) -> Int32 {
        if let index = targetIndex[target] { return index }
        targets.append(target)
        targetIndex[target] = Int32(targets.count - 1)
        return Int32(targets.count - 1)
    }

    /// Adds a constant to the pool (deduplicated) and returns its index.
    mutating func poolEntry(_ bytes: [UInt8]) -> Int32 {
        if let index = poolIndex[bytes] { return index }
        pool.append(bytes)
        poolIndex[bytes] = Int32(pool.count - 1)
        return Int32(pool.count - 1)
    }
}

/// Registers the SysV ABI lets a callee clobber.
let callerSavedGPRs: [GPR] = [.rax, .rcx, .rdx, .rsi, .rdi, .r8, .r9, .r10, .r11]
/// Registers a callee must preserve (rbp is the frame pointer and never allocated).
let calleeSavedGPRs: [GPR] = [.rbx, .r12, .r13, .r14, .r15]
/// Integer argument registers in order.
let integerArgumentRegisters: [GPR] = [.rdi, .rsi, .rdx, .rcx, .r8, .r9]
/// Scratch registers the allocator never hands out: emission uses them for spilled
/// operands and to break cycles in parallel moves.
let scratchGPR1 = GPR.r11, scratchGPR2 = GPR.r10
let scratchXMM1 = XMM.xmm15, scratchXMM2 = XMM.xmm14
