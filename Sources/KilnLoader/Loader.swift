// The loader: turns compiled modules into crates in one code heap and links
// them to each other, to Kiln's runtime and to C libraries.
//
// Loading a batch of modules (one link unit: `kiln run a.ssa b.ssa`), in
// order; if any step fails, everything placed for the batch is given back:
//   1. validate every module (`CompiledModule.validate`), refuse a crate name
//      that is already loaded and an export that another crate (loaded or in
//      the batch) already defines;
//   2. place each crate: a code block per function, its data objects, its TOC
//      and a resolver stub per call slot; register its exports;
//   3. bind eagerly what has no call to intercept: every address slot and
//      every external absolute field gets the symbol's stable address; report
//      every name that nothing defines, each with its users;
//   4. register thread-local data, write code and data, apply every record,
//      point each call slot at its resolver stub (lazy binding: the first call
//      binds it, see Binding.swift) and note which crates use which.
//
// Symbols resolve, in order, to: an export of a loaded crate, a Kiln runtime
// symbol, a `--link` library (in link order), the process's global scope.
//
// The loader is the runtime's front: it holds one of each of the runtime's
// nouns and runs each operation under its lock. Each noun owns its state in a
// file of its own: the code heap (CodeHeap.swift), the crates and their names
// (CrateRegistry.swift), links between blocks (CodeLinks.swift), symbols
// outside the crates (SymbolResolver.swift), callback stubs
// (CallbackStubs.swift), the threads of the process (World.swift, RootScan.swift),
// compaction (Compaction.swift), reload (Reload.swift, ReloadTransaction.swift),
// the code collector (CodeCollection.swift) and binding (Binding.swift).
//
// Lifetime: a `Loader` owns its heap and its dlopen handles and holds every
// crate; a `Crate` handle holds its loader, so memory stays mapped while any
// handle or the loader is alive. Loaded code may run on any thread; whatever
// moves, rewrites or frees code first stops every other thread (World.swift).

import CKilnShim
import KilnCode
import Synchronization

/// Loads and links crates into one code heap; see the file comment.
public final class Loader {
    /// How the loader behaves beyond the defaults: stress modes and randomised placement.
    public struct Options: Sendable {
        /// Compact the code heap at every Nth entry into the runtime (0: never). In this
        /// mode call slots are never bound, so every call through a TOC enters the runtime.
        public var compactEvery = 0
        /// When set, crates are placed at addresses drawn from this seed (for tests).
        public var placementSeed: UInt64?
        /// Where the region goes: below 4 GiB when free (the default), or anywhere.
        public var regionPlacement: RegionPlacement
        /// Run `main` as the first proc, with the proc services bound (Procs/Scheduler.swift).
        /// C functions are then called through thunks that leave a proc's small stack.
        public var procs = false
        /// Limits on procs and their stacks.
        public var procLimits = ProcLimits()

        public init(compactEvery: Int = 0, placementSeed: UInt64? = nil, regionPlacement: RegionPlacement = .lowWhenFree) {
            self.compactEvery = compactEvery
            self.placementSeed = placementSeed
            self.regionPlacement = regionPlacement
        }

        /// What was wrong with `KILN_STRESS`, if anything: a loader made with these options
        /// refuses to start, saying so (a misspelt stress mode must not pass silently).
        public var environmentProblem: String?

        /// The options `KILN_STRESS` asks for; see `stress(_:)`.
        public static var fromEnvironment: Options {
            guard let value = System.environmentValue("KILN_STRESS") else { return Options() }
            do {
                return try stress(value)
            } catch {
                var options = Options()
                options.environmentProblem = error.description
                return options
            }
        }

