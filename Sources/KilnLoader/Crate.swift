// A crate: one IL module (one file) placed in a loader's code heap and linked.
//
// A crate is a name and a sequence of *versions*. Each version owns one code
// block per function (movable), its data objects and its TOC (data half,
// never moving), and the resolver stubs of its call slots (fixed code).
// Intra-crate references are pc-relative and fixed up from the relocation
// records; everything outside the crate goes through the TOC or an eagerly
// bound absolute field (see TOC.swift). A version keeps its `CompiledModule`,
// so its records can be applied again whenever a block moves or a target is
// reloaded, and its `RelinkSection`.
//
// Reloading (Reload.swift) makes a new current version; the old one is
// *retired*: blocks, data and TOC that the new version did not take over stay
// alive while a frame still runs in them, and are freed by the code collector
// when nothing reaches them any more. Unloading retires the current version
// without a successor.
//
// Lifetime: the loader holds every loaded crate; a `Crate` object keeps its
// loader (and so the memory) alive. Addresses of code blocks change when the
// heap compacts or the crate is reloaded: hand out stub addresses
// (`address(ofSymbol:)`), never entries, to anything that keeps them.

import KilnCode

/// One version of a crate's contents; see the file comment.
final class CrateVersion {
    /// 1 for the first load, then one more per reload.
    let number: Int
    let module: CompiledModule
    var blocks: [CodeBlock]
    var dataAddresses: [UInt?]
    /// Whether this version allocated each data object (and frees it when it goes);
    /// false once a newer version took the object over unchanged.
    var ownsData: [Bool]
    var threadOffsets: [Int: Int] = [:]
    /// Thread-data ranges this version registered and gives back when it goes (a newer
    /// version that keeps a datum takes its range over).
    var ownedThreadData: [(offset: Int, size: Int)] = []
    var toc: TOC
    /// Built on first use (reload, tools): loading does not pay for it.
    lazy var relink = RelinkSection(module: module, layout: (toc.callSlots, toc.addressSlots))
    var externalValues: [String: UInt] = [:]
    /// Whether this version frees its TOC when it goes (false once a newer version took it over).
    var ownsTOC = true
    /// Function index by name without quotes.
    let functionIndex: [String: Int]
    /// Each function's name without quotes.
    let bareFunctionNames: [String]
    /// The block each call slot is bound to (nil while unbound or bound outside the crates).
    var slotBlocks: [CodeBlock?]
    /// The stub address behind each `.stub(i)` already applied (stubs used by code never move
    /// or go away), so applying records again does not look them up by name.
    var stubAddresses: [Int: UInt] = [:]
    /// For each function, for each record, the TOC slot it refers to (call slots first, then
    /// address slots), or -1: so applying records again does not hash slot names.
    lazy var recordSlots: [[Int32]] = module.functions.indices.map { slotIndices(ofFunction: $0) }

    /// `recordSlots` of one function.
    func slotIndices(ofFunction index: Int) -> [Int32] {
        module.functions[index].relocations.map { relocation in
            switch relocation.target {
            case .callSlot(let name): Int32(toc.callSlotIndex[name]!)
            case .addressSlot(let name): Int32(toc.callSlots.count + toc.addressSlotIndex[name]!)
            default: -1
            }
        }
    }

    /// `names`: a version whose functions have the same names in the same order, whose
    /// name index this one shares.
    init(number: Int, module: CompiledModule, blocks: [CodeBlock], dataAddresses: [UInt?], toc: TOC,
         names: CrateVersion? = nil) {
        self.number = number
        self.module = module
        self.blocks = blocks
        self.dataAddresses = dataAddresses
        self.ownsData = dataAddresses.map { $0 != nil }
        self.toc = toc
        if let names {
            self.functionIndex = names.functionIndex
            self.bareFunctionNames = names.bareFunctionNames
        } else {
            var index: [String: Int] = [:]
            let bare = module.functions.map { unquoted($0.name) }
            for (position, name) in bare.enumerated() { index[name] = position }
            self.functionIndex = index
            self.bareFunctionNames = bare
        }
        self.slotBlocks = Array(repeating: nil, count: toc.callSlots.count)
    }
}

/// A crate's state inside its loader; the public face is `Crate` (Crate+Handle.swift).
/// The loader owns the state; the state refers to its loader without owning it.
final class CrateState: CustomStringConvertible {
    /// The loader that holds the crate (it outlives its states).
    unowned let loader: Loader
    /// The crate's name (its source or crate file's name); unique in the loader.
    public let name: String
    /// The version new calls enter; nil once the crate is unloaded.
    var current: CrateVersion?
    /// Older versions that still hold blocks, data or a TOC that something may reach.
    var retired: [CrateVersion] = []
    /// Storage of data objects that reloads replaced: kept until the crate is unloaded and
    /// gone, or the host releases it.
    var replacedData: [(address: UInt, size: Int)] = []

    /// The newest version, current or (after an unload) the last one: what a host's
    /// handle still describes.
    var newest: CrateVersion

    init(loader: Loader, version: CrateVersion) {
        self.loader = loader
        self.name = version.module.name
        self.current = version
        self.newest = version
    }

    /// The current version, or for an unloaded crate the last one it had (its code may be
    /// gone: a stub made from it is dead).
    var live: CrateVersion { current ?? newest }

    /// Every version that still holds something, newest first.
    var versions: [CrateVersion] { (current.map { [$0] } ?? []) + retired }

