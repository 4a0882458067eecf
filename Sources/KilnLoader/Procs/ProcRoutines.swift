// The machine code between procs, their segments and the rest of the runtime.
//
// Made with Kiln's encoder when a loader starts its scheduler, in the code
// heap's fixed part (it never moves). Five routines:
//
// - `swap(save: rdi, load: rsi)`: pushes the callee-saved registers, stores
//   rsp at [rdi], loads rsi into rsp, pops and returns: the one way control
//   passes between the scheduler and a proc.
// - `start`: where a new proc's first `swap` returns; calls the proc's
//   function (r13) with r12, r14, r15 as its arguments, then reports the
//   result and parks for good.
// - `grow`: the slow path of a prologue check. It keeps the argument
//   registers, asks the scheduler (on the scheduler's stack) for a segment
//   that fits, copies the incoming stack arguments there, calls the rest of
//   the function on it, and when the function returns, gives the segment
//   back and returns to the function's caller on the old segment. On a
//   thread that is not on a proc segment it returns at once.
// - a service trampoline per runtime service: runs the service's Swift entry
//   on the scheduler's stack (a segment is too small for Swift); the entry
//   says whether to return or to park the proc and try again when it runs.
// - `nativeCall`: C functions are bound to a thunk `mov r11, target; jmp
//   nativeCall`, which runs the call on the scheduler's stack when the caller
//   is on a segment (C code does not check stack limits) and jumps straight
//   to the target otherwise.

import CKilnShim
import KilnX64

struct ProcRoutines {
    let swap: UInt
    let start: UInt
    let grow: UInt
    let nativeCall: UInt
    /// Where `start`'s call of the proc's function returns: the bottom of every proc's walk.
    let startReturn: UInt
    /// Where `grow`'s call of the rest of a function returns: a segment boundary.
    let growReturn: UInt
    /// Bytes of stack arguments a C call from a proc gets copied to the scheduler's stack.
    static let copiedArgumentBytes = 128

    typealias GrowEntry = @convention(c) (UInt, UInt) -> UInt
    typealias ShrinkEntry = @convention(c) () -> UInt
    typealias ExitEntry = @convention(c) (UInt) -> Void
    typealias FaultEntry = @convention(c) (Int32, UInt, UInt, UInt) -> Void
    /// Where a fault in a proc's code resumes, on the C stack (CKilnShim's procs.c): the
    /// fault entry ends the proc, which then parks for good.
    let fault: UInt

    private static func field(_ path: PartialKeyPath<kiln_proc_globals>) -> Int32 {
        Int32(MemoryLayout<kiln_proc_globals>.offset(of: path)!)
    }
    static let schedulerRsp = field(\.scheduler_rsp)
    static let nativeRsp = field(\.native_rsp)
    static let current = field(\.current)
    static let savedRsp = field(\.saved_rsp)
    static let preempt = field(\.preempt)
    static let gprs = field(\.gprs)
    static let xmms = field(\.xmms)

    static var globals: Int64 { Int64(Int(bitPattern: procGlobals)) }

