// Procs: lightweight processes on segmented stacks, scheduled on one thread.
//
// A program that calls a proc service runs its `main` as the first proc
// (`Crate.runMain`); the thread that called `runMain` becomes the *proc
// thread*: it runs the scheduler loop on its own stack and every proc on
// segments from `ProcStacks`. Control passes only at service calls (`yield`,
// a `receive` with an empty mailbox) and when a proc returns: a proc runs
// until it gives the thread up. The program ends when `main` returns; procs
// still waiting then are dropped with the process.
//
// Where code runs while procs exist:
// - generated code of a proc: on its segments, grown by `ProcRoutines.grow`;
// - Swift (services, growing) and C functions a proc calls: on the *C
//   stack*, a mapping of its own above the segments (C does not check stack
//   limits, and a segment may be a kilobyte);
// - the scheduler: on the proc thread's own stack.
// A C function that calls back into generated code runs that code on the C
// stack, where every limit check passes; a proc service called from there
// may not park (it would leave C frames behind on a stack other procs use):
// `yield` does nothing there and a `receive` that would wait is an error.
//
// Messages are the IL's `r` words, queued per proc in arrival order and never
// copied or inspected: a message is shared, immutable by contract (see
// docs/IL-EXTENSIONS.md).

import CKilnShim
import KilnCode
#if canImport(Glibc)
import Glibc
#endif

/// The words shared with generated code and the routines (CKilnShim.h, "Procs").
nonisolated(unsafe) let procGlobals: UnsafeMutablePointer<kiln_proc_globals> = kiln_procs_address()
nonisolated(unsafe) let stackLimitWord: UnsafeMutablePointer<UInt> = kiln_stack_limit_address()
nonisolated(unsafe) let schedulerRspWord: UnsafeMutablePointer<UInt> =
    (UnsafeMutableRawPointer(procGlobals) + MemoryLayout<kiln_proc_globals>.offset(of: \.scheduler_rsp)!).assumingMemoryBound(to: UInt.self)

/// One proc: its control words, segments and mailbox.
final class Proc {
    enum State { case runnable, running, waiting, finished }

    let id: Int
    /// The proc's control words, read and written by the routines too (`ProcRoutines.grow`
    /// takes the spare and gives it back without calling Swift): the saved stack pointer
    /// while the proc does not run (the word `swap` writes), the base of the segment it
    /// runs on, and the base of a segment it left lately (0: none), kept against hot splits.
    let savedRsp: UnsafeMutablePointer<UInt>
    static let segmentWord = 1, spareWord = 2, controlWords = 3

    var segment: Segment {
        get { Segment(base: savedRsp[Self.segmentWord]) }
        set { savedRsp[Self.segmentWord] = newValue.base }
    }
    var spare: Segment? {
        get { savedRsp[Self.spareWord] == 0 ? nil : Segment(base: savedRsp[Self.spareWord]) }
        set { savedRsp[Self.spareWord] = newValue?.base ?? 0 }
    }
    var state = State.runnable
    /// Set by a `yield` that parked, so its second call returns.
    var yielded = false
    /// Whether it has run (before, its argument waits in its first saved registers).
    var hasRun = false
    /// Its place in `ProcTable.values`.
    var tableIndex = 0
    /// Procs to notify when it ends.
    var linked: [Int] = []
    /// When a `receive_within` gives up (monotonic ns), while it waits with a time limit.
    var deadline: UInt64?
    /// Whether its last `receive_within` ran out of time.
    var timedOut = false
    /// Set when its deadline made it runnable, until its `receive_within` sees it.
    var wokeByTimer = false
    /// Whether the runtime ended it (stack limit, a frame too large).
    var ended = false
    var mailbox = Mailbox()
    /// The function it runs, for messages.
    let entry: UInt
    /// Bytes of all its segments.
    var stackBytes: Int
    var result: UInt = 0

    init(id: Int, entry: UInt, segment: Segment) {
        self.id = id
        self.entry = entry
        self.stackBytes = Int(segment.size)
        savedRsp = .allocate(capacity: Self.controlWords)
        savedRsp.initialize(repeating: 0, count: Self.controlWords)
        savedRsp[Self.segmentWord] = segment.base
    }

    deinit { savedRsp.deallocate() }
}

