// The public face of a crate: a handle that keeps its loader alive.
//
// The loader owns the state of every crate it loaded (`CrateState`), and a
// state points back at its loader without owning it, so a loader and its
// crates are freed together once the host lets go of both: the loader, and
// every `Crate` handle (each handle owns its loader). Handles are cheap and
// may be made many times for one crate; compare crates by `name`.

import KilnCode

/// A loaded, linked crate; see CrateState in Crate.swift for what it holds.
public final class Crate: CustomStringConvertible {
    /// The loader that holds the crate; kept alive by this handle.
    public let loader: Loader
    let state: CrateState

    init(_ state: CrateState) {
        self.loader = state.loader
        self.state = state
    }

    /// The crate's name (its source or crate file's name); unique in the loader.
    public var name: String { state.name }
    public var description: String { state.description }
    /// Whether the crate is loaded (not unloaded).
    public var isLoaded: Bool { state.isLoaded }
    /// The current version's number: 1, then one more per reload.
    public var version: Int { state.version }
    /// What the current version was loaded from.
    public var module: CompiledModule { state.module }
    /// One block per function of the current version, in module order.
    public var blocks: [CodeBlock] { state.blocks }
    /// The address of each data object; nil for thread-local data.
    public var dataAddresses: [UInt?] { state.dataAddresses }
    /// The thread-block offset of each thread-local data object.
    public var threadOffsets: [Int: Int] { state.threadOffsets }
    /// The current version's TOC.
    public var toc: TOC { state.toc }
    /// The current version's references by pointer and by pointee.
    public var relink: RelinkSection { state.relink }
    /// The stable addresses the address slots and external fields were bound to.
    public var externalValues: [String: UInt] { state.externalValues }
    /// Older versions still alive (a frame runs in them, or they were just replaced).
    public var retiredVersions: Int { state.retiredVersions }
    /// The names this crate exports.
    public var exports: [String] { state.exports }
    /// The crates that import a symbol this crate exports.
    public var users: [Crate] { state.users.map { Crate($0) } }

    /// The index of the function named `name` (quotes optional) in the current version, or nil.
    public func functionIndex(named name: String) -> Int? { state.functionIndex(named: name) }
    /// The index of the data object named `name` (quotes optional), or nil.
    public func dataIndex(named name: String) -> Int? { state.dataIndex(named: name) }
    /// The current entry of function `index`; it changes when code moves: inspect, never keep.
    public func entry(ofFunction index: Int) -> UInt { state.entry(ofFunction: index) }
    /// The callback stub of function `index`: a stable address for C code and hosts to keep.
    public func stub(ofFunction index: Int) throws(LoadError) -> UnsafeRawPointer { try state.stub(ofFunction: index) }
    /// The start of data object `index`; for thread-local data, the calling thread's copy.
    public func address(ofData index: Int) -> UnsafeMutableRawPointer { state.address(ofData: index) }
    /// The stable address of the function (its stub) or data object called `symbol`, or nil.
    public func address(ofSymbol symbol: String) -> UnsafeRawPointer? { state.address(ofSymbol: symbol) }

    /// Calls the exported `main`; see `CrateState.runMain`.
    public func runMain(arguments: [String], environment: [String]? = nil) throws(LoadError) -> Int32 {
        try state.runMain(arguments: arguments, environment: environment)
    }

    /// Calls a C `main` at `entry` with `arguments` and `environment`, then flushes C stdio.
    public static func callMain(_ entry: UnsafeRawPointer, arguments: [String], environment: [String]?) -> Int32 {
        CrateState.callMain(entry, arguments: arguments, environment: environment)
    }
}
