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

import KilnX64

/// The loader's fixed routines; see the file comment.
struct RuntimeRoutines {
    /// Entered from a resolver stub with the call slot's address in r11.
    let resolver: UInt
    /// Entered from a dead callback stub with the stub's address in r11.
    let deadStub: UInt
    /// `xor eax, eax; ret`: where runtime entries that return nothing go.
    let returnNothing: UInt

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
        let saved: [GPR] = [.rax, .rdi, .rsi, .rdx, .rcx, .r8, .r9, .r11]
        buffer.push(.rbp)
        buffer.mov(.b64, .rbp, .rsp)
        for register in saved { buffer.push(register) }
        // Code written by hand may call with a misaligned stack: align it here, so the
        // saves and the call into Swift are right either way.
        buffer.alu(.sub, .b64, .rsp, imm: 128)
        buffer.alu(.and, .b64, .rsp, imm: -16)
        for index in 0..<8 { buffer.movaps(Memory(base: .rsp, displacement: Int32(16 * index)), XMM(rawValue: UInt8(index))!) }
        buffer.mov(.b64, .rdi, imm: contextValue)
        buffer.mov(.b64, .rsi, .r11)
        buffer.mov(.b64, .rdx, .rbp)
        buffer.mov(.b64, .rax, imm: Int64(Int(bitPattern: unsafeBitCast(bindEntry, to: UInt.self))))
        buffer.call(.rax)
        buffer.mov(.b64, .r11, .rax)
        for index in 0..<8 { buffer.movaps(XMM(rawValue: UInt8(index))!, Memory(base: .rsp, displacement: Int32(16 * index))) }
        // Back to the saved registers; the saved r11 is not restored: r11 holds the target.
        buffer.lea(.b64, .rsp, Memory(base: .rbp, displacement: Int32(-8 * (saved.count - 1))))
        for register in saved.dropLast().reversed() { buffer.pop(register) }
        buffer.pop(.rbp)
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

        let bytes = buffer.bytes
        let base = try heap.allocateFixed(bytes.count)
        bytes.withUnsafeBytes { heap.write($0, at: base) }
        resolver = base
        deadStub = base + UInt(deadOffset)
        returnNothing = base + UInt(returnOffset)
    }

    /// Makes the resolver stub of the call slot at `slot`: `lea r11, [rip + slot]; jmp resolver`.
    func makeResolverStub(for slot: UInt, in heap: CodeHeap) throws(LoadError) -> UInt {
        let cell = try heap.allocateFixed(16)
        var bytes: [UInt8] = [0x4C, 0x8D, 0x1D] + rel32(from: cell + 7, to: slot)
        bytes += [0xE9] + rel32(from: cell + 12, to: resolver)
        bytes.withUnsafeBytes { heap.write($0, at: cell) }
        return cell
    }

    /// Writes a callback stub: `jmp rel32` to its block's entry, or the dead form
    /// `lea r11, [rip - 7]; jmp deadStub` (see CallbackStubs.swift).
    func writeStub(_ stub: CallbackStub, in heap: CodeHeap) {
        let writable = heap.region.writableAlias(of: stub.address)
        var first: [UInt8]
        if let block = stub.block {
            first = [0xE9] + rel32(from: stub.address + 5, to: block.entry) + [0xCC, 0xCC, 0xCC]
        } else {
            // Bytes 8-11 (the jmp's rel32) first: nothing executes them while byte 0 still
            // starts the live jump.
            let tail = rel32(from: stub.address + 12, to: deadStub)
            (writable + 8).copyMemory(from: tail, byteCount: 4)
            first = [0x4C, 0x8D, 0x1D, 0xF9, 0xFF, 0xFF, 0xFF, 0xE9]
        }
        // One aligned 8-byte store: a thread in the stub sees the old or the new jump.
        let word = first.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        writable.storeBytes(of: word, as: UInt64.self)
    }
}

/// The little-endian rel32 of a jump whose next instruction is at `next`.
private func rel32(from next: UInt, to target: UInt) -> [UInt8] {
    let distance = Int64(Int(bitPattern: target) - Int(bitPattern: next))
    precondition(distance >= Int64(Int32.min) && distance <= Int64(Int32.max), "rel32 out of range")
    let value = UInt32(truncatingIfNeeded: distance)
    return (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) }
}