/// The procs alive, by id (ids count up from 1 and are never reused) and as a dense list.
struct ProcTable {
    private var byID: [Proc?] = []
    private(set) var values: [Proc] = []

    var count: Int { values.count }

    func proc(_ id: Int) -> Proc? {
        id >= 1 && id <= byID.count ? byID[id - 1] : nil
    }

    mutating func insert(_ proc: Proc) {
        while byID.count < proc.id { byID.append(nil) }
        byID[proc.id - 1] = proc
        proc.tableIndex = values.count
        values.append(proc)
    }

    mutating func remove(_ proc: Proc) {
        byID[proc.id - 1] = nil
        let last = values.removeLast()
        if last !== proc {
            values[proc.tableIndex] = last
            last.tableIndex = proc.tableIndex
        }
    }
}

/// A first-in first-out queue of words, in a circular buffer whose capacity is a power of
/// two (no shifting, no allocation once it has grown to its largest).
struct Mailbox {
    private var storage: [UInt64] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ value: UInt64) {
        if count == storage.count {
            var larger = [UInt64](repeating: 0, count: max(4, storage.count * 2))
            for index in 0..<count { larger[index] = storage[(head + index) & (storage.count - 1)] }
            storage = larger
            head = 0
        }
        storage[(head + count) & (storage.count - 1)] = value
        count += 1
    }

    mutating func removeFirst() -> UInt64 {
        let value = storage[head]
        head = (head + 1) & (storage.count - 1)
        count -= 1
        return value
    }

    /// Calls `body` with the address of every queued word (the collector updates them).
    /// Allocates nothing: the storage is the mailbox's own.
    mutating func forEachWord(_ body: (UnsafeMutablePointer<UInt64>) -> Void) {
        let head = self.head, count = self.count
        storage.withUnsafeMutableBufferPointer { buffer in
            for offset in 0..<count { body(buffer.baseAddress! + ((head + offset) & (buffer.count - 1))) }
        }
    }
}

/// A first-in first-out queue in a circular buffer whose capacity is a power of two: no
/// shifting, and no allocation once it has grown to its largest.
struct Ring<Element> {
    private var storage: [Element?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ element: Element) {
        if count == storage.count { grow() }
        storage[(head + count) & (storage.count - 1)] = element
        count += 1
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head]
        storage[head] = nil
        head = (head + 1) & (storage.count - 1)
        count -= 1
        return element
    }

    private mutating func grow() {
        var larger = [Element?](repeating: nil, count: max(4, storage.count * 2))
        for index in 0..<count { larger[index] = storage[(head + index) & (storage.count - 1)] }
        storage = larger
        head = 0
    }

}

/// Limits on procs; a proc beyond its stack limit is ended, a spawn beyond the count refused.
public struct ProcLimits: Sendable {
    /// Bytes of stack one proc may use across its segments.
    public var stackBytesPerProc = 64 << 20
    /// Procs alive at once.
    public var procs = 4_000_000
    public init() {}
}

/// The procs of a loader: segments, routines, the scheduler and the services.
final class ProcSystem {
    unowned let loader: Loader
    let stacks: ProcStacks
    var routines: ProcRoutines!
    let limits: ProcLimits
    /// The stack Swift and C run on while a proc is on a segment.
    let cStackLow: UInt
    let cStackHigh: UInt
    private static let cStackSize = 8 << 20
    /// Trampolines by service name, and C thunks by target.
    private var trampolines: [String: UInt] = [:]
    private var nativeThunks: [UInt: UInt] = [:]

    private var procs = ProcTable()
    private var runQueue = Ring<Proc>()
    private(set) var running: Proc?
    private var nextID = 1
    private var thread: pthread_t?
    /// Figures for `--stats` (`Loader.procStatisticsText`); switches are counted in
    /// `kiln_procs.switches`, where the ticker reads them.
    private(set) var spawned = 0
    private(set) var segmentsGrown = 0
    private(set) var preemptions = 0
    private(set) var peakProcs = 0

    /// The system whose scheduler runs now, if any: services find it here. One per process.
    nonisolated(unsafe) static var active: ProcSystem?