        /// The options a stress specification asks for: modes separated by commas, each
        /// `compact` (compact the code heap at every entry into the runtime) or `compact:N`
        /// (at every Nth), or the managed heap's `collect`/`collect:N` (accepted here, acted
        /// on by the heap). An empty specification asks for nothing.
        public static func stress(_ specification: String) throws(LoadError) -> Options {
            var options = Options()
            for mode in specification.split(separator: ",", omittingEmptySubsequences: true) {
                let parts = mode.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                let every: Int
                if parts.count == 2 {
                    guard let number = Int(parts[1]), number > 0 else {
                        throw .invalidArgument("KILN_STRESS=\(specification): \(mode) needs a positive count after the colon")
                    }
                    every = number
                } else {
                    every = 1
                }
                switch parts[0] {
                case "compact": options.compactEvery = every
                // The managed heap's mode: its configuration reads it (HeapConfiguration.swift).
                case "collect": break
                default:
                    throw .invalidArgument("KILN_STRESS=\(specification): unknown stress mode \(parts[0]) (known: compact, compact:N, collect, collect:N)")
                }
            }
            return options
        }
    }

    let heap: CodeHeap
    public let options: Options
    /// Symbols outside the crates, and the `--link` libraries.
    let symbols = SymbolResolver()
    /// The crates, their exports and who uses whom.
    let registry = CrateRegistry()
    /// One callback stub per function identity.
    var stubs = CallbackStubs()
    /// The crates and names made visible to C (dlopen'd libraries).
    let symbolExports = SymbolExports()
    /// Set by a compaction that could not stop every thread: the next runtime entry tries again.
    var compactionRequested = false
    /// Set once `keepUntilExit` has made the loader immortal.
    private var isKeptUntilExit = false
    /// What the threads' stacks and registers held of the code heap at the last scan.
    let roots = RootScan()
    /// Compaction's plan buffer and count.
    let compactor = Compactor()
    /// For tests: the step of preparing the next reload that fails (see `checkpoint`).
    var reloadFaultStep: Int?
    var routines: RuntimeRoutines!
    /// The procs, their segments and scheduler, with `Options.procs`.
    var procSystem: ProcSystem?
    /// Tools told where code is (CodeEvents.swift).
    let codeEvents = CodeEvents()
    /// The C unwinder's rule for this loader's code (CKilnShim's crash.c).
    private var unwindRule: UnsafeMutableRawPointer?
    let lock = RuntimeLock()
    var placementState: UInt64
    /// Counters for `kiln stats` and the tests.
    public internal(set) var statistics = Statistics()

    /// What the loader has done so far.
    public struct Statistics: Sendable {
        /// Calls that entered the runtime through a resolver stub.
        public var runtimeEntries = 0
        /// Call slots bound.
        public var bindings = 0
        public var compactions = 0
        /// Compactions put off because some thread could not be stopped and examined.
        public var compactionsDeferred = 0
        /// Times every other thread was stopped (attempts included).
        public var worldStops = 0
        /// Threads stopped and examined, summed over the stops.
        public var threadsStopped = 0
        /// Stops that could not examine some thread (it blocks the suspension signal and was
        /// running, or ran meanwhile): nothing that thread might run was changed.
        public var incompleteStops = 0
        /// The longest time other threads were kept stopped, in nanoseconds.
        public var longestPauseNanoseconds = 0
        /// How long the last stop kept other threads stopped, in nanoseconds.
        public var lastPauseNanoseconds = 0
        /// Code blocks moved by compaction, in total.
        public var blocksMoved = 0
        /// Return addresses rewritten by compaction, in total.
        public var returnAddressesPatched = 0
        public var reloads = 0
        /// Code blocks freed by the code collector, in total.
        public var blocksCollected = 0
    }

