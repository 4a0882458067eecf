// The world: every thread of the process that may run generated code.
//
// Code moves, is rewritten in place and is freed only while every other
// thread is stopped (the C shim's signal-based suspension, CKilnShim.h), so
// that no thread executes bytes being changed and every thread's registers
// and stack can be examined. Threads that Kiln did not start count as much as
// its own: a C library's workers, a host's threads calling stubs.
//
// Rules for the code between `stop` and `resume` (a `StoppedWorld`'s life):
// it must not allocate, print, or take a lock that a stopped thread may hold
// (malloc's arena locks, stdio's, the Swift runtime's), since that thread
// cannot let go of it until the world resumes. Everything a stopped section
// needs is prepared before: buffers sized, plans made, names resolved. The
// test suite checks this with a malloc guard (see WorldTests).
//
// A thread that does not answer (it blocks the signal) keeps running. The
// world is then *partial*: the caller must assume that thread can reach any
// code, so nothing may move, be rewritten or be freed on its account; a
// compaction waits for the next stop that is complete.

import CKilnShim

/// Stopping the process's other threads; see the file comment.
public enum World {
    /// How long to wait for each thread to answer before calling it unresponsive.
    /// `KILN_STOP_TIMEOUT_MS` overrides it.
    static let timeoutMilliseconds: Int32 = {
        if let value = System.environmentValue("KILN_STOP_TIMEOUT_MS"), let number = Int32(value), number > 0 {
            return number
        }
        return 50
    }()

    /// How many times a stop that finds a thread it cannot stop is tried again, after a
    /// short pause, before the caller makes do with an incomplete one.
    static let attempts = 5

    /// Stops every other thread; nil when the threads could not be listed or the table
    /// could not grow (nothing is stopped then).
    static func stop() -> StoppedWorld? {
        let count = kiln_world_stop(timeoutMilliseconds)
        guard count >= 0 else { return nil }
        return StoppedWorld(count: Int(count), handlerIntact: kiln_world_handler_is_installed() != 0)
    }

    /// Marks the calling thread as one that never runs generated code (a file watcher or
    /// another of the host's service threads): stops leave it running. It must never call
    /// a stub or run crate code afterwards.
    public static func exemptCurrentThread() {
        kiln_world_exempt_current_thread()
    }

    /// Lets stops stop the calling thread: unblocks the suspension signal, which a thread
    /// inherits blocked when it was started by one of libdispatch's workers (Swift
    /// concurrency's threads among them). Call it on a thread that runs crate code.
    public static func acceptStops() {
        kiln_world_accept_stops()
    }

    /// Whether another thread has the world stopped (or is stopping it) right now while the
    /// calling thread, one that stops leave running (exempt, or blocking the signal), runs
    /// on. Allocates nothing.
    public static var isLeftRunningInAStop: Bool { kiln_world_is_left_running_in_a_stop() != 0 }

    /// The real-time signal used to stop threads (`KILN_SUSPEND_SIGNAL` chooses another).
    public static var suspensionSignal: Int32 { kiln_world_signal() }

    /// How many times, since the process started, a thread did not answer a stop.
    public static var unresponsiveThreads: UInt64 { kiln_world_unresponsive_total() }
}

/// The other threads of the process while they are stopped. Resumes them when it ends.
struct StoppedWorld: ~Copyable {
    /// Threads in the table: stopped, unresponsive or exited.
    let count: Int
    /// Whether every listed thread either stopped or exited: only then may code that a
    /// thread could reach move, be rewritten in place or be freed.
    let isComplete: Bool
    /// Threads that did not answer and may be running.
    let unresponsive: Int
    /// Threads that block the signal but are blocked in the kernel (see `isQuiet`).
    let quiet: Int

    fileprivate init(count: Int, handlerIntact: Bool) {
        self.count = count
        var silent = 0, quiet = 0
        for index in 0..<count {
            let state = Int(kiln_world_thread(Int32(index))!.pointee.state)
            if state == KILN_THREAD_UNRESPONSIVE { silent += 1 }
            if state == KILN_THREAD_QUIET { quiet += 1 }
        }
        unresponsive = silent
        self.quiet = quiet
        isComplete = silent == 0 && handlerIntact
    }

    /// Thread `index` (`0..<count`) as the shim recorded it.
    func thread(_ index: Int) -> UnsafePointer<kiln_stopped_thread> {
        kiln_world_thread(Int32(index))!
    }

    /// Whether thread `index` is stopped (its registers and stack are valid).
    func isStopped(_ index: Int) -> Bool {
        Int(thread(index).pointee.state) == KILN_THREAD_STOPPED
    }

    /// Whether thread `index` blocks the signal but was found blocked in the kernel: only
    /// its rsp, rip and stack are known. It cannot run generated code unless it returns
    /// into it or enters it through a stub, so it counts as stopped only when neither its
    /// rip nor its stack refers to code, stubs are gated, and it has not run since
    /// (`isStillQuiet`).
    func isQuiet(_ index: Int) -> Bool {
        Int(thread(index).pointee.state) == KILN_THREAD_QUIET
    }

    /// Whether quiet thread `index` has not run since the stop found it quiet.
    func isStillQuiet(_ index: Int) -> Bool {
        kiln_world_still_quiet(Int32(index)) != 0
    }

    /// Resumes the stopped threads now.
    consuming func resume() {
        kiln_world_resume()
        discard self
    }

    deinit {
        kiln_world_resume()
    }
}
