// Binding names: eager binding of address slots and external fields when a
// crate is linked, lazy binding of call slots on their first call.
//
// Lazy binding, step by step: a call slot starts at its resolver stub; the
// stub puts the slot's address in r11 and jumps to the loader's resolver
// routine (RuntimeRoutines.swift), which saves the argument registers and
// calls `bind(slot:framePointer:)`. `bind` finds the slot's crate and symbol,
// resolves it, stores the target in the slot (so later calls go straight to
// it) and returns it; the routine restores the registers and jumps there, so
// the original call completes as if the slot had always been bound. A symbol
// that nothing defines fails here, at its first call, naming itself and its
// caller. Every pass through `bind` is an *entry into the runtime*: runtime
// services (`$kiln.compact`) are slots that stay unbound, and the compaction
// stress mode leaves every slot unbound so every call through a TOC enters.

import CKilnShim
import KilnCode
#if canImport(Glibc)
import Glibc
#endif

extension Loader {
    /// Kiln's own symbols that are ordinary C functions, bound like library symbols.
    public static var runtimeSymbols: [String: UInt] {
        [
            ThreadLocalData.addressSymbol: ThreadLocalData.entryAddress,
            // Exit handlers are kept by Kiln, so a loader can go before the process does
            // (CKilnShim.h). glibc does not even export atexit from libc.so.
            "atexit": UInt(bitPattern: kiln_atexit_entry()),
            "on_exit": UInt(bitPattern: kiln_on_exit_entry()),
            "__cxa_atexit": UInt(bitPattern: kiln_cxa_atexit_entry()),
            // Threads the program starts get an alternate signal stack (crash.c).
            "pthread_create": UInt(bitPattern: kiln_pthread_create_entry()),
            // The word every function's stack check compares with (Procs/ProcStacks.swift).
            stackLimitSymbol: UInt(bitPattern: stackLimitWord),
        ].merging(ManagedRuntime.symbols) { first, _ in first }
    }

    /// Runtime services that need the caller's frame: their slots are never bound and
    /// every call enters the runtime through `bind`.
    static let runtimeEntries: Set<String> = ["kiln.compact"]

    /// The address `name` resolves to outside any crate: a Kiln runtime symbol, a symbol of
    /// a linked library (in link order), or of the process's global scope. Quotes ignored.
    /// With `leavingThreadState`, the calling thread's dlerror state is left as it was
    /// (SymbolResolver.swift).
    func resolveOutside(_ name: String, leavingThreadState: Bool = false) -> UInt? {
        let bare = unquoted(name)
        return leavingThreadState ? symbols.addressLeavingThreadState(of: bare) : symbols.address(of: bare)
    }

    static let stackLimitSymbol = "kiln.stack_limit"
    static let growSymbol = "kiln.grow"
    static let heapAllocateSymbol = "kiln.heap.allocate"

    /// The stable address of `name` as a value: a crate function's stub, a crate's data
    /// object, or an outside symbol.
    func stableAddress(of name: String) throws(LoadError) -> UInt? {
        if name == Self.growSymbol {
            // Without procs no limit is ever set and the check never fails; should it, the
            // `ret` of `returnNothing` sends the function on (a plain return to `jmp body`).
            return procSystem?.routines.grow ?? routines.returnNothing + 2
        }
        if name == Self.heapAllocateSymbol, let procSystem, let address = resolveOutside(name) {
            // The allocation slow path is C and Swift: on the C stack when called from a proc.
            return try procSystem.nativeThunk(for: address)
        }
        if let export = registry.exports[unquoted(name)] {
            switch export.target {
            case .function(let index): return try stubAddress(crate: export.crate, function: index)
            case .data(let index): return UInt(bitPattern: export.crate.live.address(ofData: index))
            default: preconditionFailure("exports are functions or data")
            }
        }
        return resolveOutside(name)
    }