    /// How long a proc runs before it is asked to give the thread up at its next call:
    /// `KILN_PROC_SLICE_US`, 10 ms by default.
    static let sliceMicroseconds: Int = {
        guard let text = System.environmentValue("KILN_PROC_SLICE_US"), let value = Int(text), value > 0 else { return 10_000 }
        return value
    }()

    /// The first segment of a proc.
    static let firstOrder = 9

    init(loader: Loader, limits: ProcLimits) throws(LoadError) {
        self.loader = loader
        self.limits = limits
        stacks = try ProcStacks()
        let cStack: UnsafeMutableRawPointer
        do {
            cStack = try System.reserveUnused(Self.cStackSize)
            try System.mapAnonymous(cStack, Self.cStackSize)
        } catch {
            throw .system(error)
        }
        cStackLow = UInt(bitPattern: cStack)
        cStackHigh = cStackLow + UInt(Self.cStackSize)
        routines = try ProcRoutines(heap: loader.heap, stacks: stacks, grow: { frame, wanted in
            ProcSystem.active!.grow(frame: frame, wanted: wanted)
        }, shrink: {
            ProcSystem.active!.shrink()
        }, exit: { result in
            ProcSystem.active!.finish(result: result)
        }, fault: { signal, address, pc, frame in
            ProcSystem.active!.faulted(signal: signal, address: address, pc: pc, frame: frame)
        })
    }

    deinit {
        System.unmap(UnsafeMutableRawPointer(bitPattern: cStackLow)!, Self.cStackSize)
    }

    // MARK: Binding

    /// The trampoline code calls for the proc service `name` (without `kiln.`).
    func trampoline(for name: String) throws(LoadError) -> UInt {
        if let address = trampolines[name] { return address }
        let entry: ServiceEntry
        switch name {
        case "spawn": entry = { a, b, frame, onSegment in ProcSystem.service("spawn", frame) { $0.spawnService(function: UInt(a), argument: b, frame: frame) } }
        case "self": entry = { _, _, frame, _ in ProcSystem.service("self", frame) { $0.selfService(frame: frame) } }
        case "send": entry = { a, b, frame, _ in ProcSystem.service("send", frame) { $0.sendService(to: Int(bitPattern: UInt(a)), message: b) } }
        case "receive": entry = { _, _, frame, onSegment in ProcSystem.service("receive", frame) { $0.receiveService(onSegment: onSegment != 0, frame: frame) } }
        case "yield": entry = { _, _, frame, onSegment in ProcSystem.service("yield", frame) { $0.yieldService(onSegment: onSegment != 0) } }
        case "receive_within": entry = { a, _, frame, onSegment in
            ProcSystem.service("receive_within", frame) { $0.receiveService(onSegment: onSegment != 0, frame: frame, within: a) }
        }
        case "timed_out": entry = { _, _, frame, _ in ProcSystem.service("timed_out", frame) { $0.timedOutService(frame: frame) } }
        case "link": entry = { a, _, frame, _ in ProcSystem.service("link", frame) { $0.linkService(to: Int(bitPattern: UInt(a)), frame: frame) } }
        default: throw .invalidArgument("$kiln.\(name) is not a proc service")
        }
        let address = try ProcRoutines.makeTrampoline(entry: UInt(bitPattern: unsafeBitCast(entry, to: Int.self)),
                                                      routines: routines, stacks: stacks, heap: loader.heap)
        trampolines[name] = address
        return address
    }

    static let serviceNames: Set<String> = ["spawn", "self", "send", "receive", "yield", "receive_within", "timed_out", "link"]

    typealias ServiceEntry = @convention(c) (UInt64, UInt64, UInt, UInt64) -> kiln_service_result

    /// The C function at `target` as code on a segment must call it.
    func nativeThunk(for target: UInt) throws(LoadError) -> UInt {
        if let thunk = nativeThunks[target] { return thunk }
        let thunk = try routines.makeNativeThunk(for: target, heap: loader.heap)
        nativeThunks[target] = thunk
        return thunk
    }