    init(heap: CodeHeap, stacks: ProcStacks, grow growEntry: GrowEntry, shrink shrinkEntry: ShrinkEntry, exit exitEntry: ExitEntry, fault faultEntry: FaultEntry) throws(LoadError) {
        var buffer = CodeBuffer()
        let globals = Self.globals

        // swap
        let swapOffset = 0
        for register: GPR in [.rbp, .rbx, .r12, .r13, .r14, .r15] { buffer.push(register) }
        buffer.mov(.b64, Memory(base: .rdi), .rsp)
        buffer.mov(.b64, .rsp, .rsi)
        for register: GPR in [.r15, .r14, .r13, .r12, .rbx, .rbp] { buffer.pop(register) }
        buffer.ret()
        Self.pad(&buffer)

        // start
        let startOffset = buffer.count
        buffer.mov(.b64, .rdi, .r12)
        buffer.mov(.b64, .rsi, .r14)
        buffer.mov(.b64, .rdx, .r15)
        buffer.alu(.xor, .b32, .rax, .rax)
        buffer.call(.r13)
        let startReturnOffset = buffer.count
        buffer.mov(.b64, .rdi, .rax)
        buffer.mov(.b64, .r11, imm: globals)
        buffer.mov(.b64, .rsp, Memory(base: .r11, displacement: Self.nativeRsp))
        buffer.mov(.b64, .rax, imm: Self.address(exitEntry))
        buffer.call(.rax)
        // The exit entry has marked the proc finished: park for good (on the C stack).
        let parkForGood = buffer.makeLabel()
        try! buffer.bind(parkForGood)
        buffer.mov(.b64, .r11, imm: globals)
        buffer.lea(.b64, .rdi, Memory(base: .r11, displacement: Self.savedRsp))
        buffer.mov(.b64, .rsi, Memory(base: .r11, displacement: Self.schedulerRsp))
        let callSwapFromStart = buffer.count
        buffer.emit([0xE8, 0, 0, 0, 0])  // call swap, patched below
        buffer.ud2()
        Self.pad(&buffer)

        // fault: rdi, rsi, rdx, rcx as the fault entry takes them; rsp 16-byte aligned.
        let faultOffset = buffer.count
        buffer.mov(.b64, .rax, imm: Self.address(faultEntry))
        buffer.call(.rax)
        buffer.jmp(to: parkForGood)
        Self.pad(&buffer)

        // grow: r10 = the lowest address the function needs, r11 = its stack argument bytes;
        // [rsp] = where the function goes on (after its check), [rsp + 8] = its return address.
        let growOffset = buffer.count
        let spurious = buffer.makeLabel(), slow = buffer.makeLabel(), slowPopping = buffer.makeLabel()
        let growReturnLabel = buffer.makeLabel()
        buffer.push(.r11)
        buffer.mov(.b64, .r11, imm: globals)
        buffer.mov(.b64, Memory(base: .r11, displacement: Self.gprs), .rax)
        Self.unlessOnSegment(&buffer, stacks, scratch: .rax, goTo: spurious)
        // A preemption request goes to Swift, which parks the proc.
        buffer.alu(.cmp, .b64, Memory(base: .r11, displacement: Self.preempt), imm: 0)
        buffer.jcc(.ne, to: slow)
        // The frame fits after all (the limit was raised for a request that is gone).
        buffer.mov(.b64, .rax, imm: Int64(Int(bitPattern: stackLimitWord)))
        buffer.alu(.cmp, .b64, .r10, Memory(base: .rax))
        buffer.jcc(.ae, to: spurious)
        // The fast path, without Swift: no stack arguments, and the proc's spare segment is
        // larger than the one it runs on and holds the frame. (The call and return at a
        // segment boundary in a loop, the hot split, take this path every time.)
        let block = Int32(8)  // offsets of Proc's control words: segment, spare
        buffer.alu(.cmp, .b64, Memory(base: .rsp), imm: 0)
        buffer.jcc(.ne, to: slow)
        buffer.mov(.b64, .rax, Memory(base: .r11, displacement: Self.current))
        buffer.mov(.b64, .r11, Memory(base: .rax, displacement: 2 * block))
        buffer.test(.b64, .r11, .r11)
        buffer.jcc(.e, to: slow)
        buffer.push(.rcx)
        buffer.push(.rdx)
        buffer.push(.r10)
        // [rsp] r10 (the lowest address the function needs), [rsp + 8] rdx, [rsp + 16] rcx,
        // [rsp + 24] argument bytes, [rsp + 32] where the function goes on, [rsp + 40] its
        // return address: the function entered with rsp = rsp + 40.
        buffer.mov(.b64, .rcx, Memory(base: .rax, displacement: block))
        buffer.mov(.b64, .rdx, Memory(base: .rcx, displacement: Int32(Segment.orderOffset)))
        buffer.alu(.cmp, .b64, Memory(base: .r11, displacement: Int32(Segment.orderOffset)), .rdx)
        buffer.jcc(.be, to: slowPopping)
        buffer.lea(.b64, .rdx, Memory(base: .rsp, displacement: 40))
        buffer.alu(.sub, .b64, .rdx, .r10)
        buffer.alu(.add, .b64, .rdx, imm: 8 + 64)
        buffer.mov(.b64, .rcx, Memory(base: .r11, displacement: Int32(Segment.orderOffset)))
        buffer.mov(.b32, .r10, imm: 1)
        buffer.shiftByCL(.shl, .b64, .r10)
        buffer.alu(.sub, .b64, .r10, imm: Int32(ProcStacks.headerSize + ProcStacks.reserve))
        buffer.alu(.cmp, .b64, .rdx, .r10)
        buffer.jcc(.a, to: slowPopping)
        // Link the spare in front: its header, the proc's words, the limit.
        buffer.mov(.b64, .rcx, Memory(base: .rax, displacement: block))
        buffer.mov(.b64, Memory(base: .r11, displacement: Int32(Segment.previousOffset)), .rcx)
        buffer.lea(.b64, .rdx, Memory(base: .rsp, displacement: 40))
        buffer.mov(.b64, Memory(base: .r11, displacement: Int32(Segment.returnRspOffset)), .rdx)
        buffer.mov(.b64, Memory(base: .rax, displacement: block), .r11)
        buffer.mov(.b64, Memory(base: .rax, displacement: 2 * block), imm: 0)
        buffer.lea(.b64, .rcx, Memory(base: .r11, displacement: Int32(ProcStacks.headerSize + ProcStacks.reserve)))
        buffer.mov(.b64, .rdx, imm: Int64(Int(bitPattern: stackLimitWord)))
        buffer.mov(.b64, Memory(base: .rdx), .rcx)
        // The new stack pointer: the spare's top.
        buffer.mov(.b64, .rcx, Memory(base: .r11, displacement: Int32(Segment.orderOffset)))
        buffer.mov(.b32, .rdx, imm: 1)
        buffer.shiftByCL(.shl, .b64, .rdx)
        buffer.alu(.add, .b64, .r11, .rdx)
        buffer.mov(.b64, .r10, Memory(base: .rsp, displacement: 32))
        buffer.alu(.add, .b64, .rsp, imm: 8)
        buffer.pop(.rdx)
        buffer.pop(.rcx)
        buffer.mov(.b64, .rax, imm: globals)
        buffer.mov(.b64, Memory(base: .rax, displacement: Self.gprs + 56), .r10)
        buffer.mov(.b64, .rax, Memory(base: .rax, displacement: Self.gprs))
        buffer.mov(.b64, .rsp, .r11)
        buffer.mov(.b64, .r10, imm: globals)
        buffer.call(Memory(base: .r10, displacement: Self.gprs + 56))
        buffer.jmp(to: growReturnLabel)
        try! buffer.bind(slowPopping)
        buffer.pop(.r10)
        buffer.pop(.rdx)
        buffer.pop(.rcx)
        try! buffer.bind(slow)
        buffer.mov(.b64, .r11, imm: globals)
        let argumentRegisters: [GPR] = [.rdi, .rsi, .rdx, .rcx, .r8, .r9]
        for (index, register) in argumentRegisters.enumerated() {
            buffer.mov(.b64, Memory(base: .r11, displacement: Self.gprs + Int32(8 * (index + 1))), register)
        }
        for index in 0..<8 {
            buffer.movaps(Memory(base: .r11, displacement: Self.xmms + Int32(16 * index)), XMM(rawValue: UInt8(index))!)
        }
        buffer.mov(.b64, .rdi, .rsp)
        buffer.mov(.b64, .rsi, .r10)
        buffer.mov(.b64, Memory(base: .r11, displacement: Self.savedRsp), .rsp)
        buffer.mov(.b64, .rsp, Memory(base: .r11, displacement: Self.nativeRsp))
        buffer.mov(.b64, .rax, imm: Self.address(growEntry))
        buffer.call(.rax)
        // rax 0: the proc is over its limit and was ended; never to run again.
        buffer.test(.b64, .rax, .rax)
        buffer.jcc(.e, to: parkForGood)
        // rax 1: preempted. Back on the segment, keep the argument registers there (the
        // save area in `kiln_procs` is every proc's), park, and when the proc runs again,
        // restore them and enter `grow` afresh. Below the limit this takes 216 bytes of
        // the reserve.
        let notPreempted = buffer.makeLabel()
        buffer.alu(.cmp, .b64, .rax, imm: 1)
        buffer.jcc(.ne, to: notPreempted)
        buffer.mov(.b64, .r11, imm: globals)
        buffer.mov(.b64, .rsp, Memory(base: .r11, displacement: Self.savedRsp))
        buffer.alu(.sub, .b64, .rsp, imm: 144)
        for index in 0..<8 {
            buffer.movsd(.xmm0, Memory(base: .r11, displacement: Self.xmms + Int32(16 * index)))
            buffer.movsd(Memory(base: .rsp, displacement: Int32(8 * index)), .xmm0)
        }
        for index in 0..<8 {  // rax, the six argument registers, and r10 (left in gprs[7])
            buffer.mov(.b64, .rax, Memory(base: .r11, displacement: Self.gprs + Int32(8 * index)))
            buffer.mov(.b64, Memory(base: .rsp, displacement: Int32(64 + 8 * index)), .rax)
        }
        buffer.mov(.b64, .rdi, Memory(base: .r11, displacement: Self.current))
        buffer.mov(.b64, .rsi, Memory(base: .r11, displacement: Self.schedulerRsp))
        let callSwapFromGrow = buffer.count
        buffer.emit([0xE8, 0, 0, 0, 0])  // call swap, patched below
        for index in 0..<8 {
            buffer.movsd(XMM(rawValue: UInt8(index))!, Memory(base: .rsp, displacement: Int32(8 * index)))
        }
        for (index, register) in argumentRegisters.enumerated() {
            buffer.mov(.b64, register, Memory(base: .rsp, displacement: Int32(64 + 8 * (index + 1))))
        }
        buffer.mov(.b64, .r10, Memory(base: .rsp, displacement: 120))
        buffer.mov(.b64, .rax, Memory(base: .rsp, displacement: 64))
        buffer.alu(.add, .b64, .rsp, imm: 144)
        buffer.pop(.r11)
        let jumpToGrow = buffer.count
        buffer.emit([0xE9, 0, 0, 0, 0])  // jmp grow, patched below
        try! buffer.bind(notPreempted)
        // rax: the new segment's stack pointer, the arguments copied above it; the entry
        // left where the function goes on in gprs[7].
        buffer.mov(.b64, .rsp, .rax)
        buffer.mov(.b64, .r11, imm: globals)
        for index in 0..<8 {
            buffer.movaps(XMM(rawValue: UInt8(index))!, Memory(base: .r11, displacement: Self.xmms + Int32(16 * index)))
        }
        for (index, register) in argumentRegisters.enumerated() {
            buffer.mov(.b64, register, Memory(base: .r11, displacement: Self.gprs + Int32(8 * (index + 1))))
        }
        buffer.mov(.b64, .r10, Memory(base: .r11, displacement: Self.gprs + 56))
        buffer.mov(.b64, .rax, Memory(base: .r11, displacement: Self.gprs))
        buffer.call(.r10)
        let growReturnOffset = buffer.count
        try! buffer.bind(growReturnLabel)
        // The function returned on the new segment. The fast path, when the proc has no
        // spare: the segment becomes it, and the stack pointer goes back to the caller's
        // (rax, rdx, xmm0 and xmm1 hold the results: untouched).
        let shrinkSlow = buffer.makeLabel()
        buffer.mov(.b64, .r11, imm: globals)
        buffer.mov(.b64, .r10, Memory(base: .r11, displacement: Self.current))
        buffer.alu(.cmp, .b64, Memory(base: .r10, displacement: 2 * block), imm: 0)
        buffer.jcc(.ne, to: shrinkSlow)
        buffer.mov(.b64, .r11, Memory(base: .r10, displacement: block))
        buffer.mov(.b64, Memory(base: .r10, displacement: 2 * block), .r11)
        buffer.mov(.b64, .r11, Memory(base: .r11, displacement: Int32(Segment.previousOffset)))
        buffer.mov(.b64, Memory(base: .r10, displacement: block), .r11)
        buffer.lea(.b64, .r11, Memory(base: .r11, displacement: Int32(ProcStacks.headerSize + ProcStacks.reserve)))
        buffer.mov(.b64, .r10, imm: Int64(Int(bitPattern: stackLimitWord)))
        buffer.mov(.b64, Memory(base: .r10), .r11)
        buffer.mov(.b64, .r10, imm: globals)
        buffer.mov(.b64, .r10, Memory(base: .r10, displacement: Self.current))
        buffer.mov(.b64, .r10, Memory(base: .r10, displacement: 2 * block))
        buffer.mov(.b64, .rsp, Memory(base: .r10, displacement: Int32(Segment.returnRspOffset)))
        buffer.ret()
        try! buffer.bind(shrinkSlow)
        // The slow path: keep the results, give the segment back in Swift.
        buffer.mov(.b64, .r11, imm: globals)
        buffer.mov(.b64, Memory(base: .r11, displacement: Self.gprs), .rax)
        buffer.mov(.b64, Memory(base: .r11, displacement: Self.gprs + 8), .rdx)
        buffer.movaps(Memory(base: .r11, displacement: Self.xmms), .xmm0)
        buffer.movaps(Memory(base: .r11, displacement: Self.xmms + 16), .xmm1)
        buffer.mov(.b64, .rsp, Memory(base: .r11, displacement: Self.nativeRsp))
        buffer.mov(.b64, .rax, imm: Self.address(shrinkEntry))
        buffer.call(.rax)
        buffer.mov(.b64, .rsp, .rax)
        buffer.mov(.b64, .r11, imm: globals)
        buffer.mov(.b64, .rax, Memory(base: .r11, displacement: Self.gprs))
        buffer.mov(.b64, .rdx, Memory(base: .r11, displacement: Self.gprs + 8))
        buffer.movaps(.xmm0, Memory(base: .r11, displacement: Self.xmms))
        buffer.movaps(.xmm1, Memory(base: .r11, displacement: Self.xmms + 16))
        buffer.ret()
        try! buffer.bind(spurious)
        buffer.mov(.b64, .rax, Memory(base: .r11, displacement: Self.gprs))
        buffer.pop(.r11)
        buffer.ret()
        Self.pad(&buffer)

        // nativeCall: r11 = the C function.
        let nativeOffset = buffer.count
        let direct = buffer.makeLabel()
        Self.unlessOnSegment(&buffer, stacks, scratch: .r10, goTo: direct)
        buffer.push(.rbp)
        buffer.mov(.b64, .rbp, .rsp)
        buffer.mov(.b64, .r10, imm: globals)
        buffer.mov(.b64, .r10, Memory(base: .r10, displacement: Self.nativeRsp))
        buffer.push(.rax)
        let words = Self.copiedArgumentBytes / 8
        for index in 0..<words {
            buffer.mov(.b64, .rax, Memory(base: .rbp, displacement: Int32(16 + 8 * index)))
            buffer.mov(.b64, Memory(base: .r10, displacement: Int32(-Self.copiedArgumentBytes + 8 * index)), .rax)
        }
        buffer.pop(.rax)
        buffer.lea(.b64, .rsp, Memory(base: .r10, displacement: Int32(-Self.copiedArgumentBytes)))
        buffer.call(.r11)
        buffer.mov(.b64, .rsp, .rbp)
        buffer.pop(.rbp)
        buffer.ret()
        try! buffer.bind(direct)
        buffer.jmp(.r11)
        Self.pad(&buffer)

        var bytes = buffer.bytes
        let base = try heap.allocateFixed(bytes.count)
        for (site, target) in [(callSwapFromStart, swapOffset), (callSwapFromGrow, swapOffset), (jumpToGrow, growOffset)] {
            let displacement = Int32(target - (site + 5))
            withUnsafeBytes(of: displacement.littleEndian) { raw in
                for index in 0..<4 { bytes[site + 1 + index] = raw[index] }
            }
        }
        bytes.withUnsafeBytes { heap.write($0, at: base) }
        swap = base + UInt(swapOffset)
        start = base + UInt(startOffset)
        startReturn = base + UInt(startReturnOffset)
        grow = base + UInt(growOffset)
        growReturn = base + UInt(growReturnOffset)
        nativeCall = base + UInt(nativeOffset)
        fault = base + UInt(faultOffset)
    }

