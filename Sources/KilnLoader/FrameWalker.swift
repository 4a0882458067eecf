// Finding every reference to code on the stack of the current thread.
//
// Generated code always keeps rbp as a frame pointer, so from a frame of the
// runtime that was entered from generated code (the resolver routine), the
// chain `[rbp] = caller's rbp, [rbp + 8] = return address` leads through every
// frame of generated code up to the first frame that is not (C code that
// called back into a crate, or the host that called `main`). Those return
// addresses are *precise*: compaction rewrites them when their block moves.
//
// Above that point frames of C and Swift code may hide further frames of
// generated code, and nothing says which words are return addresses. There the
// walk is *conservative*: every word of the stack up to its top that points
// into a block pins the block (it stays where it is for this compaction). A
// false hit only keeps a block in place, never corrupts anything.
//
// Only the calling thread's stack is seen: another thread may be executing
// generated code right now, with its instruction pointer in a block, which no
// stack shows. So code moves and is freed only while no other living thread
// has entered the loader's runtime (`Loader.isAlone`, kept by the C shim):
// single-threaded programs, procs and hosts that drive one program thread.

/// What a stack holds of the code heap.
struct StackScan {
    /// A precise return-address slot: where it is, the block it returns into, and the
    /// offset of the return address from the block's entry.
    struct Frame {
        let slot: UInt
        let block: CodeBlock
        let offset: UInt
    }

    var frames: [Frame] = []
    /// Blocks some other word of the stack points into.
    var pinned: [CodeBlock] = []
}

extension CodeHeap {
    /// Scans the calling thread's stack from `low` (an address in the innermost frame to
    /// scan) to its top, starting the precise walk at `framePointer` if given.
    func scanStack(framePointer: UInt?, low: UInt) -> StackScan {
        var scan = StackScan()
        var seen = Set<UInt32>()
        let top = System.stackTop()
        guard top > low else { return scan }
        var precise = Set<UInt>()
        if var frame = framePointer {
            while frame % 8 == 0, frame >= low, frame + 16 <= top {
                let returnAddress = UnsafeRawPointer(bitPattern: frame + 8)!.load(as: UInt.self)
                guard let block = owner(of: returnAddress &- 1) else { break }
                scan.frames.append(StackScan.Frame(slot: frame + 8, block: block, offset: returnAddress - block.entry))
                precise.insert(frame + 8)
                let next = UnsafeRawPointer(bitPattern: frame)!.load(as: UInt.self)
                guard next > frame else { break }
                frame = next
            }
        }
        var word = (low + 7) & ~7
        while word + 8 <= top {
            defer { word += 8 }
            if precise.contains(word) { continue }
            let value = UnsafeRawPointer(bitPattern: word)!.load(as: UInt.self)
            guard movableRange.contains(value) else { continue }
            if let block = owner(of: value) ?? owner(of: value &- 1), seen.insert(block.id).inserted {
                scan.pinned.append(block)
            }
        }
        return scan
    }
}
