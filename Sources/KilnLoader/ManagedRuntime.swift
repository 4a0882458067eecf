// The managed heap of the process, and the world it collects in.
//
// One `ManagedHeap` serves every loader of the process: generated code finds
// its thread's allocation record through one thread-local pointer (CKilnShim's
// heap_entries.c), so a thread allocates in one heap whichever crate's code it
// runs. The heap is made on first use, with `ManagedRuntime.configure`'s
// configuration (`kiln run --heap-max`) or `KILN_STRESS`'s.
//
// Entries from generated code (bound as the runtime symbols below):
//   - `kiln.heap.allocate`, the allocation slow path: attaches a record to a
//     thread on its first allocation, then calls the heap's slow path; a
//     failure ends the program with a message naming the allocating function;
//   - `kiln.collect` (`$kiln.collect`): a full collection;
//   - `kiln.heap.check`, the checked access of `kiln run --checked`: a wrong
//     field, byte or length access ends the program naming the function;
//   - `kiln.heap.record.offset`: not an entry but a value, the record
//     pointer's offset from the thread pointer, read inline by allocation.
//
// The world (`HeapWorld`): a collection first takes the lock of every live
// loader (trying, so that it never waits on a thread that waits for the
// heap), then stops every other thread (World.swift's machinery, the same as
// compaction's). Roots it hands to the heap:
//   - the `r` data slots of every version of every crate of every loader
//     (current and retired versions: a kept slot keeps its object);
//   - the frames of generated code on every stack, found along the rbp chain
//     and read through the stack map at each frame's return address: from
//     the entry's noted frame on the collecting thread, from the stopped
//     registers on the others. A frame is trusted only when its return
//     address is exactly a safepoint of a code block.
// A stopped thread whose rip is inside a function that holds references is
// not at a safepoint: the stop is undone and tried again (up to a bound,
// after which the collection fails). A thread that does not answer the stop
// makes the collection fail the same way.
//
//   - the `r` slots of `thread` data, in every thread's block (CKilnShim's
//     thread_data.c lists them; its lock is only tried with the world
//     stopped, and a busy lock makes the stop try again).
// Limits of the walk, by design of this first version: frames of generated
// code that lie behind C frames are found only when the C code keeps the rbp
// chain (a callback called through qsort, say); and a thread that runs a
// loop without calls inside a function holding references is never at a
// safepoint (there are no polls on back edges yet): a collection waits for
// it to call something, and fails after about 100 ms of trying.

import CKilnShim
import KilnCode
import KilnManagedHeap
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The process's managed heap and its world; see the file comment.
public final class ManagedRuntime: HeapWorld, @unchecked Sendable {
    /// The configuration the heap will be made with (set it before the first allocation).
    private static let pendingConfiguration = Mutex<HeapConfiguration?>(nil)
    /// Every live loader, weakly, under `loaderLock`.
    nonisolated(unsafe) private static var loaders: [WeakLoader] = []
    private static let loaderLock = RuntimeLock()

    /// The heap, made on first use.
    public static let shared: ManagedRuntime = {
        let configuration = pendingConfiguration.withLock { $0 } ?? .fromEnvironment
        do {
            let heap = try ManagedHeap(configuration: configuration)
            let runtime = ManagedRuntime(heap: heap)
            heap.world = runtime
            return runtime
        } catch {
            fatal("cannot make the managed heap: \(error)")
        }
    }()

    /// Sets the configuration of the heap; true when it takes effect (the heap did not exist).
    @discardableResult
    public static func configure(_ configuration: HeapConfiguration) -> Bool {
        pendingConfiguration.withLock { $0 = configuration }
        return !isMade.load(ordering: .acquiring)
    }

    private static let isMade = Atomic<Bool>(false)

    /// Sets the heap's limit from a size such as `512M` or `2G` (`kiln run --heap-max`), with
    /// `KILN_STRESS`'s stress mode; a message when the size is not one, or is out of range.
    public static func configure(heapMax text: String) -> String? {
        guard let bytes = HeapConfiguration.bytes(from: text) else {
            return "--heap-max \(text): not a size (a number of bytes with an optional K, M or G)"
        }
        var configuration = HeapConfiguration.fromEnvironment
        configuration.limit = bytes
        if let problem = configuration.problem { return "--heap-max \(text): \(problem)" }
        configure(configuration)
        return nil
    }

