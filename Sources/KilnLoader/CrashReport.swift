// Crash reports in the program's terms: which crate, function and IL line a
// frame of generated code is in.
//
// CKilnShim's crash.c catches the fault, walks the stack and writes the
// report; it asks the loader that installed it to name each frame of
// generated code (`describeFrame`). That question is asked from a signal
// handler, while the faulting thread may have stopped anywhere: the loader's
// lock is only tried (a thread that holds it may be halfway through moving
// code; then frames are named by address alone), and a block is found with
// the same binary search `owner(of:)` that compaction keeps in step. Naming
// allocates (Swift strings); crash.c's watchdog ends the process with the
// report's status should that ever block.
//
// The runtime's own fatal errors (`fail`: a call to an undefined symbol, a
// dead stub) print the same backtrace through `kiln_crash_report_error`.

import CKilnShim
import KilnCode

extension Loader {
    /// Reports faults in the program's code (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
    /// SIGABRT) as one short report naming frames of this loader's code, then ends the
    /// process with 128 + the signal; gives the calling thread an alternate signal stack,
    /// and so each thread the program starts, so that a stack overflow is reported too.
    /// Call it before the program runs: a handler the program installs later replaces
    /// Kiln's. The loader is kept until the process exits.
    /// `KILN_CRASH_REPORTS=0` leaves the signals as they were (a crash is then Swift's dump).
    public func installCrashReports() throws(LoadError) {
        guard System.environmentValue("KILN_CRASH_REPORTS") != "0" else { return }
        keepUntilExit()
        guard kiln_crash_install(Self.crashDescriber, Unmanaged.passUnretained(self).toOpaque()) == 0 else {
            throw .system(SystemError("sigaction", message: "cannot install the crash handlers"))
        }
    }

    /// Names a frame of generated code for crash.c; see `describeFrame`.
    static let crashDescriber: kiln_crash_describer = { context, address, buffer, capacity in
        let loader = Unmanaged<Loader>.fromOpaque(context!).takeUnretainedValue()
        guard let text = loader.describeFrame(at: address) else { return -1 }
        var count: Int32 = 0
        for byte in text.utf8 where count < capacity {
            buffer![Int(count)] = CChar(bitPattern: byte)
            count += 1
        }
        return count
    }

    /// `$function at FILE:LINE in crate NAME` for an address in one of this loader's code
    /// blocks; "" for the runtime's own routines and stubs (left out of reports); nil
    /// for an address outside the loader's code.
    func describeFrame(at address: UInt) -> String? {
        guard heap.region.containsCode(address) else { return nil }
        guard heap.movableRange.contains(address) else { return "" }
        guard lock.tryLock() else { return "generated code (the runtime was busy; no names)" }
        defer { lock.unlock() }
        guard let block = heap.owner(of: address), let version = block.version,
              block.functionIndex < version.module.functions.count else {
            return "code freed or not yet placed"
        }
        let module = version.module
        var text = "$\(block.name)"
        if let line = Self.line(ofCodeOffset: UInt32(address - block.entry),
                                in: module.functions[block.functionIndex], module: module) {
            text += " at \(module.name):\(line)"
        }
        return text + " in crate \(block.crateName ?? module.name)"
    }

    /// The 1-based IL line of the instruction at `offset` in `function`, or nil when the
    /// module has no line table or line starts for it.
    static func line(ofCodeOffset offset: UInt32, in function: CodeObject, module: CompiledModule) -> Int? {
        let table = function.lineTable
        var low = 0, high = table.count
        while low < high {
            let middle = (low + high) / 2
            if table[middle].codeOffset <= offset { low = middle + 1 } else { high = middle }
        }
        guard low > 0, !module.sourceLineStarts.isEmpty else { return nil }
        return line(ofSourceOffset: table[low - 1].sourceOffset, lineStarts: module.sourceLineStarts)
    }

    /// The 1-based line that holds byte `offset` of a source with `lineStarts`.
    static func line(ofSourceOffset offset: UInt32, lineStarts: [UInt32]) -> Int {
        var low = 0, high = lineStarts.count
        while low < high {
            let middle = (low + high) / 2
            if lineStarts[middle] <= offset { low = middle + 1 } else { high = middle }
        }
        return max(low, 1)
    }
}