    /// Runs a service's body with the active system, or ends the program saying the caller
    /// is not on the proc thread.
    private static func service(_ name: String, _ frame: UInt, _ body: (ProcSystem) -> kiln_service_result) -> kiln_service_result {
        guard let system = active, let thread = system.thread, pthread_equal(thread, pthread_self()) != 0 else {
            let loader = active?.loader
            let caller = loader.map { $0.callerName(frame: frame) } ?? ""
            let message = "$kiln.\(name) called\(caller) on a thread that is not running procs"
            if let loader { loader.fail(message) }
            System.flushAllStreams()
            System.writeStandardError("kiln: error: \(message)\n")
            _exit(70)
        }
        system.inRuntime = true
        defer { system.inRuntime = false }
        return body(system)
    }

    /// Whether the proc thread runs the runtime's Swift (the scheduler, a service, growing
    /// a stack), where the tables of procs may be half changed: a thread that stops the
    /// world then must not read them (`isConsistent`), and tries again later.
    var inRuntime = false

    /// Whether another thread, having stopped the world, may read the procs' tables now.
    var isConsistent: Bool { !inRuntime || isControllerThread }

    /// Whether the calling thread is the proc thread.
    var isControllerThread: Bool { thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }

    // MARK: Scheduling

    /// Runs `entry(first, second, third)` as the first proc and every proc it starts, until
    /// it returns; its result (the low 32 bits, as a C `main`'s) is the status.
    func run(entry: UInt, arguments: (UInt, UInt, UInt)) throws(LoadError) -> Int32 {
        guard Self.active == nil else { throw .invalidArgument("procs already run on another thread of this process") }
        Self.active = self
        inRuntime = true
        thread = pthread_self()
        schedulerStackTop = System.stackTop()
        procGlobals.pointee.region_low = stacks.low
        procGlobals.pointee.region_high = stacks.high
        procGlobals.pointee.native_rsp = cStackHigh - 64
        defer {
            Self.active = nil
            inRuntime = false
            thread = nil
            stackLimitWord.pointee = 0
            procGlobals.pointee.current = 0
        }
        let alternate = System.installAlternateSignalStack()
        kiln_proc_set_fault_routine(routines.fault)
        kiln_proc_ticker(Self.sliceMicroseconds)
        defer {
            kiln_proc_ticker(0)
            kiln_proc_set_fault_routine(0)
            System.removeAlternateSignalStack(alternate)
        }
        let swap = unsafeBitCast(routines.swap, to: (@convention(c) (UnsafeMutablePointer<UInt>, UInt) -> Void).self)
        guard let main = makeProc(entry: entry, arguments: arguments) else {
            throw .invalidArgument("no room for the first proc's stack")
        }
        while main.state != .finished {
            // A sleep until the earliest time limit may end early (a signal: the runtime's
            // stops, the program's own): sleep again until some proc can run.
            while !timers.isEmpty {
                wakeTimedOut(waiting: runQueue.isEmpty)
                if !runQueue.isEmpty { break }
            }
            guard let proc = nextRunnable() else {
                loader.fail("every proc waits in $kiln.receive and none can send: proc \(main.id) (main) waits forever")
            }
            running = proc
            proc.state = .running
            proc.hasRun = true
            procGlobals.pointee.preempt = 0
            procGlobals.pointee.switches &+= 1
            procGlobals.pointee.current = UInt(bitPattern: proc.savedRsp)
            stackLimitWord.pointee = proc.segment.limit
            inRuntime = false
            swap(schedulerRspWord, proc.savedRsp.pointee)
            inRuntime = true
            stackLimitWord.pointee = 0
            procGlobals.pointee.current = 0
            running = nil
            switch proc.state {
            case .finished:
                notifyLinks(of: proc)
                retire(proc)
            case .running:
                proc.state = .runnable
                enqueue(proc)
            case .runnable, .waiting: break
            }
        }
        // Procs still alive when main returns end with the program.
        for proc in procs.values { releaseSegments(of: proc) }
        procs = ProcTable()
        runQueue = Ring<Proc>()
        return Int32(truncatingIfNeeded: main.result)
    }

    private func nextRunnable() -> Proc? {
        runQueue.popFirst()
    }

    private func enqueue(_ proc: Proc) { runQueue.append(proc) }

    // MARK: Time limits and links

    /// Procs waiting in `receive_within`, with their deadlines (a few: a plain list).
    private var timers: [(deadline: UInt64, proc: Proc)] = []