    /// The heap's figures, one per line, or nil when the program made no heap.
    public static var statisticsText: String? {
        guard isMade.load(ordering: .acquiring) else { return nil }
        let runtime = shared
        let figures = runtime.heap.statistics
        let pauses = figures.pauses
        return """
            managed heap: \(figures.allocatedBytes) bytes allocated, \(figures.largeObjectsAllocated) large objects, limit \(figures.limit) bytes
            collections: \(figures.fullCollections) full, \(figures.minorCollections) minor, \(figures.copiedBytes) bytes copied, \(figures.liveBytesAfterFullCollection) bytes live after the last
            pauses: p50 \(pauses.percentile(0.5) / 1000) µs, p99 \(pauses.percentile(0.99) / 1000) µs, longest \(pauses.longestNanoseconds / 1000) µs; stops tried again: \(runtime.failedStops)
            """
    }

    public let heap: ManagedHeap
    /// Collections that could not stop the world, attempts included.
    public private(set) var failedStops = 0
    /// Loaders locked for the collection in progress.
    private var locked: [Loader] = []
    /// Every thread's block of `thread` data, read while the world is stopped (the arrays
    /// are sized before the stop; a stop that finds more blocks sizes them and tries again).
    private var threadBlocks = UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>.allocate(capacity: 64)
    private var threadBlockBytes = UnsafeMutablePointer<Int>.allocate(capacity: 64)
    private var threadBlockCapacity = 64
    private var threadBlockCount = 0
    /// Threads in the stopped world's table while a collection runs.
    private var stoppedCount = 0

    private init(heap: ManagedHeap) {
        self.heap = heap
        Self.isMade.store(true, ordering: .releasing)
    }

    // MARK: Loaders

    final class WeakLoader {
        weak var loader: Loader?
        init(_ loader: Loader) { self.loader = loader }
    }

    static func register(_ loader: Loader) {
        kiln_heap_install_handlers(allocateHandler, collectHandler, checkHandler)
        loaderLock.locked {
            loaders.removeAll { $0.loader == nil }
            loaders.append(WeakLoader(loader))
        }
    }

    static func unregister(_ loader: Loader) {
        loaderLock.locked { loaders.removeAll { $0.loader == nil || $0.loader === loader } }
    }

    static var liveLoaders: [Loader] { loaderLock.locked { loaders.compactMap(\.loader) } }

    /// Runtime symbols for generated code (see the file comment).
    static var symbols: [String: UInt] {
        [
            "kiln.heap.allocate": UInt(bitPattern: kiln_heap_allocate_entry()),
            "kiln.heap.record.offset": UInt(bitPattern: kiln_heap_record_offset()),
            "kiln.collect": UInt(bitPattern: kiln_heap_collect_entry()),
            "kiln.heap.check": UInt(bitPattern: kiln_heap_check_entry()),
        ]
    }

    // MARK: Entries

