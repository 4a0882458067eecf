// Finding every reference to code that the threads of the process hold.
//
// The thread that runs the runtime (the *controller*) knows its own stack:
// from a runtime entry (the resolver routine), the chain `[rbp] = caller's
// rbp, [rbp + 8] = return address` leads through every frame of generated
// code up to the first frame that is not (C code that called back into a
// crate, or the host that called `main`), because generated code always
// keeps rbp as a frame pointer. Those return addresses are *precise*:
// compaction rewrites them when their block moves. Every other word of the
// controller's stack up to its top is a *conservative* root: a word that
// points into a block pins the block (it stays where it is, is not rewritten
// in place and is not freed). A false hit only keeps a block in place.
//
// Every other thread is stopped (World.swift) and examined conservatively:
// its registers (rip included) and its stack from the red zone below rsp to
// the top of the mapping that holds rsp.
//
// On a stack, only a word that can be a return address counts: it points
// into a block just past a call instruction of one of the forms the code
// generator emits (`call rel32`, `call reg`, `call [mem]`). The loader's own
// frames leave block entries behind in dead slots, and those must not pin
// anything. The one other kind of code address a stack holds is the program
// counter saved by a signal that interrupted generated code: the kernel's
// frame for the handler starts with the address of glibc's sigreturn
// trampoline, so a word equal to it is followed by the saved registers, and
// those count like a stopped thread's registers. A thread that did not answer, or
// whose stack cannot be found, makes the scan *incomplete*: it may be running
// any code, so nothing may move, be rewritten or be freed on its account.
//
// Blocks of functions that call the setjmp family never move at all
// (`CodeBlock.isFixed`): a `jmp_buf` holds a return address into them, mangled
// by glibc and stored wherever the program likes, so no scan can find it.
//
// The scan of stopped threads runs while the world is stopped, so it never
// allocates: the pinned list has room for every block before the stop
// (`begin`), and a block is added once (its `pinEpoch`).

import CKilnShim

/// What the threads' stacks and registers hold of the code heap, at one moment.
final class RootScan {
    /// A precise return-address slot: where it is, the block it returns into, and the
    /// offset of the return address from the block's entry.
    struct Frame {
        let slot: UInt
        let block: CodeBlock
        let offset: UInt
    }

    /// Precise return addresses on the controller's stack, innermost first.
    private(set) var frames: [Frame] = []
    /// Blocks that a conservative root points into, each once.
    private(set) var pinned: [CodeBlock] = []
    /// Whether every other thread was stopped and examined.
    private(set) var isComplete = true
    /// Threads that did not answer the last stop.
    private(set) var unresponsiveThreads = 0
    /// Other threads examined by the last scan.
    private(set) var threadsScanned = 0
    /// Other threads found inside the resolver, binding a call slot (see `resolverReturn`):
    /// the TOC of that slot must stay, whichever version it belongs to.
    private(set) var threadsBinding = 0
    /// Where the resolver's call into the loader returns (RuntimeRoutines).
    var resolverReturn: UInt = 0
    var resolverReturnOffSegment: UInt = 0
    /// Where the proc thread's stack pointer was on proc stacks at the last stop (0: elsewhere).
    private var procThreadStackPointer: UInt = 0
    /// Numbers this scan's marks on blocks.
    private var epoch: UInt64 = 0

    /// Starts a scan: forgets the last one and makes room for a pin of every block.
    func begin(blockCount: Int) {
        frames.removeAll(keepingCapacity: true)
        pinned.removeAll(keepingCapacity: true)
        pinned.reserveCapacity(blockCount)
        isComplete = true
        unresponsiveThreads = 0
        threadsScanned = 0
        threadsBinding = 0
        epoch &+= 1
    }

    /// Whether `block` must stay as it is: a conservative root points into it, or a
    /// precise frame runs in it (it may move, but must not be rewritten or freed).
    func isBusy(_ block: CodeBlock) -> Bool {
        block.pinEpoch == epoch || block.frameEpoch == epoch
    }