    /// Reserves a region of `regionSize` bytes, opens libm, then each of `linkLibraries`.
    public init(regionSize: Int = 1 << 30, linkLibraries: [String] = [],
                options: Options = .fromEnvironment) throws(LoadError) {
        if let problem = options.environmentProblem { throw .invalidArgument(problem) }
        do {
            heap = try CodeHeap(regionSize: regionSize, placement: options.regionPlacement)
        } catch {
            throw .system(error)
        }
        self.options = options
        self.placementState = options.placementSeed ?? 0
        routines = try RuntimeRoutines(heap: heap, context: Unmanaged.passUnretained(self).toOpaque())
        // Generated code keeps a frame pointer: the C unwinder (crash reports, a C++
        // exception passing through) leaves its frames by rbp.
        unwindRule = kiln_unwind_register(heap.codeBase, heap.codeBase + UInt(heap.region.halfSize))
        if GdbJit.isWanted { codeEvents.listeners.append(GdbJit(heap: heap)) }
        if Self.perfWanted { try writePerfJitDump() }
        roots.resolverReturn = routines.resolverReturn
        roots.resolverReturnOffSegment = routines.resolverReturnOffSegment
        if options.procs { procSystem = try ProcSystem(loader: self, limits: options.procLimits) }
        try link(library: "libm.so.6")
        for library in linkLibraries { try link(library: library) }
        ManagedRuntime.register(self)
    }

    /// Gives everything back. The exit handlers the program registered with atexit, on_exit
    /// or __cxa_atexit run first, while their code is still there (as dlclose runs a
    /// library's). No thread may be running the loader's code any more.
    deinit {
        ManagedRuntime.unregister(self)
        kiln_run_exit_handlers_in(regionRange.lowerBound, regionRange.upperBound)
        kiln_unwind_deregister(unwindRule, heap.codeBase)
        for crate in registry.all {
            for version in crate.versions {
                for range in version.ownedThreadData { ThreadLocalData.unregister(offset: range.offset, size: range.size) }
            }
        }
    }

    /// Keeps this loader, and so its code, mapped until the process exits, for C code that
    /// holds pointers into it and calls them late (the destructors of thread-local keys, a
    /// library's own exit handlers); the program's own exit handlers do not need it.
    public func keepUntilExit() {
        lock.locked {
            guard !isKeptUntilExit else { return }
            isKeptUntilExit = true
            _ = Unmanaged.passRetained(self)  // a reference nothing releases: on purpose
        }
    }

    /// Opens a shared object (RTLD_NOW | RTLD_GLOBAL) whose symbols later loads may use.
    /// It stays open for the life of the loader.
    public func link(library path: String) throws(LoadError) {
        do {
            try symbols.link(library: path)
        } catch {
            throw .link(library: path, message: error.message)
        }
    }

    /// The region's reservation: `base` and `size`, for tools and tests.
    public var regionRange: Range<UInt> { heap.region.base..<(heap.region.base + UInt(heap.region.size)) }

    /// The address range of the writable alias of the region's code half.
    public var writableAliasRange: Range<UInt> { heap.region.writableAliasRange }

    /// Bytes in use: movable code blocks (headers included), fixed code (stubs and
    /// runtime routines) and data (data objects and TOCs).
    public var heapUsage: (code: Int, fixed: Int, data: Int) {
        lock.locked { (heap.movableBytes, heap.fixedBytes, heap.dataBytes) }
    }

    /// The live code blocks, in address order.
    public var codeBlocks: [CodeBlock] { lock.locked { heap.blocks } }

    /// The code block whose code holds `address` (a return address, say), or nil.
    public func codeBlock(containing address: UInt) -> CodeBlock? { lock.locked { heap.owner(of: address) } }

    /// The crate called `name`, or nil.
    public func crate(named name: String) -> Crate? { lock.locked { registry.byName[name].map { Crate($0) } } }

    /// Every loaded crate, in load order.
    public var loadedCrates: [Crate] { lock.locked { registry.loaded.map { Crate($0) } } }

    /// The crates that import a symbol `crate` exports, in the order they started to.
    func users(of crate: CrateState) -> [CrateState] {
        // The names recorded at link and bind time; unloaded crates are not users any more.
        lock.locked { (registry.users[crate.name] ?? []).compactMap { registry.byName[$0] } }
    }