    /// A service trampoline that runs `entry(rdi, rsi, frame, onSegment)` on the scheduler's
    /// stack when called on a segment, on the caller's stack otherwise, and parks the proc
    /// and calls again while the entry asks for it (`kiln_service_result.park`).
    static func makeTrampoline(entry: UInt, routines: ProcRoutines, stacks: ProcStacks, heap: CodeHeap) throws(LoadError) -> UInt {
        var buffer = CodeBuffer()
        let globals = Self.globals
        let retry = buffer.makeLabel(), native = buffer.makeLabel(), after = buffer.makeLabel(), done = buffer.makeLabel()
        buffer.push(.rbp)
        buffer.mov(.b64, .rbp, .rsp)
        buffer.push(.rdi)
        buffer.push(.rsi)
        try! buffer.bind(retry)
        buffer.mov(.b64, .rdx, .rbp)
        Self.unlessOnSegment(&buffer, stacks, scratch: .rax, goTo: native)
        buffer.mov(.b64, .rax, imm: globals)
        buffer.mov(.b64, .r11, .rsp)
        buffer.mov(.b64, .rsp, Memory(base: .rax, displacement: nativeRsp))
        buffer.push(.r11)
        buffer.push(.r11)
        buffer.mov(.b32, .rcx, imm: 1)
        buffer.mov(.b64, .rax, imm: Int64(Int(bitPattern: entry)))
        buffer.call(.rax)
        buffer.pop(.rsp)
        buffer.jmp(to: after)
        try! buffer.bind(native)
        buffer.mov(.b32, .rcx, imm: 0)
        buffer.mov(.b64, .rax, imm: Int64(Int(bitPattern: entry)))
        buffer.call(.rax)
        try! buffer.bind(after)
        buffer.test(.b64, .rdx, .rdx)
        buffer.jcc(.e, to: done)
        buffer.mov(.b64, .r11, imm: globals)
        buffer.mov(.b64, .rdi, Memory(base: .r11, displacement: current))
        buffer.mov(.b64, .rsi, Memory(base: .r11, displacement: schedulerRsp))
        buffer.mov(.b64, .rax, imm: Int64(Int(bitPattern: routines.swap)))
        buffer.call(.rax)
        buffer.mov(.b64, .rdi, Memory(base: .rbp, displacement: -8))
        buffer.mov(.b64, .rsi, Memory(base: .rbp, displacement: -16))
        buffer.jmp(to: retry)
        try! buffer.bind(done)
        buffer.mov(.b64, .rsp, .rbp)
        buffer.pop(.rbp)
        buffer.ret()
        let bytes = buffer.bytes
        let base = try heap.allocateFixed(bytes.count)
        bytes.withUnsafeBytes { heap.write($0, at: base) }
        return base
    }