    /// What a call through a slot for `name` should reach now, and how to find it again.
    /// Runs on a program's thread: its dlerror state is left alone.
    func callTarget(of name: String) -> (address: UInt, binding: TOC.Binding)? {
        if let export = registry.exports[unquoted(name)] {
            switch export.target {
            case .function(let index):
                return (export.crate.live.blocks[index].entry, .crate(name: export.crate.name, symbol: unquoted(name)))
            case .data(let index):
                let address = UInt(bitPattern: export.crate.live.address(ofData: index))
                return (address, .address(address))
            default: preconditionFailure("exports are functions or data")
            }
        }
        let bare = unquoted(name)
        if bare.hasPrefix("kiln."), ProcSystem.serviceNames.contains(String(bare.dropFirst(5))) {
            guard let procSystem else {
                fail("\(bare) needs procs: the loader runs without them (kiln run enables them when a crate calls a proc service)")
            }
            do {
                let address = try procSystem.trampoline(for: String(bare.dropFirst(5)))
                return (address, .address(address))
            } catch {
                fail("\(error)")
            }
        }
        guard let address = resolveOutside(name, leavingThreadState: true) else { return nil }
        // With procs, C functions are reached through a thunk that leaves the proc's segment.
        if let procSystem {
            do {
                let thunk = try procSystem.nativeThunk(for: address)
                return (thunk, .address(thunk))
            } catch {
                fail("\(error)")
            }
        }
        return (address, .address(address))
    }

    /// The block behind a binding to a crate's function, or nil.
    func block(of binding: TOC.Binding) -> CodeBlock? {
        guard case .crate(let name, let symbol) = binding, let export = registry.exports[symbol], export.crate.name == name,
              case .function(let index) = export.target else { return nil }
        return export.crate.live.blocks[index]
    }

    /// The current address behind a binding.
    func currentTarget(of binding: TOC.Binding) -> UInt? {
        switch binding {
        case .address(let address): return address
        case .crate(let name, let symbol):
            guard let export = registry.exports[symbol], export.crate.name == name, case .function(let index) = export.target else {
                return nil
            }
            return export.crate.live.blocks[index].entry
        }
    }

    /// Binds every address slot and external field of the current versions of `crates`, or
    /// reports every undefined name with its users.
    func bindEagerly(_ crates: [CrateState]) throws(LoadError) {
        var unresolved: [UnresolvedSymbol] = []
        for crate in crates { unresolved += try bindEagerly(crate.live, of: crate) }
        guard unresolved.isEmpty else { throw .unresolvedSymbols(unresolved) }
    }

    /// Binds `version`'s address slots and external fields; returns the names nothing defines.
    /// `skipping` says which functions and data objects need no look at (a reload's kept
    /// ones, whose names are bound already in `version.externalValues`).
    func bindEagerly(_ version: CrateVersion, of crate: CrateState,
                     skipping: (function: (Int) -> Bool, data: (Int) -> Bool) = ({ _ in false }, { _ in false })
    ) throws(LoadError) -> [UnresolvedSymbol] {
        var missing: [String: [String]] = [:]
        var order: [String] = []
        var objects: [(String, [Relocation])] = []
        for index in version.module.functions.indices where !skipping.function(index) {
            objects.append((version.module.functions[index].name, version.module.functions[index].relocations))
        }
        for (index, object) in version.module.data.enumerated() where !skipping.data(index) {
            objects.append((object.name, object.relocations))
        }
        for (user, relocations) in objects {
            for relocation in relocations {
                let name: String
                switch relocation.target {
                case .external(let symbol), .addressSlot(let symbol): name = symbol
                default: continue
                }
                if version.externalValues[name] != nil { continue }
                if let address = try stableAddress(of: name) {
                    version.externalValues[name] = address
                } else if missing[name] == nil {
                    missing[name] = [user]
                    order.append(name)
                } else if missing[name]!.last != user {
                    missing[name]!.append(user)
                }
            }
        }
        // Called names are looked up now, on the loading thread, so that binding a slot on a
        // program's thread finds them without a dlsym there (SymbolResolver.swift). A name
        // found nowhere is not an error yet: only its first call is.
        for name in version.toc.callSlots where registry.exports[unquoted(name)] == nil { _ = resolveOutside(name) }
        return order.map { UnresolvedSymbol(symbol: $0, users: missing[$0]!, crate: crate.name) }
    }



