// Emission of allocation and of stack maps.
//
// An allocation (a call whose `CallInfo.allocation` is set) becomes the
// inline bump of the thread's allocation record (KilnManagedHeap's
// AllocationRecord.swift: cursor at offset 0, limit at 8):
//
//     mov  r11, [rip + slot(kiln.heap.record.offset)]   ; record's offset from fs:0
//     mov  r11, fs:[r11]                                 ; the record
//     (a count in rdi: cmp rdi, limit; ja slow)
//     mov  rax, [r11]                                    ; cursor: the header's address
//     lea  r10, [rax + bytes]                            ; bytes: 8 + 8n, or 8 + align8(n)
//     cmp  r10, [r11 + 8]
//     ja   slow
//     mov  [r11], r10
//     mov  [rax], header
//     add  rax, 1                                        ; the reference
//   done:
//
// and, after the function's last block, the slow path, which is the real
// call and the safepoint:
//
//   slow:
//     rdi = header
//     call [rip + slot(kiln.heap.allocate)]              ; rax = the reference
//     jmp  done
//
// Memory from the cursor to the limit reads as zero, so only the header is
// written. The allocator saw a call here, so every register but the callee-
// saved ones is free to use; r10 and r11 are emission's own scratch.
//
// A stack map is recorded at the return address of every call (the slow
// path's included) of a function that holds references; its slots are the
// rbp-relative places of the spill slots that `Allocation.safepointSlots`
// lists for that call.

import KilnCode
import KilnX64

/// Objects up to this many fields or bytes are allocated inline; bigger ones (and counts
/// that are not constants and exceed it) always take the slow path, which also sends large
/// objects to their own space.
let inlineAllocationLimit: Int64 = 4096

/// Header bits (ObjectHeader.swift in KilnManagedHeap: a test checks they agree).
let rawHeaderBit: UInt64 = 1 << 63
let codeHeaderBit: UInt64 = 1 << 61

extension AllocationSite {
    /// The kind bits of the header.
    var kindBits: UInt64 { isRaw ? rawHeaderBit : isClosure ? codeHeaderBit : 0 }
}

/// An allocation's slow path, emitted after the function's blocks.
struct SlowAllocationPath {
    var entry: Label
    var rejoin: Label
    var site: AllocationSite
    var instruction: Int32
}

extension Emitter {
    /// Whether the function records stack maps (it holds references somewhere).
    var recordsStackMaps: Bool { !machine.references.isEmpty }

    /// Records the stack map of the call whose return address is the current offset.
    mutating func recordSafepoint(instruction: Int32) {
        guard recordsStackMaps else { return }
        let slots = (allocation.safepointSlots[instruction] ?? []).map { spillMemory($0).displacement }
        stackMaps.append(StackMap(codeOffset: UInt32(buffer.count), frameSlots: slots.sorted()))
    }

    /// A rip-relative operand for `target`, its relocation recorded by `ripRelocation`.
    mutating func ripRelocation(_ target: RelocationTarget) {
        guard let site = buffer.lastRIPRelativeSite else { return }
        relocations.append(Relocation(offset: UInt32(site.offset), kind: .pcRelative32, target: target,
                                      addend: Int64(site.pcRelativeAddend)))
    }

    /// The inline part of an allocation; the slow path is queued for `emitSlowAllocationPaths`.
    mutating func emitAllocation(_ site: AllocationSite) {
        let instruction = currentPosition / 2
        let slow = buffer.makeLabel(), rejoin = buffer.makeLabel()
        slowAllocationPaths.append(SlowAllocationPath(entry: slow, rejoin: rejoin, site: site, instruction: instruction))
        if let count = site.count, count < 0 || count > inlineAllocationLimit {
            buffer.jmp(to: slow)
            bindInline(rejoin)
            return
        }
        buffer.mov(.b64, .r11, .rip(0))
        ripRelocation(.addressSlot(ManagedSymbols.recordOffset))
        buffer.emit(0x64)  // fs segment: the thread's own record pointer
        buffer.mov(.b64, .r11, Memory(base: .r11))
        if site.count == nil {
            buffer.alu(.cmp, .b64, .rdi, imm: Int32(inlineAllocationLimit))
            buffer.jcc(.a, to: slow)
        }
        buffer.mov(.b64, .rax, Memory(base: .r11))
        if let count = site.count {
            let bytes = site.isRaw ? 8 + ((count + 7) & ~7) : 8 + 8 * count
            buffer.lea(.b64, .r10, Memory(base: .rax, displacement: Int32(bytes)))
        } else if site.isRaw {
            buffer.lea(.b64, .r10, Memory(base: .rax, index: IndexRegister(.rdi)!, scale: .x1, displacement: 15))
            buffer.alu(.and, .b64, .r10, imm: -8)
        } else {
            buffer.lea(.b64, .r10, Memory(base: .rax, index: IndexRegister(.rdi)!, scale: .x8, displacement: 8))
        }
        buffer.alu(.cmp, .b64, .r10, Memory(base: .r11, displacement: 8))
        buffer.jcc(.a, to: slow)
        buffer.mov(.b64, Memory(base: .r11), .r10)
        if let count = site.count {
            if site.kindBits != 0 {
                _ = buffer.movabs(.r10, imm64: Int64(bitPattern: site.kindBits | UInt64(count)))
                buffer.mov(.b64, Memory(base: .rax), .r10)
            } else {
                buffer.mov(.b64, Memory(base: .rax), imm: Int32(count))
            }
        } else if site.kindBits != 0 {
            _ = buffer.movabs(.r10, imm64: Int64(bitPattern: site.kindBits))
            buffer.alu(.or, .b64, .r10, .rdi)
            buffer.mov(.b64, Memory(base: .rax), .r10)
        } else {
            buffer.mov(.b64, Memory(base: .rax), .rdi)
        }
        buffer.alu(.add, .b64, .rax, imm: 1)
        bindInline(rejoin)
    }

    private mutating func bindInline(_ label: Label) {
        // A label is bound once, here, so binding cannot fail.
        try? buffer.bind(label)
    }

    /// The slow paths of the function's allocations, after its last block.
    mutating func emitSlowAllocationPaths() {
        for path in slowAllocationPaths {
            bindInline(path.entry)
            let site = path.site
            if let count = site.count {
                let header = site.kindBits | UInt64(bitPattern: count)
                if header <= UInt64(Int32.max) {
                    buffer.mov(.b32, .rdi, imm: Int64(header))
                } else {
                    _ = buffer.movabs(.rdi, imm64: Int64(bitPattern: header))
                }
            } else if site.kindBits != 0 {
                _ = buffer.movabs(.r10, imm64: Int64(bitPattern: site.kindBits))
                buffer.alu(.or, .b64, .rdi, .r10)
            }
            buffer.call(.rip(0))
            ripRelocation(.addressSlot(ManagedSymbols.allocate))
            recordSafepoint(instruction: path.instruction)
            buffer.jmp(to: path.rejoin)
        }
    }
}