    /// Makes runnable every proc whose time ran out; when nothing else can run (`waiting`),
    /// first sleeps until the earliest deadline.
    private func wakeTimedOut(waiting: Bool) {
        var now = UInt64(System.monotonicNanoseconds())
        if waiting, let earliest = timers.map(\.deadline).min(), earliest > now {
            // Nothing changes the tables while the thread sleeps: a stop may read them.
            inRuntime = false
            System.sleep(microseconds: Int((earliest - now + 999) / 1000))
            inRuntime = true
            now = UInt64(System.monotonicNanoseconds())
        }
        timers.removeAll { entry in
            let proc = entry.proc
            // A message ended the wait already, or the proc is gone.
            guard proc.state == .waiting, proc.deadline == entry.deadline else { return true }
            guard entry.deadline <= now else { return false }
            proc.deadline = nil
            proc.wokeByTimer = true
            proc.state = .runnable
            enqueue(proc)
            return true
        }
    }

    /// Sends each proc linked to `proc` its notice (see `$kiln.link`).
    private func notifyLinks(of proc: Proc) {
        let notice = Self.notice(of: proc)
        for id in proc.linked {
            _ = sendService(to: id, message: notice)
        }
        proc.linked.removeAll()
    }

    /// The message a linked proc gets when `proc` ends: the tagged integer -id, or
    /// -id - 2^32 when the runtime ended it.
    static func notice(of proc: Proc) -> UInt64 {
        let value = -Int64(proc.id) - (proc.ended ? Int64(1) << 32 : 0)
        return UInt64(bitPattern: value << 1)
    }

    /// A new proc whose first swap enters `ProcRoutines.start` with its function and arguments.
    private func makeProc(entry: UInt, arguments: (UInt, UInt, UInt)) -> Proc? {
        guard let base = stacks.allocate(order: Self.firstOrder) else { return nil }
        let segment = Segment.make(at: base, order: Self.firstOrder, previous: nil, returnRsp: 0)
        let proc = Proc(id: nextID, entry: entry, segment: segment)
        nextID += 1
        // The first swap pops r15, r14, r13, r12, rbx, rbp and returns into `start`, with
        // the stack 16-byte aligned at `start`'s call.
        let saved = segment.top - 72
        let words: [UInt] = [arguments.2, arguments.1, entry, arguments.0, 0, 0, routines.start]
        for (index, word) in words.enumerated() {
            UnsafeMutableRawPointer(bitPattern: saved + UInt(8 * index))!.storeBytes(of: word, as: UInt.self)
        }
        proc.savedRsp.pointee = saved
        procs.insert(proc)
        spawned += 1
        peakProcs = max(peakProcs, procs.count)
        enqueue(proc)
        return proc
    }

    private func retire(_ proc: Proc) {
        releaseSegments(of: proc)
        procs.remove(proc)
    }

    private func releaseSegments(of proc: Proc) {
        var segment: Segment? = proc.segment
        while let current = segment {
            segment = current.previous
            stacks.release(current.base, order: current.order)
        }
        if let spare = proc.spare { stacks.release(spare.base, order: spare.order) }
        proc.spare = nil
    }

    // MARK: Routines' entries (on the C stack)

    /// The proc returned from its function (`start`).
    func finish(result: UInt) {
        inRuntime = true
        defer { inRuntime = false }
        guard let proc = running else { return }
        proc.result = result
        proc.state = .finished
    }

