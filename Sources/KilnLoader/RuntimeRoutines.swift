// The machine code the runtime itself runs: the resolver that lazy binding
// and runtime entries go through, the handler of dead stubs, and the bytes of
// resolver stubs and callback stubs.
//
// All of it lives in the code heap's fixed part (it never moves) and is made
// with Kiln's own encoder when a loader starts. The resolver keeps the SysV
// argument registers intact (rdi, rsi, rdx, rcx, r8, r9, xmm0-7, and rax,
// which carries `%al` for variadic calls and `env`), so a call through an
// unbound slot behaves exactly like a call to the bound target. It also
// keeps a frame (`push rbp; mov rbp, rsp`), so `[rbp + 8]` is the caller's
// return address and the rbp chain leads through every frame of generated
// code above it: that is where compaction starts its walk.

import CKilnShim
import KilnX64

/// The loader's fixed routines; see the file comment.
struct RuntimeRoutines {
    /// Entered from a resolver stub with the call slot's address in r11.
    let resolver: UInt
    /// Where the resolver's call into the loader returns: on a thread's stack, it says the
    /// thread is binding a slot (and may be waiting for the loader's lock to do it).
    let resolverReturn: UInt
    /// The same, when the resolver was entered on a proc's segment (its call runs on the C stack).
    let resolverReturnOffSegment: UInt
    /// Entered from a dead callback stub with the stub's address in r11.
    let deadStub: UInt
    /// `xor eax, eax; ret`: where runtime entries that return nothing go.
    let returnNothing: UInt
    /// Entered from a gated callback stub with the stub's address in r11: waits until the
    /// world resumes, then jumps back into the stub (see `Loader.withStoppedWorld`).
    let gate: UInt

    init(heap: CodeHeap, context: UnsafeMutableRawPointer) throws(LoadError) {
        let bindEntry: @convention(c) (UnsafeMutableRawPointer?, UInt, UInt) -> UInt = { context, slot, frame in
            Unmanaged<Loader>.fromOpaque(context!).takeUnretainedValue().bind(slot: slot, framePointer: frame)
        }
        let deadEntry: @convention(c) (UnsafeMutableRawPointer?, UInt) -> Void = { context, stub in
            Unmanaged<Loader>.fromOpaque(context!).takeUnretainedValue().deadStubCalled(stub)
        }
        let contextValue = Int64(Int(bitPattern: context))
        var buffer = CodeBuffer()

        // The resolver.
        Self.saveArgumentRegisters(&buffer)
        buffer.mov(.b64, .rdi, imm: contextValue)
        buffer.mov(.b64, .rsi, .r11)
        buffer.mov(.b64, .rdx, .rbp)
        buffer.mov(.b64, .rax, imm: Int64(Int(bitPattern: unsafeBitCast(bindEntry, to: UInt.self))))
        let (resolverReturnOffset, resolverReturnOffSegmentOffset) = Self.callOffSegment(&buffer)
        buffer.mov(.b64, .r11, .rax)
        // The saved r11 is not restored: r11 holds the target.
        Self.restoreArgumentRegisters(&buffer, keepingR11: true)
        buffer.jmp(.r11)
        while buffer.count % 16 != 0 { buffer.int3() }

        // The dead-stub handler.
        let deadOffset = buffer.count
        buffer.push(.rbp)
        buffer.mov(.b64, .rbp, .rsp)
        buffer.alu(.and, .b64, .rsp, imm: -16)
        buffer.mov(.b64, .rdi, imm: contextValue)
        buffer.mov(.b64, .rsi, .r11)
        buffer.mov(.b64, .rax, imm: Int64(Int(bitPattern: unsafeBitCast(deadEntry, to: UInt.self))))
        buffer.call(.rax)
        buffer.int3()
        while buffer.count % 16 != 0 { buffer.int3() }

        let returnOffset = buffer.count
        buffer.alu(.xor, .b32, .rax, .rax)
        buffer.ret()
        while buffer.count % 16 != 0 { buffer.int3() }

        // The gate: like the resolver, it keeps every argument register.
        let gateOffset = buffer.count
        Self.saveArgumentRegisters(&buffer)
        buffer.mov(.b64, .rax, imm: Int64(Int(bitPattern: unsafeBitCast(kiln_world_wait as @convention(c) () -> Void, to: UInt.self))))
        buffer.call(.rax)
        Self.restoreArgumentRegisters(&buffer, keepingR11: false)
        buffer.jmp(.r11)

        let bytes = buffer.bytes
        let base = try heap.allocateFixed(bytes.count)
        bytes.withUnsafeBytes { heap.write($0, at: base) }
        resolver = base
        resolverReturn = base + UInt(resolverReturnOffset)
        resolverReturnOffSegment = base + UInt(resolverReturnOffSegmentOffset)
        deadStub = base + UInt(deadOffset)
        returnNothing = base + UInt(returnOffset)
        gate = base + UInt(gateOffset)
    }