    /// The calling thread's record, attached on first use.
    func record(_ current: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<AllocationRecord> {
        if let current, current != kiln_heap_empty_record() {
            return current.assumingMemoryBound(to: AllocationRecord.self)
        }
        do {
            let record = try heap.attach()
            kiln_heap_set_thread_record(UnsafeMutableRawPointer(record))
            return record
        } catch {
            Self.fatal("cannot attach a thread to the managed heap: \(error)")
        }
    }

    private static let allocateHandler: kiln_heap_allocate_handler = { record, header, _, returnAddress in
        let runtime = ManagedRuntime.shared
        let attached = runtime.record(record)
        runtime.noteStackTop()
        let result = kiln_heap_allocate_slow(UnsafeMutableRawPointer(attached), header)
        if result == 0 {
            fatal("\(attached.pointee.error) (allocating in \(describe(returnAddress)))")
        }
        return result
    }

    private static let collectHandler: kiln_heap_collect_handler = { record, _, returnAddress in
        let runtime = ManagedRuntime.shared
        let attached = runtime.record(record)
        runtime.noteStackTop()
        let status = kiln_heap_collect(UnsafeMutableRawPointer(attached), 1)
        if status != 0 {
            fatal("\(attached.pointee.error) (collecting in \(describe(returnAddress)))")
        }
    }

    private static let checkHandler: kiln_heap_check_handler = { record, object, index, access, returnAddress in
        let runtime = ManagedRuntime.shared
        let attached = runtime.record(record)
        let address = kiln_heap_checked_access(UnsafeMutableRawPointer(attached), object, index, access)
        if address == 0 {
            let what = access == 0 ? "field \(index)" : access == 1 ? "byte \(index)" : "the length"
            fatal("\(attached.pointee.error) (reading or writing \(what) in \(describe(returnAddress)))")
        }
        return address
    }

    /// Records the calling thread's stack top in its thread-local slot when not known yet.
    func noteStackTop() {
        if kiln_heap_thread_stack_top() == 0 { kiln_heap_set_thread_stack_top(System.stackTop()) }
    }

    /// Reports a fatal error of the running program and ends the process (status 70), as the
    /// loader does for its own (Binding.swift).
    static func fatal(_ message: String) -> Never {
        System.flushAllStreams()
        System.writeStandardError("kiln: error: \(message)\n")
        _exit(70)
    }

    /// The function (and crate) whose code holds `returnAddress`.
    static func describe(_ returnAddress: UInt) -> String {
        for loader in liveLoaders {
            let found: String? = loader.lock.locked {
                guard let block = loader.heap.owner(of: returnAddress - 1) else { return nil }
                let offset = returnAddress - block.entry
                return "$\(block.name) of crate \(block.crateName ?? "?") at +0x\(String(offset, radix: 16))"
            }
            if let found { return found }
        }
        return "code at 0x\(String(returnAddress, radix: 16))"
    }

    // MARK: HeapWorld

    public func stopForCollection() -> Bool {
        for _ in 0..<200 {
            if tryStop() { return true }
            failedStops += 1
            System.sleep(microseconds: 500)
        }
        return false
    }

    /// One attempt: every loader locked, every other thread stopped at a safepoint or in C.
    private func tryStop() -> Bool {
        locked = Self.liveLoaders
        for (index, loader) in locked.enumerated() where !loader.lock.tryLock() {
            for other in locked[..<index] { other.lock.unlock() }
            locked = []
            return false
        }
        let count = kiln_world_stop(World.timeoutMilliseconds)
        guard count >= 0 else {
            unlockLoaders()
            return false
        }
        stoppedCount = Int(count)
        for index in 0..<stoppedCount where !isSafe(kiln_world_thread(Int32(index))!.pointee) {
            kiln_world_resume()
            unlockLoaders()
            return false
        }
        var blocks = 0
        let complete = threadBlockBytes.withMemoryRebound(to: Int.self, capacity: threadBlockCapacity) { bytes in
            bytes.withMemoryRebound(to: size_t.self, capacity: threadBlockCapacity) { sizes in
                kiln_tls_try_snapshot(threadBlocks, sizes, threadBlockCapacity, &blocks)
            }
        }
        guard complete != 0 else {
            kiln_world_resume()
            unlockLoaders()
            if blocks > threadBlockCapacity { growThreadBlocks(to: blocks) }
            return false
        }
        threadBlockCount = blocks
        return true
    }

    /// Room for `count` thread blocks and more (with the world running).
    private func growThreadBlocks(to count: Int) {
        threadBlocks.deallocate()
        threadBlockBytes.deallocate()
        threadBlockCapacity = count * 2
        threadBlocks = .allocate(capacity: threadBlockCapacity)
        threadBlockBytes = .allocate(capacity: threadBlockCapacity)
    }

    private func unlockLoaders() {
        for loader in locked { loader.lock.unlock() }
        locked = []
    }

    /// Whether a stopped thread's references are all where the walk finds them.
    private func isSafe(_ thread: kiln_stopped_thread) -> Bool {
        switch Int(thread.state) {
        case KILN_THREAD_EXITED:
            return true
        case KILN_THREAD_STOPPED:
            let rip = thread.registers.16
            guard let block = block(containing: rip) else { return true }
            // Inside a function that holds references, or in its prologue (where the
            // caller's return address is not yet under an rbp): not a safepoint.
            return !hasStackMaps(block) && rip - block.entry >= 4
        case KILN_THREAD_QUIET:
            // Blocked in the kernel with only rsp known: safe when no frame of generated
            // code that holds references is on its stack.
            return !stackHoldsSafepoints(low: thread.registers.7, high: thread.stack_high)
        default:
            return false
        }
    }

    public func visitRoots(_ visitor: borrowing RootVisitor) {
        for loader in locked {
            for crate in loader.registry.loaded {
                visitData(of: crate, visitor)
            }
            for crate in loader.registry.unloaded {
                visitData(of: crate, visitor)
            }
        }
        let procs = ProcSystem.active
        let frame = kiln_heap_entry_frame()
        if frame != 0 {
            walk(frame: frame, returnAddress: kiln_heap_entry_return(), low: frame,
                 high: kiln_heap_thread_stack_top(), procs: procs, proc: procs?.running, visitor)
        }
        for index in 0..<stoppedCount {
            let thread = kiln_world_thread(Int32(index))!.pointee
            guard Int(thread.state) == KILN_THREAD_STOPPED else { continue }
            walk(frame: thread.registers.6, returnAddress: thread.registers.16,
                 low: thread.registers.7, high: thread.stack_high, procs: nil, proc: nil, visitor)
        }
        // Procs: every parked proc's frames, messages waiting in mailboxes and the
        // arguments of procs that have not run yet.
        if let procs {
            procs.forEachParkedFrame { proc, frame, returnAddress in
                walk(frame: frame, returnAddress: returnAddress, low: 0, high: 0, procs: procs, proc: proc, visitor)
            }
            procs.forEachManagedWord { visitor.visit($0) }
        }
    }

    public func resumeAfterCollection() {
        kiln_world_resume()
        stoppedCount = 0
        unlockLoaders()
    }

    private func visitData(of crate: CrateState, _ visitor: borrowing RootVisitor) {
        if let current = crate.current { visitData(of: current, visitor) }
        for version in crate.retired { visitData(of: version, visitor) }
    }

    /// The `r` slots of a version's data, and of its `thread` data in every thread's block.
    private func visitData(of version: CrateVersion, _ visitor: borrowing RootVisitor) {
        for (index, object) in version.module.data.enumerated() where !object.managedSlots.isEmpty {
            if object.isThreadLocal {
                guard let offset = version.threadOffsets[index] else { continue }
                for block in 0..<threadBlockCount {
                    guard let base = threadBlocks[block] else { continue }
                    for slot in object.managedSlots where offset + Int(slot) + 8 <= threadBlockBytes[block] {
                        visitor.visit(UnsafeMutableRawPointer(base + offset + Int(slot)).assumingMemoryBound(to: UInt64.self))
                    }
                }
                continue
            }
            guard index < version.dataAddresses.count, let base = version.dataAddresses[index] else { continue }
            for slot in object.managedSlots {
                visitor.visit(UnsafeMutablePointer<UInt64>(bitPattern: base + UInt(slot))!)
            }
        }
    }

    // MARK: Frames

    /// The code block holding `address`, in any locked loader.
    private func block(containing address: UInt) -> CodeBlock? {
        for loader in locked {
            if let block = loader.heap.owner(of: address) { return block }
        }
        return nil
    }

    private func hasStackMaps(_ block: CodeBlock) -> Bool {
        guard let version = block.version, block.functionIndex < version.module.functions.count else { return false }
        return !version.module.functions[block.functionIndex].stackMaps.isEmpty
    }

    /// The slots of the stack map at `returnAddress`, when it is exactly a safepoint.
    private func safepointSlots(at returnAddress: UInt) -> [Int32]? {
        guard let block = block(containing: returnAddress - 1), let version = block.version,
              block.functionIndex < version.module.functions.count else { return nil }
        let maps = version.module.functions[block.functionIndex].stackMaps
        let offset = UInt32(truncatingIfNeeded: returnAddress - block.entry)
        var low = 0, high = maps.count
        while low < high {
            let middle = (low + high) / 2
            if maps[middle].codeOffset < offset { low = middle + 1 } else { high = middle }
        }
        return low < maps.count && maps[low].codeOffset == offset ? maps[low].frameSlots : nil
    }

    /// Whether a stack holds a return address that is a safepoint with references.
    private func stackHoldsSafepoints(low: UInt, high: UInt) -> Bool {
        guard low != 0, high > low else { return false }
        var address = low & ~7
        while address + 8 <= high {
            let word = UnsafePointer<UInt>(bitPattern: address)!.pointee
            if word > 1, let slots = safepointSlots(at: word), !slots.isEmpty { return true }
            address += 8
        }
        return false
    }

    /// Visits the frames along the rbp chain from `frame`, whose code returns to
    /// `returnAddress` (see the file comment).
    ///
    /// On the proc thread (`procs`), frames of `proc` lie on its segments in any order: a
    /// frame there is followed wherever it leads (at most a bound of steps), and a return
    /// address into the grow routine stands for the one it keeps in the segment's header.
    private func walk(frame: UInt, returnAddress: UInt, low: UInt, high: UInt, procs: ProcSystem?, proc: Proc?,
                      _ visitor: borrowing RootVisitor) {
        var frame = frame, returnAddress = returnAddress
        var steps = 0
        while frame % 8 == 0, steps < 100_000_000 {
            steps += 1
            let onProcStacks = procs?.isOnProcStacks(frame) ?? false
            guard onProcStacks || (frame >= low && frame != 0 && (high == 0 || frame + 16 <= high)) else { return }
            if let procs, let proc, returnAddress == procs.routines.growReturn {
                returnAddress = procs.returnAddress(behindGrowOf: frame, in: proc)
            }
            if let slots = safepointSlots(at: returnAddress) {
                for slot in slots {
                    visitor.visit(UnsafeMutablePointer<UInt64>(bitPattern: UInt(bitPattern: Int(bitPattern: frame) + Int(slot)))!)
                }
            }
            let next = UnsafePointer<UInt>(bitPattern: frame)!.pointee
            returnAddress = UnsafePointer<UInt>(bitPattern: frame + 8)!.pointee
            guard next > frame || (onProcStacks && next != 0 && next != frame) else { return }
            frame = next
        }
    }
}