    /// A 16-byte thunk `mov r11, target; jmp nativeCall` through which code calls the C
    /// function at `target`.
    func makeNativeThunk(for target: UInt, heap: CodeHeap) throws(LoadError) -> UInt {
        var buffer = CodeBuffer()
        buffer.mov(.b64, .r11, imm: Int64(Int(bitPattern: target)))
        let cell = try heap.allocateFixed(16)
        let next = cell + UInt(buffer.count) + 5
        let distance = Int64(Int(bitPattern: nativeCall)) - Int64(Int(bitPattern: next))
        buffer.emit(0xE9)
        buffer.emit32(UInt32(truncatingIfNeeded: Int32(distance)))
        while buffer.count < 16 { buffer.int3() }
        let bytes = buffer.bytes
        bytes.withUnsafeBytes { heap.write($0, at: cell) }
        return cell
    }

    /// Jumps to `label` unless rsp is on a proc segment (in `stacks`' range); uses `scratch`.
    private static func unlessOnSegment(_ buffer: inout CodeBuffer, _ stacks: ProcStacks, scratch: GPR, goTo label: Label) {
        buffer.mov(.b64, scratch, imm: Int64(Int(bitPattern: stacks.low)))
        buffer.alu(.cmp, .b64, .rsp, scratch)
        buffer.jcc(.b, to: label)
        buffer.mov(.b64, scratch, imm: Int64(Int(bitPattern: stacks.high)))
        buffer.alu(.cmp, .b64, .rsp, scratch)
        buffer.jcc(.ae, to: label)
    }

    private static func pad(_ buffer: inout CodeBuffer) {
        while buffer.count % 16 != 0 { buffer.int3() }
    }

    private static func address<T>(_ function: T) -> Int64 {
        Int64(Int(bitPattern: unsafeBitCast(function, to: UInt.self)))
    }
}