    // MARK: Loading

    /// Loads, links and relocates one module; see the file comment.
    public func load(_ module: CompiledModule) throws(LoadError) -> Crate {
        try load([module])[0]
    }

    /// Loads a batch of modules as one link unit; see the file comment.
    public func load(_ modules: [CompiledModule]) throws(LoadError) -> [Crate] {
        lock.lock()
        defer { lock.unlock() }
        defer { publishCodeChanges() }
        try checkBatch(modules)
        var placed: [CrateState] = []
        var padding: [(UInt, Int, Bool)] = []
        defer {
            for (address, size, isCode) in padding {
                if isCode { heap.freePadding(address, size) } else { heap.freeData(address, count: size) }
            }
        }
        do {
            for module in modules { placed.append(try place(module, padding: &padding)) }
            for crate in placed { registry.register(crate) }
            try bindEagerly(placed)
            for crate in placed { try checkAbsolute32Fields(of: crate.live) }
            for crate in placed { try finish(crate) }
        } catch {
            for crate in placed { discard(crate) }
            throw error
        }
        for crate in placed {
            registry.loaded.append(crate)
            registry.noteUsers(of: crate)
        }
        return placed.map { Crate($0) }
    }

    private func checkBatch(_ modules: [CompiledModule]) throws(LoadError) {
        var names = Set<String>()
        var batchExports: [String: String] = [:]
        for module in modules {
            do {
                if !module.isValidated { try module.validate() }
            } catch {
                throw .invalidModule(module: module.name, message: error.message)
            }
            guard registry.byName[module.name] == nil, names.insert(module.name).inserted else {
                throw .duplicateCrate(module.name)
            }
            let exported = module.functions.filter(\.isExported).map(\.name)
                + module.data.filter(\.isExported).map(\.name)
            for name in exported.map(unquoted) {
                if let existing = registry.exports[name] {
                    throw .duplicateExport(symbol: name, first: existing.crate.name, second: module.name)
                }
                if let first = batchExports[name] {
                    throw .duplicateExport(symbol: name, first: first, second: module.name)
                }
                batchExports[name] = module.name
            }
        }
    }

    /// Allocates a crate's blocks, data, TOC and resolver stubs.
    private func place(_ module: CompiledModule, padding: inout [(UInt, Int, Bool)]) throws(LoadError) -> CrateState {
        if options.placementSeed != nil {
            // Random gaps before the crate's code and data, given back once the batch is placed.
            let codeGap = 16 * Int(1 + nextRandom() % 4096), dataGap = 8 * Int(1 + nextRandom() % 8192)
            padding.append((try heap.allocatePadding(codeGap), codeGap, true))
            padding.append((try heap.allocateData(dataGap, alignment: 8), dataGap, false))
        }
        let version = try placeVersion(module, number: 1, reusing: { _ in nil }, dataReused: { _ in nil })
        let crate = CrateState(loader: self, version: version)
        for block in version.blocks {
            block.crate = crate
            block.version = version
        }
        return crate
    }

