// A crate: one compiled module placed in a loader's code heap and linked.
//
// A crate owns one code block per function (movable), its data objects and
// its TOC (data half, never moving), and the resolver stubs of its call slots
// (fixed code). Intra-crate references are pc-relative and fixed up from the
// relocation records; everything outside the crate goes through the TOC or
// an eagerly bound absolute field (see TOC.swift). The crate keeps its
// `CompiledModule`, so its records can be applied again whenever a block
// moves, and its `RelinkSection`.
//
// Lifetime: the loader holds every loaded crate; a `Crate` object keeps its
// loader (and so the memory) alive. Addresses of code blocks change when the
// heap compacts: hand out stub addresses (`address(ofSymbol:)`), never
// entries, to anything that keeps them.

import KilnCode

/// A loaded, linked crate; see the file comment.
public final class Crate: CustomStringConvertible {
    /// The loader that holds the crate.
    public let loader: Loader
    /// The crate's name (its source or crate file's name); unique in the loader.
    public let name: String
    /// What was loaded.
    public let module: CompiledModule
    /// One block per function, in module order.
    public internal(set) var blocks: [CodeBlock]
    /// The address of each data object; nil for thread-local data.
    public internal(set) var dataAddresses: [UInt?]
    /// The thread-block offset of each thread-local data object.
    public internal(set) var threadOffsets: [Int: Int]
    public internal(set) var toc: TOC
    public let relink: RelinkSection
    /// The stable addresses the crate's address slots and external fields were bound to.
    public internal(set) var externalValues: [String: UInt]

    init(loader: Loader, module: CompiledModule, blocks: [CodeBlock], dataAddresses: [UInt?], toc: TOC) {
        self.loader = loader
        self.name = module.name
        self.module = module
        self.blocks = blocks
        self.dataAddresses = dataAddresses
        self.threadOffsets = [:]
        self.toc = toc
        self.relink = RelinkSection(module: module, layout: (toc.callSlots, toc.addressSlots))
        self.externalValues = [:]
    }

    public var description: String { "crate \(name)" }

    /// The index of the function named `name` (quotes optional), or nil.
    public func functionIndex(named name: String) -> Int? {
        let bare = unquoted(name)
        return module.functions.firstIndex { unquoted($0.name) == bare }
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
        return blocks[index].entry
    }

    /// The callback stub of function `index`: a stable address that always reaches the
    /// function's current code, for C code and hosts to keep.
    public func stub(ofFunction index: Int) throws(LoadError) -> UnsafeRawPointer {
        precondition(blocks.indices.contains(index), "\(name): no function #\(index)")
        return UnsafeRawPointer(bitPattern: try loader.stubAddress(crate: self, function: index, forCode: false))!
    }

    /// The start of data object `index`; for thread-local data, the calling thread's copy.
    public func address(ofData index: Int) -> UnsafeMutableRawPointer {
        precondition(dataAddresses.indices.contains(index), "\(name): no data #\(index)")
        if let address = dataAddresses[index] { return UnsafeMutableRawPointer(bitPattern: address)! }
        return ThreadLocalData.address(ofOffset: threadOffsets[index]!)
    }

    /// The stable address of the function (its stub) or data object called `symbol`, or nil.
    public func address(ofSymbol symbol: String) -> UnsafeRawPointer? {
        if let index = functionIndex(named: symbol) { return try? stub(ofFunction: index) }
        if let index = dataIndex(named: symbol) { return UnsafeRawPointer(address(ofData: index)) }
        return nil
    }

    /// The crates that import a symbol this crate exports.
    public var users: [Crate] { loader.users(of: self) }

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
    /// Runs on the calling thread; a crash in the program is a crash of the process.
    public func runMain(arguments: [String], environment: [String]? = nil) throws(LoadError) -> Int32 {
        guard let index = functionIndex(named: "main"), module.functions[index].isExported else {
            throw .noMain(module: name)
        }
        return Self.callMain(try stub(ofFunction: index), arguments: arguments, environment: environment)
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