    /// Whether a conservative root points into `block` (it must not move).
    func isPinned(_ block: CodeBlock) -> Bool {
        block.pinEpoch == epoch
    }

    /// Where signal handlers return (0 if unknown): marks the frame of a signal in progress.
    private let restorer = kiln_world_signal_restorer()
    private let sigframeRegisters = UInt(kiln_world_sigframe_registers_offset())

    /// Pins what a stack word at `address` holding `value` refers to: a block it returns
    /// into, or every block the registers saved by an interrupted signal point into.
    @inline(__always) @discardableResult
    private func pinIfStackRoot(_ value: UInt, at address: UInt, below top: UInt, in heap: CodeHeap) -> Bool {
        if value == restorer && restorer != 0 {
            let registers = address + sigframeRegisters
            guard registers + UInt(8 * 23) <= top else { return false }
            var hit = false
            for index in 0..<23 {
                if pinIfCode(UnsafeRawPointer(bitPattern: registers + UInt(8 * index))!.load(as: UInt.self), in: heap) {
                    hit = true
                }
            }
            return hit
        }
        guard heap.movableRange.contains(value &- 1), let block = heap.owner(of: value &- 1),
              value > block.entry, Self.followsCall(value, entry: block.entry) else { return false }
        pin(block)
        return true
    }

    /// Whether the bytes just before `address` (in a block starting at `entry`) are a call
    /// instruction of a form Kiln emits: `e8 rel32`, or `[rex] ff /2` with any operand.
    static func followsCall(_ address: UInt, entry: UInt) -> Bool {
        func byte(_ back: UInt) -> UInt8 { UnsafePointer<UInt8>(bitPattern: address - back)!.pointee }
        if address - entry >= 5 && byte(5) == 0xE8 { return true }
        // ff /2: ModRM with reg = 2, then an optional SIB and displacement.
        for length in UInt(2)...8 where address - entry >= length {
            guard byte(length) == 0xFF else { continue }
            let modrm = byte(length - 1)
            guard (modrm >> 3) & 7 == 2 else { continue }
            let mode = modrm >> 6, rm = modrm & 7
            var expected: UInt = 2
            if mode != 3 && rm == 4 {
                expected += 1
                if mode == 0 && length >= 3 && byte(length - 2) & 7 == 5 { expected += 4 }
            }
            if mode == 1 { expected += 1 }
            if mode == 2 || (mode == 0 && rm == 5) { expected += 4 }
            if expected == length { return true }
        }
        return false
    }

    /// Forgets what the last scan of other threads found, keeping the controller's own
    /// stack, before scanning a new stop of the world. Allocates nothing.
    func forgetOtherThreads(keeping ownPins: Int) {
        for index in ownPins..<pinned.count { pinned[index].pinEpoch = 0 }
        pinned.removeLast(pinned.count - ownPins)
        isComplete = true
        unresponsiveThreads = 0
        threadsScanned = 0
        threadsBinding = 0
    }

    /// Marks the scan incomplete: some thread may be running any code.
    func giveUp() {
        isComplete = false
    }

    private func pin(_ block: CodeBlock) {
        guard block.pinEpoch != epoch else { return }
        block.pinEpoch = epoch
        // Never beyond the capacity `begin` reserved: each block is added at most once.
        pinned.append(block)
    }

    /// Pins the block that `value` points into (or just past, a return address at its end);
    /// whether it did.
    @inline(__always) @discardableResult
    private func pinIfCode(_ value: UInt, in heap: CodeHeap) -> Bool {
        guard heap.movableRange.contains(value) || heap.movableRange.contains(value &- 1) else { return false }
        guard let block = heap.owner(of: value) ?? heap.owner(of: value &- 1) else { return false }
        pin(block)
        return true
    }