    /// `call rax`, on the C stack of procs (Procs/Scheduler.swift) when the stack pointer is
    /// on a proc's segment: Swift does not fit there. Uses r10; rsp is back afterwards.
    /// Returns the offsets where the two calls return.
    private static func callOffSegment(_ buffer: inout CodeBuffer) -> (Int, Int) {
        let onSegment = buffer.makeLabel(), done = buffer.makeLabel()
        buffer.mov(.b64, .r10, imm: Int64(Int(bitPattern: procGlobals)))
        buffer.alu(.cmp, .b64, .rsp, Memory(base: .r10, displacement: Int32(MemoryLayout<kiln_proc_globals>.offset(of: \.region_low)!)))
        buffer.jcc(.b, to: done)
        buffer.alu(.cmp, .b64, .rsp, Memory(base: .r10, displacement: Int32(MemoryLayout<kiln_proc_globals>.offset(of: \.region_high)!)))
        buffer.jcc(.b, to: onSegment)
        try! buffer.bind(done)
        buffer.call(.rax)
        let direct = buffer.count
        let skip = buffer.makeLabel()
        buffer.jmp(to: skip)
        try! buffer.bind(onSegment)
        buffer.mov(.b64, .r11, .rsp)
        buffer.mov(.b64, .rsp, Memory(base: .r10, displacement: Int32(MemoryLayout<kiln_proc_globals>.offset(of: \.native_rsp)!)))
        buffer.push(.r11)
        buffer.push(.r11)
        buffer.call(.rax)
        let offSegment = buffer.count
        buffer.pop(.rsp)
        try! buffer.bind(skip)
        return (direct, offSegment)
    }

    /// The SysV argument registers, rax (`%al`, `env`) and r11 (a slot or a stub), in the
    /// order they are pushed.
    private static let savedRegisters: [GPR] = [.rax, .rdi, .rsi, .rdx, .rcx, .r8, .r9, .r11]

    /// `push rbp; mov rbp, rsp`, the general argument registers, then xmm0-7 in a 16-byte
    /// aligned area: code written by hand may call with a misaligned stack, so the saves and
    /// a call into Swift are right either way.
    private static func saveArgumentRegisters(_ buffer: inout CodeBuffer) {
        buffer.push(.rbp)
        buffer.mov(.b64, .rbp, .rsp)
        for register in savedRegisters { buffer.push(register) }
        buffer.alu(.sub, .b64, .rsp, imm: 128)
        buffer.alu(.and, .b64, .rsp, imm: -16)
        for index in 0..<8 { buffer.movaps(Memory(base: .rsp, displacement: Int32(16 * index)), XMM(rawValue: UInt8(index))!) }
    }

    /// Undoes `saveArgumentRegisters`; with `keepingR11`, r11 keeps its current value.
    private static func restoreArgumentRegisters(_ buffer: inout CodeBuffer, keepingR11: Bool) {
        for index in 0..<8 { buffer.movaps(XMM(rawValue: UInt8(index))!, Memory(base: .rsp, displacement: Int32(16 * index))) }
        let popped = keepingR11 ? savedRegisters.dropLast() : savedRegisters[...]
        buffer.lea(.b64, .rsp, Memory(base: .rbp, displacement: Int32(-8 * popped.count)))
        for register in popped.reversed() { buffer.pop(register) }
        buffer.pop(.rbp)
    }

    /// Makes the resolver stub of the call slot at `slot`: `lea r11, [rip + slot]; jmp resolver`.
    func makeResolverStub(for slot: UInt, in heap: CodeHeap) throws(LoadError) -> UInt {
        let cell = try heap.allocateFixed(16)
        let writable = heap.region.writableAlias(of: cell)
        writable.storeBytes(of: Self.indirectJump(cell, through: slot) , as: UInt64.self)
        writable.storeBytes(of: rel32(from: cell + 12, to: resolver), toByteOffset: 8, as: UInt32.self)
        return cell
    }

    /// Writes a callback stub in one of its three forms: `jmp rel32` to `target` (live),
    /// `lea r11, [rip - 7]; jmp deadStub` (dead: `target` nil), or the same to the gate
    /// (gated, while the world is stopped). Allocates nothing: it runs in stopped worlds.
    func writeStub(at address: UInt, target: UInt?, gated: Bool = false, in heap: CodeHeap) {
        let writable = heap.region.writableAlias(of: address)
        let word: UInt64
        if let target, !gated {
            // e9 rel32, then int3 int3 int3.
            word = 0xE9 | UInt64(rel32(from: address + 5, to: target)) << 8 | 0xCCCC_CC00_0000_0000
        } else {
            // Bytes 8-11 (the jmp's rel32) first: nothing executes them while byte 0 still
            // starts the live jump, and both indirect forms pass r11 = the stub.
            writable.storeBytes(of: rel32(from: address + 12, to: gated ? gate : deadStub), toByteOffset: 8, as: UInt32.self)
            word = Self.indirectJump(address, through: address)
        }
        // One aligned 8-byte store: a thread in the stub sees the old or the new jump.
        writable.storeBytes(of: word, as: UInt64.self)
    }

    /// The first eight bytes of `lea r11, [rip + disp32]; jmp` at `cell`, where the lea
    /// yields `target`; the jmp's rel32 follows in bytes 8-11.
    private static func indirectJump(_ cell: UInt, through target: UInt) -> UInt64 {
        0x1D_8D4C | UInt64(rel32(from: cell + 7, to: target)) << 24 | 0xE9 << 56
    }
}

/// The rel32 of a jump or rip-relative operand whose next instruction is at `next`.
private func rel32(from next: UInt, to target: UInt) -> UInt32 {
    let distance = Int64(Int(bitPattern: target) - Int(bitPattern: next))
    precondition(distance >= Int64(Int32.min) && distance <= Int64(Int32.max), "rel32 out of range")
    return UInt32(truncatingIfNeeded: distance)
}