    /// Allocates a version's blocks (or takes the ones `reusing` hands over), data (or the
    /// addresses `dataReused` hands over), TOC and resolver stubs. On failure everything
    /// it allocated is given back and nothing it was handed is touched.
    func placeVersion(
        _ module: CompiledModule, number: Int,
        reusing: (Int) -> CodeBlock?, dataReused: (Int) -> UInt?, toc keptTOC: TOC? = nil,
        names: CrateVersion? = nil
    ) throws(LoadError) -> CrateVersion {
        var blocks: [CodeBlock] = []
        var fresh: [CodeBlock] = []
        var dataAddresses: [UInt?] = []
        var ownsData: [Bool] = []
        var tocAddress: UInt = 0
        var toc = TOC(address: 0, callSlots: [], addressSlots: [])
        do {
            blocks.reserveCapacity(module.functions.count)
            for index in module.functions.indices {
                if let block = reusing(index) {
                    blocks.append(block)
                } else {
                    let function = module.functions[index]
                    let block = try heap.allocateBlock(size: function.code.count, name: function.name, crate: nil,
                                                       functionIndex: index)
                    block.isFixed = Self.callsReturnsTwice(function)
                    blocks.append(block)
                    fresh.append(block)
                }
            }
            for (index, object) in module.data.enumerated() {
                if object.isThreadLocal {
                    dataAddresses.append(nil)
                    ownsData.append(false)
                } else if let address = dataReused(index) {
                    dataAddresses.append(address)
                    ownsData.append(true)
                } else {
                    dataAddresses.append(try heap.allocateData(object.size, alignment: object.alignment))
                    ownsData.append(true)
                }
            }
            if let keptTOC {
                toc = keptTOC
            } else {
                let layout = module.tocLayout
                tocAddress = try heap.allocateData(8 * (layout.callSlots.count + layout.addressSlots.count), alignment: 8)
                toc = TOC(address: tocAddress, callSlots: layout.callSlots, addressSlots: layout.addressSlots)
                for index in layout.callSlots.indices {
                    toc.resolverStubs.append(try routines.makeResolverStub(for: toc.callSlotAddress(index), in: heap))
                }
            }
        } catch {
            for block in fresh { freeBlock(block) }
            for (index, object) in module.data.enumerated() where index < dataAddresses.count {
                if let address = dataAddresses[index], dataReused(index) == nil {
                    heap.freeData(address, count: object.size)
                }
            }
            if tocAddress != 0 {
                heap.freeData(tocAddress, count: toc.size)
                for stub in toc.resolverStubs { heap.freeFixed(stub, count: 16) }
            }
            throw error
        }
        let version = CrateVersion(number: number, module: module, blocks: blocks, dataAddresses: dataAddresses, toc: toc,
                                   names: names)
        version.ownsData = ownsData
        return version
    }







    /// Thread data, code, data and TOC contents of a placed and bound crate.
    private func finish(_ crate: CrateState) throws(LoadError) {
        let version = crate.live
        try registerThreadData(of: version, in: crate, keeping: { _ in nil })
        for index in version.module.functions.indices {
            try writeCode(ofFunction: index, of: version, in: crate)
        }
        for index in version.module.data.indices { try writeData(index, of: version, in: crate) }
        fillTOC(of: version)
    }

    /// Writes function `index`'s code into its block and applies its records.
    func writeCode(ofFunction index: Int, of version: CrateVersion, in crate: CrateState) throws(LoadError) {
        let block = version.blocks[index]
        version.module.functions[index].code.withUnsafeBytes { heap.write($0, at: block.entry) }
        try applyRelocations(ofFunction: index, of: version, in: crate)
    }

    /// Writes data object `index`'s initial bytes and applies its records (plain data only).
    /// Fresh data reads as zero, so only the segments are written: zero runs stay untouched.
    func writeData(_ index: Int, of version: CrateVersion, in crate: CrateState) throws(LoadError) {
        guard let address = version.dataAddresses[index] else { return }
        let object = version.module.data[index]
        let writable = UnsafeMutableRawPointer(bitPattern: address)!
        object.unsafeWriteSegments(toZeroed: writable)
        try applyRelocations(object.name, object.relocations, of: version, in: crate, objectAddress: address,
                             writableStart: writable)
    }

    /// Points every call slot at its resolver stub and fills the address slots.
    func fillTOC(of version: CrateVersion) {
        for index in version.toc.callSlots.indices {
            version.toc.store(version.toc.resolverStubs[index], at: version.toc.callSlotAddress(index))
            version.toc.bindings[index] = nil
            noteBinding(of: version, slot: index, to: nil)
        }
        for (index, name) in version.toc.addressSlots.enumerated() {
            version.toc.store(version.externalValues[name]!, at: version.toc.addressSlotAddress(index))
        }
    }