    /// A prologue check failed on a segment: the frame at `frame` is `grow`'s (see
    /// ProcRoutines), `wanted` the lowest address the function needs. Returns the new
    /// stack pointer, or 0 when the proc has to end (its stack is over the limit).
    func grow(frame: UInt, wanted: UInt) -> UInt {
        inRuntime = true
        defer { inRuntime = false }
        guard let proc = running else { loader.fail("internal error: a segment grew with no proc running") }
        if procGlobals.pointee.preempt != 0 {
            // The ticker asked the proc to give the thread up: park it (the routine keeps its
            // registers and enters grow again when it runs) behind the procs waiting to run.
            procGlobals.pointee.preempt = 0
            stackLimitWord.pointee = proc.segment.limit
            procGlobals.pointee.gprs.7 = wanted
            preemptions += 1
            return 1
        }
        let argumentBytes = Int(UnsafeRawPointer(bitPattern: frame)!.load(as: UInt.self))
        let reentry = UnsafeRawPointer(bitPattern: frame + 8)!.load(as: UInt.self)
        let entryRsp = frame + 16
        let below = Int(entryRsp &- wanted)
        let usable = argumentBytes + 8 + below + 64
        // Geometric growth: each new segment is at least twice the one before.
        let order = max(ProcStacks.order(forUsable: usable) ?? Int.max, min(proc.segment.order + 1, ProcStacks.maximumOrder))
        guard order <= ProcStacks.maximumOrder else {
            reportProcFault(proc, "a frame of \(below) bytes is larger than a stack segment (at most \(1 << ProcStacks.maximumOrder) bytes)", returnAddress: reentry)
            return 0
        }
        let base: UInt
        if let spare = proc.spare, spare.order >= order {
            base = spare.base
            proc.spare = nil
        } else {
            guard proc.stackBytes + (1 << order) <= limits.stackBytesPerProc else {
                reportProcFault(proc, "its stack would grow past \(limits.stackBytesPerProc) bytes", returnAddress: reentry)
                return 0
            }
            guard let fresh = stacks.allocate(order: order) else {
                reportProcFault(proc, "no room for another stack segment (\(stacks.bytesInUse) bytes in use)", returnAddress: reentry)
                return 0
            }
            base = fresh
            proc.stackBytes += 1 << order
        }
        let grownOrder = base == proc.spare?.base ? proc.spare!.order : order
        let segment = Segment.make(at: base, order: grownOrder, previous: proc.segment, returnRsp: entryRsp)
        let newRsp = (segment.top - UInt(argumentBytes)) & ~15
        if argumentBytes > 0 {
            UnsafeMutableRawPointer(bitPattern: newRsp)!.copyMemory(from: UnsafeRawPointer(bitPattern: entryRsp + 8)!, byteCount: argumentBytes)
        }
        proc.segment = segment
        stackLimitWord.pointee = segment.limit
        procGlobals.pointee.gprs.7 = reentry
        segmentsGrown += 1
        return newRsp
    }

    /// The function that grew a segment returned: back to the segment before, keeping the
    /// one it leaves as the proc's spare. Returns where the stack pointer goes.
    func shrink() -> UInt {
        inRuntime = true
        defer { inRuntime = false }
        guard let proc = running, let previous = proc.segment.previous else {
            loader.fail("internal error: a segment was given back with no proc or none before it")
        }
        let leaving = proc.segment
        proc.segment = previous
        if let spare = proc.spare {
            if spare.order >= leaving.order {
                stacks.release(leaving.base, order: leaving.order)
                proc.stackBytes -= 1 << leaving.order
            } else {
                stacks.release(spare.base, order: spare.order)
                proc.stackBytes -= 1 << spare.order
                proc.spare = leaving
            }
        } else {
            proc.spare = leaving
        }
        stackLimitWord.pointee = previous.limit
        return leaving.returnRsp
    }

    /// A fault in the running proc's own code (the crash handler sent it here, on the C
    /// stack): the proc ends with a one-line report, its links are told, the others go on.
    func faulted(signal: Int32, address: UInt, pc: UInt, frame: UInt) {
        inRuntime = true
        defer { inRuntime = false }
        guard let proc = running else { return }
        let name = String(cString: strsignal(signal))
        let place = loader.describeFrame(at: pc).map { $0.isEmpty ? "" : " in \($0)" } ?? ""
        System.writeStandardError("kiln: proc \(proc.id)\(place) ended: \(name) at address 0x\(String(address, radix: 16))\n")
        proc.result = 0
        proc.ended = true
        proc.state = .finished
    }

    private func reportProcFault(_ proc: Proc, _ what: String, returnAddress: UInt) {
        let function = loader.heap.owner(of: returnAddress &- 1).map { " in $\($0.name)" } ?? ""
        System.writeStandardError("kiln: proc \(proc.id)\(function) ended: \(what)\n")
        proc.result = 0
        proc.ended = true
        proc.state = .finished
    }

    // MARK: Services