    /// Scans the controller's stack from `low` (an address in the innermost frame to scan)
    /// to its top, walking precisely from `framePointer` if given. Runs before the world
    /// stops: the controller's frames from `low` up do not change while it is in the runtime.
    func scanOwnStack(_ heap: CodeHeap, framePointer: UInt?, low: UInt) {
        let top = System.stackTop()
        guard top > low else { return }
        var precise = Set<UInt>()
        if var frame = framePointer {
            while frame % 8 == 0, frame >= low, frame + 16 <= top {
                let returnAddress = UnsafeRawPointer(bitPattern: frame + 8)!.load(as: UInt.self)
                guard let block = heap.owner(of: returnAddress &- 1) else { break }
                frames.append(Frame(slot: frame + 8, block: block, offset: returnAddress - block.entry))
                block.frameEpoch = epoch
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
            pinIfStackRoot(UnsafeRawPointer(bitPattern: word)!.load(as: UInt.self), at: word, below: top, in: heap)
        }
    }

    // MARK: Procs

    /// Scans the stacks of the proc thread when it is the controller, running a proc (on a
    /// segment, or on the C stack in a call from one): precisely from `framePointer` across
    /// segments, conservatively over the C stack from `low`, every segment of the running
    /// proc, the scheduler's own stack, and every parked proc (`scanParkedProcs`).
    func scanProcThread(_ heap: CodeHeap, _ procs: ProcSystem, framePointer: UInt?, low: UInt) {
        var precise = Set<UInt>()
        if let framePointer { walkPrecisely(heap, procs, from: framePointer, into: &precise) }
        func scan(_ from: UInt, _ to: UInt) {
            var word = (from + 7) & ~7
            while word + 8 <= to {
                defer { word += 8 }
                if precise.contains(word) { continue }
                pinIfStackRoot(UnsafeRawPointer(bitPattern: word)!.load(as: UInt.self), at: word, below: to, in: heap)
            }
        }
        if low >= procs.cStackLow && low < procs.cStackHigh { scan(low, procs.cStackHigh) }
        if let running = procs.running {
            // Where the proc's stack pointer is on its segment is not known from here when it
            // is in a C call: the whole segment is scanned.
            let rsp = procs.stacks.contains(low) ? low : running.segment.base
            procs.forEachSegment(of: running, from: rsp) { scan($0, $1) }
        }
        scan(procGlobals.pointee.scheduler_rsp, System.stackTop())
        scanParkedProcs(heap, procs)
    }

    /// Walks every parked proc's frames precisely and its segments conservatively.
    func scanParkedProcs(_ heap: CodeHeap, _ procs: ProcSystem) {
        var precise = Set<UInt>()
        procs.forEachParkedProc { proc, frame in
            walkPrecisely(heap, procs, from: frame, into: &precise)
            procs.forEachSegment(of: proc, from: proc.savedRsp.pointee) { from, to in
                var word = (from + 7) & ~7
                while word + 8 <= to {
                    defer { word += 8 }
                    if precise.contains(word) { continue }
                    pinIfStackRoot(UnsafeRawPointer(bitPattern: word)!.load(as: UInt.self), at: word, below: to, in: heap)
                }
            }
        }
    }

    /// Follows the rbp chain from `frame` through generated code, across segment
    /// boundaries (where the return address is the grow routine's), recording each return
    /// address into a block as a precise frame. Stops at a frame outside the proc stacks and
    /// the C stack, or whose return address is neither.
    private func walkPrecisely(_ heap: CodeHeap, _ procs: ProcSystem, from start: UInt, into precise: inout Set<UInt>) {
        var frame = start
        var steps = 0
        while frame % 8 == 0, procs.isOnProcStacks(frame), steps < 10_000_000 {
            steps += 1
            let returnAddress = UnsafeRawPointer(bitPattern: frame + 8)!.load(as: UInt.self)
            if returnAddress != procs.routines.growReturn {
                guard let block = heap.owner(of: returnAddress &- 1) else { break }
                if precise.insert(frame + 8).inserted {
                    frames.append(Frame(slot: frame + 8, block: block, offset: returnAddress - block.entry))
                    block.frameEpoch = epoch
                }
            }
            let next = UnsafeRawPointer(bitPattern: frame)!.load(as: UInt.self)
            guard next != frame, next != 0 else { break }
            frame = next
        }
    }

    /// Scans every thread of a stopped world conservatively: registers, then the stack
    /// from below the red zone to the top of its mapping. A quiet thread (World.swift) that
    /// refers to code at all makes the scan incomplete: it could wake and run that code.
    /// Allocates nothing.
    func scanStoppedThreads(_ heap: CodeHeap, _ world: borrowing StoppedWorld, procs: ProcSystem?) {
        procThreadStackPointer = 0
        defer {
            // The procs of another thread: every segment and the C stack. Their tables are
            // read only when that thread was stopped outside the runtime's Swift.
            if let procs, procs.isRunning, !procs.isControllerThread {
                if procs.isConsistent { scanStoppedProcThread(heap, procs, sp: procThreadStackPointer) } else { isComplete = false }
            }
        }
        if !world.isComplete { isComplete = false }
        unresponsiveThreads = world.unresponsive
        for index in 0..<world.count where world.isStopped(index) || world.isQuiet(index) {
            let thread = world.thread(index)
            let quiet = world.isQuiet(index)
            threadsScanned += 1
            var refersToCode = false
            if quiet {
                refersToCode = pinIfCode(thread.pointee.registers.16, in: heap)  // rip
            } else {
                withUnsafeBytes(of: thread.pointee.registers) { registers in
                    for register in registers.bindMemory(to: UInt.self) { pinIfCode(register, in: heap) }
                }
            }
            let high = thread.pointee.stack_high
            let sp = thread.pointee.registers.7
            if let procs, procs.isRunning, procs.isOnProcStacks(sp) {
                // The proc thread, on a segment or the C stack: scanned below, with every proc.
                procThreadStackPointer = sp
                continue
            }
            guard high != 0 else {
                isComplete = false  // nowhere to read its stack from
                continue
            }
            // The 128 bytes below rsp (the red zone) may hold live values of a leaf function.
            var word = max(sp &- 128, thread.pointee.stack_low) & ~7
            var binding = false
            while word + 8 <= high {
                let value = UnsafeRawPointer(bitPattern: word)!.load(as: UInt.self)
                if value == resolverReturn || value == resolverReturnOffSegment { binding = true }
                if pinIfStackRoot(value, at: word, below: high, in: heap) { refersToCode = true }
                word += 8
            }
            if binding { threadsBinding += 1 }
            if quiet && refersToCode { isComplete = false }
        }
    }

    /// The proc thread stopped on a proc stack: every segment of every proc, the C stack and
    /// the scheduler's stack, conservatively. Allocates nothing.
    private func scanStoppedProcThread(_ heap: CodeHeap, _ procs: ProcSystem, sp: UInt) {
        func scan(_ from: UInt, _ to: UInt) {
            var word = from & ~7
            while word + 8 <= to {
                pinIfStackRoot(UnsafeRawPointer(bitPattern: word)!.load(as: UInt.self), at: word, below: to, in: heap)
                word += 8
            }
        }
        // sp is 0 when the thread was stopped on its own stack (scanned with the others).
        // The C stack holds frames only while a proc's call into C runs on it.
        if sp >= procs.cStackLow && sp < procs.cStackHigh { scan(max(sp &- 128, procs.cStackLow), procs.cStackHigh) }
        if let running = procs.running {
            procs.forEachSegment(of: running, from: procs.stacks.contains(sp) ? sp &- 128 : running.segment.base) { scan($0, $1) }
        }
        procs.forEachParkedSegment { scan($0, $1) }
        if sp != 0 { scan(procGlobals.pointee.scheduler_rsp, procs.schedulerStackTop) }
    }
}