    /// Functions that return twice: a `jmp_buf` (or `ucontext_t`) they fill holds a return
    /// address into their caller, mangled and stored where no scan finds it, so a function
    /// that calls one of them never moves (`CodeBlock.isFixed`).
    static let returnsTwice: Set<String> = [
        "setjmp", "_setjmp", "__setjmp", "sigsetjmp", "__sigsetjmp", "savectx", "vfork", "getcontext",
    ]

    /// Whether `function` calls (or takes the address of) a function that returns twice.
    static func callsReturnsTwice(_ function: CodeObject) -> Bool {
        function.relocations.contains { record in
            guard let name = record.target.importedName else { return false }
            return returnsTwice.contains(unquoted(name))
        }
    }

    // MARK: Lazy binding

    /// Called by the resolver routine for a call through the call slot at `slot`, with the
    /// routine's frame pointer (`[framePointer + 8]` is the caller's return address).
    /// Returns the address to jump to. Never returns for an undefined symbol.
    func bind(slot: UInt, framePointer: UInt) -> UInt {
        // The program's errno is as it left it when the call reaches its target.
        let savedErrno = errno
        lock.lock()
        defer {
            lock.unlock()
            errno = savedErrno
        }
        statistics.runtimeEntries += 1
        guard let (crate, version, index) = registry.callSlotOwners[slot] else {
            fail("internal error: the resolver was entered for 0x\(String(slot, radix: 16)), which is no call slot")
        }
        if compactionRequested {
            compactionRequested = false
            compact(framePointer: framePointer, stress: false)
        }
        let name = version.toc.callSlots[index]
        if Self.runtimeEntries.contains(unquoted(name)) {
            return runRuntimeEntry(unquoted(name), framePointer: framePointer)
        }
        if options.compactEvery > 0 && statistics.runtimeEntries % options.compactEvery == 0 {
            compact(framePointer: framePointer, stress: true)
        }
        if let binding = version.toc.bindings[index], let target = currentTarget(of: binding) {
            if options.compactEvery == 0 {
                version.toc.store(target, at: slot)
                noteBinding(of: version, slot: index, to: block(of: binding))
            }
            return target
        }
        guard let (target, binding) = callTarget(of: name) else {
            fail("\(crate.name): call to undefined symbol $\(name)\(callerName(frame: framePointer))")
        }
        version.toc.bindings[index] = binding
        statistics.bindings += 1
        if case .crate(let definer, _) = binding, let used = registry.byName[definer], used !== crate {
            registry.noteUser(crate, of: used)
        }
        // In the stress mode the slot stays at its resolver stub, so the next call enters again.
        if options.compactEvery == 0 {
            version.toc.store(target, at: slot)
            noteBinding(of: version, slot: index, to: block(of: binding))
        }
        return target
    }

    private func runRuntimeEntry(_ name: String, framePointer: UInt) -> UInt {
        switch name {
        case "kiln.compact":
            compact(framePointer: framePointer, stress: false)
        default:
            fail("internal error: no runtime entry $\(name)")
        }
        return routines.returnNothing
    }

    /// ` from $f` for the function whose frame is `frame` (a routine's rbp, so `[frame + 8]`
    /// returns into `$f`), or "".
    func callerName(frame: UInt) -> String {
        guard frame != 0, frame % 8 == 0 else { return "" }
        let returnAddress = UnsafeRawPointer(bitPattern: frame + 8)!.load(as: UInt.self)
        return heap.owner(of: returnAddress &- 1).map { " from $\($0.name)" } ?? ""
    }

    /// Reports a fatal error of the running program with the backtrace of the calling
    /// thread (CrashReport.swift) and ends the process (status 70), after flushing the
    /// program's C output. `_exit`, not `exit`: this may run inside an atexit handler (a C
    /// library calling a stub on its way out).
    func fail(_ message: String) -> Never {
        kiln_crash_report_error(message, 70, Self.crashDescriber, Unmanaged.passUnretained(self).toOpaque())
    }
}