    func spawnService(function: UInt, argument: UInt64, frame: UInt) -> kiln_service_result {
        guard procs.count < limits.procs else {
            loader.fail("$kiln.spawn\(loader.callerName(frame: frame)): more than \(limits.procs) procs alive")
        }
        guard let proc = makeProc(entry: function, arguments: (UInt(argument), 0, 0)) else {
            loader.fail("$kiln.spawn\(loader.callerName(frame: frame)): no room for another proc's stack (\(stacks.bytesInUse) bytes of segments in use)")
        }
        return kiln_service_result(value: UInt64(proc.id), park: 0)
    }

    func selfService(frame: UInt) -> kiln_service_result {
        guard let proc = running else {
            loader.fail("$kiln.self\(loader.callerName(frame: frame)): no proc is running")
        }
        return kiln_service_result(value: UInt64(proc.id), park: 0)
    }

    func sendService(to id: Int, message: UInt64) -> kiln_service_result {
        guard let target = procs.proc(id), target.state != .finished else { return kiln_service_result(value: 1, park: 0) }
        target.mailbox.append(message)
        if target.state == .waiting {
            target.state = .runnable
            enqueue(target)
        }
        return kiln_service_result(value: 0, park: 0)
    }

    /// `receive`, or with `within` nanoseconds `receive_within` (called again after each
    /// park: the first call sets the deadline, a later one finds a message or the time out).
    func receiveService(onSegment: Bool, frame: UInt, within: UInt64? = nil) -> kiln_service_result {
        let name = within == nil ? "receive" : "receive_within"
        guard let proc = running else {
            loader.fail("$kiln.\(name)\(loader.callerName(frame: frame)): no proc is running")
        }
        if !proc.mailbox.isEmpty {
            proc.deadline = nil
            proc.wokeByTimer = false
            proc.timedOut = false
            return kiln_service_result(value: proc.mailbox.removeFirst(), park: 0)
        }
        if proc.wokeByTimer {
            // Woken by its deadline: the time ran out (timed_out says so until the next wait).
            proc.wokeByTimer = false
            proc.timedOut = true
            return kiln_service_result(value: 0, park: 0)
        }
        if let within, within == 0 || Int64(bitPattern: within) < 0 {
            proc.timedOut = true
            return kiln_service_result(value: 0, park: 0)
        }
        guard onSegment else {
            loader.fail("$kiln.\(name)\(loader.callerName(frame: frame)) would wait inside a call into C (proc \(proc.id)); a proc can only wait in its own code")
        }
        if let within, proc.deadline == nil {
            let deadline = UInt64(System.monotonicNanoseconds()) &+ within
            proc.deadline = deadline
            timers.append((deadline, proc))
        }
        proc.timedOut = false
        proc.state = .waiting
        return kiln_service_result(value: 0, park: 1)
    }

    func timedOutService(frame: UInt) -> kiln_service_result {
        guard let proc = running else {
            loader.fail("$kiln.timed_out\(loader.callerName(frame: frame)): no proc is running")
        }
        return kiln_service_result(value: proc.timedOut ? 1 : 0, park: 0)
    }

    func linkService(to id: Int, frame: UInt) -> kiln_service_result {
        guard let proc = running else {
            loader.fail("$kiln.link\(loader.callerName(frame: frame)): no proc is running")
        }
        guard id >= 1, id < nextID else {
            loader.fail("$kiln.link\(loader.callerName(frame: frame)) in proc \(proc.id): no proc \(id) was ever spawned")
        }
        guard let target = procs.proc(id), target.state != .finished else {
            // Ended already: its notice comes at once. (How it ended is forgotten by then:
            // the notice says it returned.)
            proc.mailbox.append(UInt64(bitPattern: (-Int64(id)) << 1))
            return kiln_service_result(value: 1, park: 0)
        }
        target.linked.append(proc.id)
        return kiln_service_result(value: 0, park: 0)
    }

    func yieldService(onSegment: Bool) -> kiln_service_result {
        guard let proc = running, onSegment else { return kiln_service_result(value: 0, park: 0) }
        if proc.yielded {
            proc.yielded = false
            return kiln_service_result(value: 0, park: 0)
        }
        proc.yielded = true
        // Still `.running`: the scheduler puts it at the back of the queue.
        return kiln_service_result(value: 0, park: 1)
    }

    // MARK: Roots