    /// Registers thread-local templates; `keeping` hands over the offset of an unchanged object.
    /// Returns the ranges it registered (offset, size); on failure it gives them back.
    @discardableResult
    func registerThreadData(of version: CrateVersion, in crate: CrateState,
                            keeping: (Int) -> Int?) throws(LoadError) -> [(offset: Int, size: Int)] {
        var registered: [(offset: Int, size: Int)] = []
        do throws(LoadError) {
            try registerThreadData(of: version, in: crate, keeping: keeping, into: &registered)
        } catch {
            for range in registered { ThreadLocalData.unregister(offset: range.offset, size: range.size) }
            throw error
        }
        for range in registered { version.ownedThreadData.append(range) }
        return registered
    }

    private func registerThreadData(of version: CrateVersion, in crate: CrateState, keeping: (Int) -> Int?,
                                    into registered: inout [(offset: Int, size: Int)]) throws(LoadError) {
        for (index, object) in version.module.data.enumerated() where object.isThreadLocal {
            if let offset = keeping(index) {
                version.threadOffsets[index] = offset
                continue
            }
            // The whole layout is smaller than this; a larger template is never built.
            guard object.size <= Int(KILN_TLS_CAPACITY) else { throw .threadDataFull(object: object.name, size: object.size) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(object.size, 1), alignment: 16)
            defer { buffer.deallocate() }
            buffer.copyBytes(from: object.materializedBytes)
            // Templates hold no pc-relative fields (validate refuses them), so address 0 is as good as any.
            try applyRelocations(object.name, object.relocations, of: version, in: crate, objectAddress: 0,
                                 writableStart: buffer.baseAddress!)
            let template = Array(buffer.prefix(object.size))
            guard let offset = ThreadLocalData.register(template, alignment: max(object.alignment, 1)) else {
                throw .threadDataFull(object: object.name, size: object.size)
            }
            registered.append((offset, object.size))
            version.threadOffsets[index] = offset
        }
    }

    /// Gives back everything a version owns alone: blocks it does not share with `keeping`,
    /// the data it owns, its TOC and resolver stubs.
    func free(_ version: CrateVersion, keeping: CrateVersion? = nil) {
        let kept = Set((keeping?.blocks ?? []).map(\.id))
        for block in version.blocks where !block.isFreed && !kept.contains(block.id) { freeBlock(block) }
        for (index, object) in version.module.data.enumerated() where version.ownsData[index] {
            if let address = version.dataAddresses[index] { heap.freeData(address, count: object.size) }
        }
        for range in version.ownedThreadData { ThreadLocalData.unregister(offset: range.offset, size: range.size) }
        version.ownedThreadData = []
        guard version.ownsTOC else { return }
        version.ownsTOC = false
        forgetBindings(of: version)
        if version.toc.address != 0 { heap.freeData(version.toc.address, count: version.toc.size) }
        for (index, stub) in version.toc.resolverStubs.enumerated() {
            registry.callSlotOwners[version.toc.callSlotAddress(index)] = nil
            heap.freeFixed(stub, count: 16)
        }
    }

    /// Gives back everything a crate that failed to load holds and forgets its names.
    func discard(_ crate: CrateState) {
        for version in crate.versions { free(version) }
        registry.forgetUses(of: crate)
        registry.unregisterExports(of: crate)
        if registry.byName[crate.name] === crate { registry.byName[crate.name] = nil }
        for stub in stubs.stubs(ofCrate: crate.name) where stub.block != nil { point(stub, at: nil) }
        registry.loaded.removeAll { $0 === crate }
        crate.current = nil
        crate.retired = []
    }

    /// A SplitMix64 step over the placement seed.
    private func nextRandom() -> UInt64 {
        placementState &+= 0x9E37_79B9_7F4A_7C15
        var z = placementState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