    /// Whether the crate is loaded (not unloaded).
    public var isLoaded: Bool { current != nil }
    /// The current version's number: 1, then one more per reload.
    public var version: Int { live.number }
    /// What the current version was loaded from.
    public var module: CompiledModule { live.module }
    /// One block per function of the current version, in module order.
    public var blocks: [CodeBlock] { live.blocks }
    /// The address of each data object; nil for thread-local data.
    public var dataAddresses: [UInt?] { live.dataAddresses }
    /// The thread-block offset of each thread-local data object.
    public var threadOffsets: [Int: Int] { live.threadOffsets }
    /// The current version's TOC.
    public var toc: TOC { live.toc }
    public var relink: RelinkSection { live.relink }
    /// The stable addresses the address slots and external fields were bound to.
    public var externalValues: [String: UInt] { live.externalValues }
    /// Older versions still alive (a frame runs in them, or they were just replaced).
    public var retiredVersions: Int { retired.count }

    public var description: String { "crate \(name)" }

    /// The index of the function named `name` (quotes optional) in the current version, or nil.
    public func functionIndex(named name: String) -> Int? {
        live.functionIndex[unquoted(name)]
    }

    /// The index of the data object named `name` (quotes optional), or nil.
    public func dataIndex(named name: String) -> Int? {
        let bare = unquoted(name)
        return module.data.firstIndex { unquoted($0.name) == bare }
    }

    /// The current entry of function `index`. It changes when the heap compacts: use it
    /// only to inspect, never to keep.
    public func entry(ofFunction index: Int) -> UInt {
        precondition(blocks.indices.contains(index), "\(name): no function #\(index)")
        return blocks[index].isFreed ? 0 : blocks[index].entry
    }

    /// The callback stub of function `index`: a stable address that always reaches the
    /// function's current code, for C code and hosts to keep.
    public func stub(ofFunction index: Int) throws(LoadError) -> UnsafeRawPointer {
        guard blocks.indices.contains(index) else { throw .invalidArgument("\(name): no function #\(index)") }
        return UnsafeRawPointer(bitPattern: try loader.stubAddress(crate: self, function: index, forCode: false))!
    }

    /// The start of data object `index`; for thread-local data, the calling thread's copy.
    public func address(ofData index: Int) -> UnsafeMutableRawPointer {
        precondition(dataAddresses.indices.contains(index), "\(name): no data #\(index)")
        return live.address(ofData: index)
    }

    /// The stable address of the function (its stub) or data object called `symbol`, or nil.
    public func address(ofSymbol symbol: String) -> UnsafeRawPointer? {
        if let index = functionIndex(named: symbol) { return try? stub(ofFunction: index) }
        if let index = dataIndex(named: symbol) { return UnsafeRawPointer(address(ofData: index)) }
        return nil
    }

    /// The crates that import a symbol this crate exports.
    var users: [CrateState] { loader.users(of: self) }

    /// The names this crate exports.
    public var exports: [String] {
        module.functions.filter(\.isExported).map { unquoted($0.name) }
            + module.data.filter(\.isExported).map { unquoted($0.name) }
    }

    /// The C signature of `main`: `int main(int, char **, char **)`.
    public typealias MainFunction = @convention(c) (
        Int32, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    ) -> Int32

    /// Calls the exported `main` with `arguments` (argv[0] first) and `environment`
    /// (`KEY=value` strings; nil passes the process's own), then flushes C stdio.
    /// Runs on the calling thread, which from then on accepts the runtime's stops
    /// (`World.acceptStops`); a crash in the program is a crash of the process.
    public func runMain(arguments: [String], environment: [String]? = nil) throws(LoadError) -> Int32 {
        guard let index = functionIndex(named: "main"), module.functions[index].isExported else {
            throw .noMain(module: name)
        }
        // The calling thread runs crate code from here on, and the program's threads inherit
        // its signal mask: stops must be able to stop them (World.swift).
        World.acceptStops()
        let entry = try stub(ofFunction: index)
        guard let procSystem = loader.procSystem else {
            return Self.callMain(entry, arguments: arguments, environment: environment)
        }
        // With procs, `main` is the first proc.
        let argv = System.makeStrings(arguments)
        let envp = System.makeStrings(environment ?? System.environment)
        defer {
            System.freeStrings(argv)
            System.freeStrings(envp)
        }
        let status = try procSystem.run(entry: UInt(bitPattern: entry),
                                        arguments: (UInt(arguments.count), UInt(bitPattern: argv), UInt(bitPattern: envp)))
        System.flushAllStreams()
        return status
    }

    /// Calls a C `main` at `entry`; see `runMain`.
    static func callMain(_ entry: UnsafeRawPointer, arguments: [String], environment: [String]?) -> Int32 {
        let main = unsafeBitCast(entry, to: MainFunction.self)
        let argv = System.makeStrings(arguments)
        let envp = System.makeStrings(environment ?? System.environment)
        defer {
            System.freeStrings(argv)
            System.freeStrings(envp)
        }
        let status = main(Int32(arguments.count), argv, envp)
        System.flushAllStreams()
        return status
    }
}

extension CrateVersion {
    /// The start of data object `index`; for thread-local data, the calling thread's copy.
    func address(ofData index: Int) -> UnsafeMutableRawPointer {
        if let address = dataAddresses[index] { return UnsafeMutableRawPointer(bitPattern: address)! }
        return ThreadLocalData.address(ofOffset: threadOffsets[index]!)
    }
}