    /// `body(proc, frame)` for every proc that is parked (not running, not finished), with
    /// the frame pointer `swap` saved for it: its service trampoline's frame, or 0 for a
    /// proc that has not run yet.
    func forEachParkedProc(_ body: (Proc, UInt) -> Void) {
        for proc in procs.values where proc !== running && proc.state != .finished {
            body(proc, UnsafeRawPointer(bitPattern: proc.savedRsp.pointee + 40)!.load(as: UInt.self))
        }
    }

    /// For the collector: `body(proc, frame, returnAddress)` with the innermost frame of
    /// generated code of every parked proc that has run (its service trampoline's caller).
    func forEachParkedFrame(_ body: (Proc, UInt, UInt) -> Void) {
        forEachParkedProc { proc, trampolineFrame in
            guard proc.hasRun, trampolineFrame != 0 else { return }
            let frame = UnsafeRawPointer(bitPattern: trampolineFrame)!.load(as: UInt.self)
            let returnAddress = UnsafeRawPointer(bitPattern: trampolineFrame + 8)!.load(as: UInt.self)
            body(proc, frame, returnAddress)
        }
    }

    /// For the collector: every word that may hold a reference outside the stacks: queued
    /// messages, and the argument of each proc that has not run yet.
    func forEachManagedWord(_ body: (UnsafeMutablePointer<UInt64>) -> Void) {
        for proc in procs.values where proc.state != .finished {
            proc.mailbox.forEachWord(body)
            if !proc.hasRun {
                // `start` finds the argument in r12, the fourth word `swap` pops.
                body(UnsafeMutablePointer<UInt64>(bitPattern: proc.savedRsp.pointee + 24)!)
            }
        }
    }

    /// The return address that the grow routine keeps for the function whose frame is at
    /// `frame` on one of `proc`'s segments: where that function returns in its caller.
    func returnAddress(behindGrowOf frame: UInt, in proc: Proc) -> UInt {
        var segment: Segment? = proc.segment
        while let current = segment {
            if frame >= current.base && frame < current.top {
                return UnsafeRawPointer(bitPattern: current.returnRsp)!.load(as: UInt.self)
            }
            segment = current.previous
        }
        return 0
    }

    /// `body(low, high)` for the used part of every segment of every parked proc.
    func forEachParkedSegment(_ body: (UInt, UInt) -> Void) {
        forEachParkedProc { proc, _ in forEachSegment(of: proc, from: proc.savedRsp.pointee, body) }
    }

    /// `body(low, high)` for the used part of each segment of `proc`, innermost first, the
    /// innermost from `rsp`.
    func forEachSegment(of proc: Proc, from rsp: UInt, _ body: (UInt, UInt) -> Void) {
        var segment: Segment? = proc.segment
        var low = rsp
        while let current = segment {
            body(max(low, current.base + UInt(ProcStacks.headerSize)), current.top)
            // What `grow` left below the return address it returns to.
            low = current.returnRsp &- 32
            segment = current.previous
        }
    }

    /// Procs alive now.
    var count: Int { procs.count }

    /// Whether the scheduler runs (on the proc thread).
    var isRunning: Bool { thread != nil }

    /// The top of the proc thread's own stack, where the scheduler runs.
    private(set) var schedulerStackTop: UInt = 0

    /// Whether `address` is on a proc segment or the C stack.
    func isOnProcStacks(_ address: UInt) -> Bool {
        stacks.contains(address) || (address >= cStackLow && address < cStackHigh)
    }
}


extension Loader {
    /// What the procs did, for `kiln run --stats`; nil when the loader runs without procs.
    public var procStatisticsText: String? {
        guard let procs = procSystem else { return nil }
        return "procs: \(procs.spawned) spawned, at most \(procs.peakProcs) alive, "
            + "\(procGlobals.pointee.switches) switches, \(procs.preemptions) preemptions, "
            + "\(procs.segmentsGrown) segments grown through Swift, \(procs.stacks.bytesInUse) bytes of segments in use"
    }
}

extension CompiledModule {
    /// Whether a function of the module calls a proc service (`$kiln.spawn`, `$kiln.receive`...).
    public var callsProcServices: Bool {
        functions.contains { function in
            function.relocations.contains { record in
                guard case .callSlot(let name) = record.target, name.hasPrefix("kiln.") else { return false }
                return ProcSystem.serviceNames.contains(String(name.dropFirst(5)))
            }
        }
    }
}
